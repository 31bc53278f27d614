"""Server configuration from the environment (the reference's variable names) and CLI flags."""

from __future__ import annotations

import math
import os
import resource
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_PORT = 50080
MIB = 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 16 * MIB


def env_bool(name: str, default: bool = False, env: dict[str, str] | None = None) -> bool:
    value = (env if env is not None else os.environ).get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


MAX_AUTO_WORKERS = 8


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def database_hosts(db_url: str) -> list[str]:
    """The host names (or socket directories) of a PostgreSQL URL, multi-host ones included."""
    parts = urlsplit(db_url)
    names: list[str] = []
    for item in parts.netloc.rpartition("@")[2].split(","):
        if item.startswith("["):  # [IPv6]:port
            names.append(item[1:].partition("]")[0])
        elif item:
            names.append(unquote(item.partition(":")[0]))
    for value in parse_qs(parts.query).get("host", []):
        names += [name for name in value.split(",") if name]
    return names


def database_is_local(db_url: str) -> bool:
    """Whether PostgreSQL runs on this machine: the embedded one (no URL), a unix socket, or a
    loopback host. Then it needs cores of its own."""
    if not db_url:
        return True
    hosts = database_hosts(db_url) or ["/"]  # no host: libpq's default, the local unix socket
    return all(h.startswith("/") or h == "localhost" or h == "::1" or h.startswith("127.") for h in hosts)


def default_workers(db_url: str, cpus: int | None = None) -> int:
    """``COLONIES_SERVER_WORKERS=auto`` (the default): one server process per available CPU, half
    as many when PostgreSQL shares the machine, at least 1 and at most MAX_AUTO_WORKERS. On a
    2-core machine with its database, 1: a second worker there lowered throughput by a quarter
    (bench/README.md, "Throughput")."""
    cpus = cpus or available_cpus()
    share = cpus // 2 if database_is_local(db_url) else cpus
    return max(1, min(MAX_AUTO_WORKERS, share))


def env_workers(env: dict[str, str], db_url: str) -> int:
    value = (env.get("COLONIES_SERVER_WORKERS") or "").strip()
    if value.lower() in ("", "auto"):
        return default_workers(db_url)
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"COLONIES_SERVER_WORKERS must be an integer or auto, got {value!r}") from exc


def env_int(name: str, default: int, env: dict[str, str] | None = None) -> int:
    value = (env if env is not None else os.environ).get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {value!r}") from exc


def env_seconds(name: str, default: float, env: dict[str, str] | None = None) -> float:
    value = (env if env is not None else os.environ).get(name)
    if value is None or value.strip() == "":
        return default
    try:
        seconds = float(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from exc
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    return seconds


def default_max_connections() -> int:
    """4096, or three quarters of this process's open-file limit if that is lower.

    Each connection is a file descriptor; keeping the cap under the limit leaves descriptors for
    PostgreSQL connections and files, and refuses a flood with a reply instead of failing accept().
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 4096
    return max(1, min(4096, soft * 3 // 4))


@dataclass(frozen=True)
class Limit:
    """One resource limit: its ServerConfig field, its environment variable and its floor.

    A per-peer cap above its total cap is allowed: the total then binds first.
    """

    name: str  # the ServerConfig field
    env: str
    minimum: float
    off_by_zero: bool = False  # 0 turns the limit off (per-peer caps, for clients behind one proxy)


# Every limit on what a client may make the server hold (docs/limits.md describes each).
LIMITS = (
    Limit("max_body_bytes", "COLONIES_MAX_BODY_BYTES", 1),
    Limit("max_body_bytes_in_flight", "COLONIES_MAX_BODY_BYTES_IN_FLIGHT", 1),
    Limit("max_body_bytes_in_flight_per_peer", "COLONIES_MAX_BODY_BYTES_IN_FLIGHT_PER_PEER", 1,
          off_by_zero=True),
    Limit("body_timeout_s", "COLONIES_BODY_TIMEOUT", 0.001),
    Limit("max_blob_bytes", "COLONIES_MAX_BLOB_BYTES", 1),
    Limit("header_timeout_s", "COLONIES_HEADER_TIMEOUT", 0.001),
    Limit("max_headers", "COLONIES_MAX_HEADERS", 1),
    Limit("max_header_field_bytes", "COLONIES_MAX_HEADER_FIELD_BYTES", 64),
    Limit("keepalive_timeout_s", "COLONIES_KEEPALIVE_TIMEOUT", 0.001),
    Limit("drain_timeout_s", "COLONIES_DRAIN_TIMEOUT", 0),
    Limit("max_connections", "COLONIES_MAX_CONNECTIONS", 1),
    Limit("max_connections_per_peer", "COLONIES_MAX_CONNECTIONS_PER_PEER", 1, off_by_zero=True),
    Limit("max_websockets_per_peer", "COLONIES_MAX_WEBSOCKETS_PER_PEER", 1, off_by_zero=True),
    Limit("pubsub_subscribe_timeout_s", "COLONIES_PUBSUB_SUBSCRIBE_TIMEOUT", 0.001),
)


@dataclass
class ServerConfig:
    server_id: str = ""
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    tls_cert: str = ""
    tls_key: str = ""
    db_url: str = ""
    data_dir: Path = field(default_factory=lambda: Path("~/.colonies").expanduser())
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Limits on what clients can make the server hold, per server process (docs/limits.md).
    max_body_bytes_in_flight: int = 128 * MIB
    max_body_bytes_in_flight_per_peer: int = 32 * MIB
    body_timeout_s: float = 60.0
    max_blob_bytes: int = 10 * 1024 * MIB  # one file's bytes in the embedded blob store
    header_timeout_s: float = 10.0
    max_headers: int = 32
    max_header_field_bytes: int = 8190  # also the longest request line
    keepalive_timeout_s: float = 75.0
    drain_timeout_s: float = 2.0
    max_connections: int = field(default_factory=default_max_connections)
    max_connections_per_peer: int = 256
    max_websockets_per_peer: int = 128
    pubsub_subscribe_timeout_s: float = 10.0
    build_version: str = "dev"
    build_time: str = ""
    workers: int = 1
    db_pool_size: int = 20
    db_wait_s: float = 60.0  # how long a start waits for a database it cannot reach yet
    replay_window_s: int = 300
    replay_future_skew_s: int = 60
    require_request_time: bool = False
    # Cluster membership (getclustermsg): this process's name in the listing (default
    # "<hostname>-<pid>") and how often it stamps its heartbeat.
    server_name: str = ""
    cluster_heartbeat_s: float = 5.0

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    def check_limits(self) -> None:
        """Raise ValueError naming the environment variable of the first limit that cannot work."""
        by_field = {limit.name: limit for limit in LIMITS}
        for limit in LIMITS:
            value = getattr(self, limit.name)
            if limit.off_by_zero and value == 0:
                continue
            if value < limit.minimum:
                floor = "0 (off) or at least 1" if limit.off_by_zero else f"at least {limit.minimum:g}"
                raise ValueError(f"{limit.env} must be {floor}, got {value}")
        for cap in ("max_body_bytes_in_flight", "max_body_bytes_in_flight_per_peer"):
            value = getattr(self, cap)
            if value and value < self.max_body_bytes:
                raise ValueError(f"{by_field[cap].env} ({value}) is smaller than COLONIES_MAX_BODY_BYTES "
                                 f"({self.max_body_bytes}): a body of the largest allowed size "
                                 "could never be read")
        if self.replay_window_s < 1:
            raise ValueError(f"COLONIES_REPLAY_WINDOW must be at least 1 (seconds), got "
                             f"{self.replay_window_s}")
        if not 0.05 <= self.cluster_heartbeat_s <= 3600:
            raise ValueError("COLONIES_CLUSTER_HEARTBEAT must be between 0.05 and 3600 (seconds), "
                             f"got {self.cluster_heartbeat_s}")
        if self.db_wait_s < 0:
            raise ValueError(f"COLONIES_DB_WAIT must not be negative (seconds), got {self.db_wait_s:g}")
        if self.replay_future_skew_s < 0:
            raise ValueError("COLONIES_REPLAY_FUTURE_SKEW must not be negative (seconds), "
                             f"got {self.replay_future_skew_s}")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServerConfig:
        env = dict(os.environ if env is None else env)
        from pycolonies.crypto import derive_id  # local: keep config importable without coincurve

        server_id = env.get("COLONIES_SERVER_ID", "")
        if not server_id and env.get("COLONIES_SERVER_PRVKEY"):
            server_id = derive_id(env["COLONIES_SERVER_PRVKEY"])
        port = env_int("COLONIES_SERVER_HTTP_PORT", env_int("COLONIES_SERVER_PORT", DEFAULT_PORT, env), env)
        config = cls(
            server_id=server_id,
            host=env.get("COLONIES_SERVER_HTTP_HOST") or "0.0.0.0",
            port=port,
            tls_cert=env.get("COLONIES_SERVER_HTTP_TLS_CERT") or env.get("COLONIES_TLSCERT", ""),
            tls_key=env.get("COLONIES_SERVER_HTTP_TLS_KEY") or env.get("COLONIES_TLSKEY", ""),
            db_url=env.get("COLONIES_DB_URL", ""),
            data_dir=Path(env.get("COLONIES_DATA_DIR") or "~/.colonies").expanduser(),
            workers=env_workers(env, env.get("COLONIES_DB_URL", "")),
            db_pool_size=env_int("COLONIES_DB_POOL_SIZE", 20, env),
            db_wait_s=env_seconds("COLONIES_DB_WAIT", 60.0, env),
            replay_window_s=env_int("COLONIES_REPLAY_WINDOW", 300, env),
            replay_future_skew_s=env_int("COLONIES_REPLAY_FUTURE_SKEW", 60, env),
            require_request_time=env_bool("COLONIES_REQUIRE_REQUEST_TIME", False, env),
            server_name=env.get("COLONIES_SERVER_NAME", ""),
            cluster_heartbeat_s=env_seconds("COLONIES_CLUSTER_HEARTBEAT", 5.0, env),
            build_version=env.get("BUILD_VERSION", "dev"),
            build_time=env.get("BUILD_TIME", ""),
        )
        # A larger COLONIES_MAX_BODY_BYTES raises the default in-flight caps so such a body still fits.
        config.max_body_bytes = env_int("COLONIES_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, env)
        config.max_body_bytes_in_flight = max(config.max_body_bytes_in_flight, 4 * config.max_body_bytes)
        config.max_body_bytes_in_flight_per_peer = max(config.max_body_bytes_in_flight_per_peer,
                                                       config.max_body_bytes)
        for limit in LIMITS:
            default = getattr(config, limit.name)
            if isinstance(default, int):
                setattr(config, limit.name, env_int(limit.env, default, env))
            else:
                setattr(config, limit.name, env_seconds(limit.env, default, env))
        config.check_limits()
        return config
