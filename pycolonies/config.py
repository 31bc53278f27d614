"""Client settings from the environment, and the reference SDK's ``colonies_client()``.

| variable | meaning | default |
|---|---|---|
| ``COLONIES_SERVER_HOST`` | server host | ``localhost`` |
| ``COLONIES_SERVER_PORT`` | server port | ``50080`` |
| ``COLONIES_SERVER_TLS`` / ``COLONIES_TLS`` | ``true`` for https (the first one set wins) | plain http |
| ``COLONIES_COLONY_NAME`` | colony name | ``None`` |
| ``COLONIES_COLONY_PRVKEY`` | colony owner key | ``None`` |
| ``COLONIES_EXECUTOR_NAME`` | executor name | ``None`` |
| ``COLONIES_PRVKEY`` | user/executor key | ``None`` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pycolonies.client import Colonies

if TYPE_CHECKING:
    from pycolonies.aio import AsyncColonies

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 50080
TLS_VARIABLES = ("COLONIES_SERVER_TLS", "COLONIES_TLS")


@dataclass(frozen=True)
class ClientConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    tls: bool = False
    colonyname: str | None = None
    colony_prvkey: str | None = None
    executorname: str | None = None
    prvkey: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientConfig:
        env = os.environ if environ is None else environ
        port_text = env.get("COLONIES_SERVER_PORT") or str(DEFAULT_PORT)
        try:
            port = int(port_text)
        except ValueError as exc:
            raise ValueError(f"COLONIES_SERVER_PORT must be an integer, not {port_text!r}") from exc
        return cls(
            host=env.get("COLONIES_SERVER_HOST") or DEFAULT_HOST,
            port=port,
            tls=_tls(env),
            colonyname=env.get("COLONIES_COLONY_NAME"),
            colony_prvkey=env.get("COLONIES_COLONY_PRVKEY"),
            executorname=env.get("COLONIES_EXECUTOR_NAME"),
            prvkey=env.get("COLONIES_PRVKEY"),
        )

    def client(self, native_crypto: bool = False) -> Colonies:
        return Colonies(self.host, self.port, self.tls, native_crypto)

    def async_client(self, native_crypto: bool = False) -> AsyncColonies:
        from pycolonies.aio import AsyncColonies

        return AsyncColonies(self.host, self.port, self.tls, native_crypto)


def _tls(env: Mapping[str, str]) -> bool:
    for name in TLS_VARIABLES:
        value = env.get(name)
        if value:
            return value.strip().lower() == "true"
    return False


def colonies_client(
    native_crypto: bool = False,
) -> tuple[Colonies, str | None, str | None, str | None, str | None]:
    """``(client, colonyname, colony_prvkey, executorname, prvkey)`` from the environment."""
    config = ClientConfig.from_env()
    return (
        config.client(native_crypto),
        config.colonyname,
        config.colony_prvkey,
        config.executorname,
        config.prvkey,
    )
