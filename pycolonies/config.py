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

A host that cannot be one (spaces, a URL) and a port that is not 1-65535 are a ValueError naming
the variable; whether the host resolves is found out when connecting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pycolonies.client import Colonies

if TYPE_CHECKING:
    from pycolonies.aio import AsyncColonies

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 50080
TLS_VARIABLES = ("COLONIES_SERVER_TLS", "COLONIES_TLS")

# Whitespace, control characters and the parts of a URL that are not a host.
_NOT_IN_A_HOST = re.compile(r"[\s\x00-\x1f\x7f/?#@\\]")


def check_host(host: str, variable: str = "COLONIES_SERVER_HOST") -> str:
    """``host`` if it can be a host name or an IP address, else ValueError naming ``variable``.

    Whether it resolves is for the connection to find out."""
    if "://" in host:
        raise ValueError(f"{variable} must be a host name or IP address, not a URL: {host!r} "
                         "(https comes from COLONIES_TLS, the port from COLONIES_SERVER_PORT)")
    if _NOT_IN_A_HOST.search(host):
        raise ValueError(f"{variable} must be a host name or IP address, not {host!r}")
    try:
        host.encode("idna")  # what the resolver will do: labels of 1-63 characters
    except UnicodeError:
        raise ValueError(f"{variable} is not a valid host name: {host!r}") from None
    return host


def parse_port(text: str, variable: str = "COLONIES_SERVER_PORT") -> int:
    """A TCP port (1-65535) from ``text``, else ValueError naming ``variable``."""
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"{variable} must be an integer, not {text!r}") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{variable} must be a port number (1-65535), not {port}")
    return port


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
        return cls(
            host=check_host(env.get("COLONIES_SERVER_HOST") or DEFAULT_HOST),
            port=parse_port(env.get("COLONIES_SERVER_PORT") or str(DEFAULT_PORT)),
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
