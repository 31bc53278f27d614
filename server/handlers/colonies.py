"""Colony RPCs: add, get, list, remove (server owner) and statistics (members)."""

from __future__ import annotations

from typing import Any

from pycolonies.models import Colony
from server import auth
from server.context import Call
from server.errors import BadRequest
from server.params import require_id, require_name
from server.store import colonies as store


async def add_colony(call: Call) -> Any:
    await auth.check_server_owner(call.pool, call.services.config.server_id, call.signer)
    colony = call.msg.model("colony", Colony)
    require_name(colony.name, "colony.name")
    require_id(colony.colonyid, "colony.colonyid")
    if not await store.add(call.pool, colony):
        if await store.get(call.pool, colony.name):
            raise BadRequest(f"A Colony with name <{colony.name}> already exists")
        raise BadRequest(f"A Colony with colonyid <{colony.colonyid}> already exists")
    return colony


async def remove_colony(call: Call) -> Any:
    await auth.check_server_owner(call.pool, call.services.config.server_id, call.signer)
    name = call.msg.required_str("colonyname")
    if not await store.remove(call.pool, name):
        raise BadRequest(f"Failed to remove colony, Colony with name <{name}> does not exist")
    return {}


async def list_colonies(call: Call) -> Any:
    await auth.check_server_owner(call.pool, call.services.config.server_id, call.signer)
    return await store.list_all(call.pool)


async def get_colony(call: Call) -> Any:
    name = call.msg.str("colonyname")
    await auth.require_member(call.pool, name, call.signer)
    return await store.get(call.pool, name)


async def colony_statistics(call: Call) -> Any:
    name = call.msg.str("colonyname")
    await auth.require_member(call.pool, name, call.signer)
    stats = await store.statistics(call.pool, name)
    stats.colonies = 1
    return stats


HANDLERS = {
    "addcolonymsg": add_colony,
    "removecolonymsg": remove_colony,
    "getcoloniesmsg": list_colonies,
    "getcolonymsg": get_colony,
    "getcolonystatsmsg": colony_statistics,
}
