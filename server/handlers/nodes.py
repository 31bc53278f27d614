"""Node RPCs (``getnodesmsg``, ``getnodemsg``, ``getnodesbylocationmsg``), which the reference
defines but never registers: served from the executors' capabilities and locations
(``server.domain.nodes``). Members of the colony, in any executor state (MEMBER*)."""

from __future__ import annotations

from typing import Any

from pycolonies.models import Node
from server import auth
from server.context import Call
from server.domain.nodes import nodes_of
from server.errors import NotFound
from server.store import executors as executor_store


async def _colony_nodes(call: Call) -> tuple[str, list[Node]]:
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer, approved=False)
    executors = await executor_store.list_registered(call.pool, colony)
    return colony, [node for executor in executors for node in nodes_of(executor)]


async def get_nodes(call: Call) -> Any:
    _, nodes = await _colony_nodes(call)
    return nodes


async def get_node(call: Call) -> Any:
    name = call.msg.str("nodename")
    colony, nodes = await _colony_nodes(call)
    for node in nodes:
        if node.name == name:
            return node
    raise NotFound(f"Failed to get node, no node with name <{name}> in Colony <{colony}>")


async def get_nodes_by_location(call: Call) -> Any:
    location = call.msg.str("location").lower()
    _, nodes = await _colony_nodes(call)
    return [node for node in nodes if node.location.lower() == location]


HANDLERS = {
    "getnodesmsg": get_nodes,
    "getnodemsg": get_node,
    "getnodesbylocationmsg": get_nodes_by_location,
}
