"""Attribute RPCs: the assigned executor attaches key/values to its running process."""

from __future__ import annotations

from typing import Any

from pycolonies import wire
from pycolonies.models import Attribute
from server import auth
from server.context import Call
from server.errors import BadRequest, Forbidden, NotFound
from server.store import attributes as store
from server.store import processes as process_store


async def add_attribute(call: Call) -> Any:
    attribute = call.msg.model("attribute", Attribute)
    if not attribute.key:
        raise BadRequest("Invalid addattributemsg: attribute.key is required")
    if attribute.attributetype not in (wire.IN, wire.OUT, wire.ERR, wire.ENV):
        raise BadRequest("Invalid addattributemsg: attribute.attributetype must be 0 (in), 1 (out), "
                         "2 (err) or 3 (env)")
    row = await process_store.get_row(call.pool, attribute.targetid) if attribute.targetid else None
    if row is None:
        raise NotFound(f"Failed to add attribute, process <{attribute.targetid}> not found")
    await auth.require_member(call.pool, row["colony_name"], call.signer)
    if row["state"] != wire.RUNNING or row["assigned_executor_id"] != call.signer:
        raise Forbidden(
            "Failed to add attribute, only the assigned executor can add attributes to a running process"
        )
    attribute.attributeid = process_store.attribute_id(attribute.targetid, attribute.key,
                                                        attribute.attributetype)
    attribute.targetcolonyname = row["colony_name"]
    attribute.targetprocessgraphid = row["processgraph_id"]
    if not await store.add(call.pool, attribute):
        raise BadRequest(f"Failed to add attribute, the process already has an attribute <{attribute.key}> "
                         "of this type")
    return attribute


async def get_attribute(call: Call) -> Any:
    attribute_id = call.msg.str("attributeid")
    attribute = await store.get(call.pool, attribute_id) if attribute_id else None
    if attribute is None:
        raise NotFound(f"Failed to get attribute, attribute <{attribute_id}> not found")
    await auth.require_member(call.pool, attribute.targetcolonyname, call.signer)
    return attribute


HANDLERS = {
    "addattributemsg": add_attribute,
    "getattributemsg": get_attribute,
}
