"""Server configuration from the environment (the reference's variable names) and CLI flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 50080
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


def env_bool(name: str, default: bool = False, env: dict[str, str] | None = None) -> bool:
    value = (env if env is not None else os.environ).get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_int(name: str, default: int, env: dict[str, str] | None = None) -> int:
    value = (env if env is not None else os.environ).get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {value!r}") from exc


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
    build_version: str = "dev"
    build_time: str = ""
    workers: int = 1
    db_pool_size: int = 20
    replay_window_s: int = 300
    require_request_time: bool = False

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServerConfig:
        env = dict(os.environ if env is None else env)
        from pycolonies.crypto import derive_id  # local: keep config importable without coincurve

        server_id = env.get("COLONIES_SERVER_ID", "")
        if not server_id and env.get("COLONIES_SERVER_PRVKEY"):
            server_id = derive_id(env["COLONIES_SERVER_PRVKEY"])
        port = env_int("COLONIES_SERVER_HTTP_PORT", env_int("COLONIES_SERVER_PORT", DEFAULT_PORT, env), env)
        return cls(
            server_id=server_id,
            host=env.get("COLONIES_SERVER_HTTP_HOST") or "0.0.0.0",
            port=port,
            tls_cert=env.get("COLONIES_SERVER_HTTP_TLS_CERT") or env.get("COLONIES_TLSCERT", ""),
            tls_key=env.get("COLONIES_SERVER_HTTP_TLS_KEY") or env.get("COLONIES_TLSKEY", ""),
            db_url=env.get("COLONIES_DB_URL", ""),
            data_dir=Path(env.get("COLONIES_DATA_DIR") or "~/.colonies").expanduser(),
            max_body_bytes=env_int("COLONIES_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, env),
            workers=env_int("COLONIES_SERVER_WORKERS", 1, env),
            db_pool_size=env_int("COLONIES_DB_POOL_SIZE", 20, env),
            replay_window_s=env_int("COLONIES_REPLAY_WINDOW", 300, env),
            require_request_time=env_bool("COLONIES_REQUIRE_REQUEST_TIME", False, env),
            build_version=env.get("BUILD_VERSION", "dev"),
            build_time=env.get("BUILD_TIME", ""),
        )
