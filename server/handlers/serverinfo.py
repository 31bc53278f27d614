"""Server RPCs: version and info (unsigned) and server-wide statistics (server owner)."""

from __future__ import annotations

from typing import Any

from server import auth
from server.context import Call
from server.store import colonies as colony_store

UNSIGNED = frozenset({"versionmsg", "getserverinfomsg"})


async def version(call: Call) -> Any:
    config = call.services.config
    return {
        "buildversion": config.build_version,
        "buildtime": config.build_time or call.services.started_at,
        "msgtype": "versionmsg",
    }


async def server_info(call: Call) -> Any:
    config = call.services.config
    backend: dict[str, Any] = {"type": "http", "port": config.port, "host": config.host}
    if config.tls:
        backend["tls"] = True
    return {
        "buildversion": config.build_version,
        "buildtime": config.build_time or call.services.started_at,
        "backends": [backend],
    }


async def statistics(call: Call) -> Any:
    await auth.check_server_owner(call.pool, call.services.config.server_id, call.signer)
    return await colony_store.statistics(call.pool, None)


HANDLERS = {
    "versionmsg": version,
    "getserverinfomsg": server_info,
    "getstatisticsmsg": statistics,
}
