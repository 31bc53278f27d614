"""An executor's settings, from arguments or the environment.

| variable | meaning | default |
|---|---|---|
| ``COLONIES_SERVER_HOST`` / ``COLONIES_SERVER_PORT`` | the server | ``localhost`` / ``50080`` |
| ``COLONIES_TLS`` / ``COLONIES_SERVER_TLS`` | ``true`` for https | plain http |
| ``COLONIES_COLONY_NAME`` | the colony to work in | required |
| ``COLONIES_PRVKEY`` | the key of an approved executor, used as is | |
| ``COLONIES_COLONY_PRVKEY`` | the colony owner's key: register and approve a new executor | |
| ``COLONIES_EXECUTOR_NAME`` | the new executor's name | ``<type>-<8 hex of its id>`` |
| ``COLONIES_EXECUTOR_TYPE`` | the executor type | the kind's ``executortype`` |
| ``COLONIES_EXECUTOR_FS_DIR`` | where processes' ``fs`` directories go | ``<tmp>/colonies-fs-<uid>`` |

One of the two keys is required; with both, ``COLONIES_PRVKEY`` wins. The reference's
``EXECUTOR_FS_DIR`` is read when ``COLONIES_EXECUTOR_FS_DIR`` is not set; the Slurm kind's default
is ``fs`` under its working dir (on the cluster's shared filesystem).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pycolonies import crypto
from pycolonies.config import ClientConfig


class ConfigError(ValueError):
    """A missing or bad setting; the message is one line naming what to set."""


@dataclass(frozen=True)
class ExecutorConfig:
    host: str = "localhost"
    port: int = 50080
    tls: bool = False
    colonyname: str = ""
    prvkey: str | None = None  # an approved executor's key, used as is
    colony_prvkey: str | None = None  # register a new executor with the colony owner's key
    executorname: str | None = None  # default for a new executor: "<type>-<8 hex>"
    executortype: str | None = None  # default: the kind's executortype (or the registered one)
    concurrency: int = 1  # processes run at the same time
    grace: float = 30.0  # seconds running processes may finish after a stop signal
    heartbeat_interval: float = 10.0  # seconds between heartbeats
    poll_timeout: int = 10  # seconds of one assign long-poll
    cancel_check_interval: float = 1.0  # seconds between checks that a running process is still ours
    backoff_min: float = 0.5  # seconds; doubled per failed attempt while the server is unreachable...
    backoff_max: float = 10.0  # ...up to this, with jitter
    fs_dir: str | None = None  # base of the processes' fs directories (None: the kind's default)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ExecutorConfig:
        """Settings from the environment; ``overrides`` (e.g. command-line options) win unless None."""
        env = os.environ if environ is None else environ
        try:
            client = ClientConfig.from_env(env)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        values: dict[str, Any] = {
            "host": client.host,
            "port": client.port,
            "tls": client.tls,
            "colonyname": client.colonyname or "",
            "prvkey": client.prvkey,
            "colony_prvkey": client.colony_prvkey,
            "executorname": client.executorname,
            "executortype": env.get("COLONIES_EXECUTOR_TYPE") or None,
            "fs_dir": env.get("COLONIES_EXECUTOR_FS_DIR") or env.get("EXECUTOR_FS_DIR") or None,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def checked(self) -> ExecutorConfig:
        """This configuration, or ConfigError naming the first missing or bad setting."""
        if not self.colonyname:
            raise ConfigError("set COLONIES_COLONY_NAME to the colony this executor works in")
        if not self.prvkey and not self.colony_prvkey:
            raise ConfigError(
                "set COLONIES_PRVKEY to an approved executor's key, or COLONIES_COLONY_PRVKEY to the "
                "colony owner's key to register a new executor"
            )
        for name, key in (("COLONIES_PRVKEY", self.prvkey), ("COLONIES_COLONY_PRVKEY", self.colony_prvkey)):
            problem = key and _key_problem(key)
            if problem:
                raise ConfigError(f"{name} is not a valid private key: {problem}")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"COLONIES_SERVER_PORT must be a port number, not {self.port}")
        if self.concurrency < 1:
            raise ConfigError(f"the concurrency must be at least 1, not {self.concurrency}")
        if self.executorname is not None and (not self.executorname or ":" in self.executorname):
            raise ConfigError("COLONIES_EXECUTOR_NAME must be a non-empty name without ':'")
        for name in ("grace", "heartbeat_interval", "cancel_check_interval", "backoff_min", "backoff_max"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        if self.fs_dir is not None and not os.path.isabs(os.path.expanduser(self.fs_dir)):
            raise ConfigError(f"COLONIES_EXECUTOR_FS_DIR must be an absolute path, not {self.fs_dir!r}")
        if self.poll_timeout < 1:
            raise ConfigError("poll_timeout must be at least 1 second")
        return self

    def replace(self, **changes: Any) -> ExecutorConfig:
        return dataclasses.replace(self, **changes)


def _key_problem(text: str) -> str:
    """Why ``text`` is not a usable private key ("" when it is)."""
    try:
        crypto.derive_id(text)
    except ValueError as exc:
        return str(exc)
    return ""
