"""Location RPCs: the colony owner adds and removes a colony's locations; members read them."""

from __future__ import annotations

import math
import uuid
from typing import Any

from pycolonies.crypto import sha3_hex
from pycolonies.models import Location
from server import auth
from server.context import Call
from server.errors import BadRequest, NotFound
from server.params import require_id, require_name
from server.store import locations as store

MAX_DESCRIPTION_CHARS = 4096


def _check_coordinates(location: Location) -> None:
    for field, value, limit in (("long", location.long, 180.0), ("lat", location.lat, 90.0)):
        if not math.isfinite(value) or abs(value) > limit:
            raise BadRequest(f"Invalid location.{field}: must be a number between -{limit:g} and {limit:g}")


async def add_location(call: Call) -> Any:
    location = call.msg.model("location", Location)
    await auth.require_colony_owner(call.pool, location.colonyname, call.signer)
    require_name(location.name, "location.name")
    if len(location.description) > MAX_DESCRIPTION_CHARS:
        raise BadRequest(f"Invalid location.description: longer than {MAX_DESCRIPTION_CHARS} characters")
    _check_coordinates(location)
    if location.locationid:
        require_id(location.locationid, "location.locationid")
    else:
        location.locationid = sha3_hex(str(uuid.uuid4()))
    added = await store.add(call.pool, location)
    if added is None:
        if await store.get(call.pool, location.colonyname, location.name) is not None:
            raise BadRequest(
                f"A location with name <{location.name}> already exists in Colony <{location.colonyname}>"
            )
        raise BadRequest(f"A location with locationid <{location.locationid}> already exists")
    return added


async def list_locations(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer, approved=False)
    return await store.list_for_colony(call.pool, colony)


async def get_location(call: Call) -> Any:
    colony, name = call.msg.str("colonyname"), call.msg.str("name")
    await auth.require_member(call.pool, colony, call.signer, approved=False)
    location = await store.get(call.pool, colony, name) if name else None
    if location is None:
        raise NotFound(f"Failed to get location, no location with name <{name}> in Colony <{colony}>")
    return location


async def remove_location(call: Call) -> Any:
    colony, name = call.msg.str("colonyname"), call.msg.required_str("name")
    await auth.require_colony_owner(call.pool, colony, call.signer)
    if not await store.remove(call.pool, colony, name):
        raise NotFound(f"Failed to remove location, no location with name <{name}> in Colony <{colony}>")
    return {}


HANDLERS = {
    "addlocationmsg": add_location,
    "getlocationsmsg": list_locations,
    "getlocationmsg": get_location,
    "removelocationmsg": remove_location,
}
