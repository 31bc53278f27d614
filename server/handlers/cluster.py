"""``getclustermsg`` (server owner): the live server processes sharing this database.

The reference lists its static etcd cluster; ours lists every server process with a recent
heartbeat (``server.scheduler.cluster``). A node has the reference's fields (``peerport`` and
``relayport`` are 0: there is no etcd or relay; ``port`` and ``apiport`` are the API port) plus
``pid``, ``started`` and ``lastheartbeat``. The leader is the process holding the deadline
sweeper's advisory lock (``{}`` for a moment after it changes hands)."""

from __future__ import annotations

from typing import Any

from pycolonies import wire
from server import auth
from server.context import Call
from server.scheduler.cluster import STALE_INTERVALS
from server.scheduler.deadlines import SWEEPER_LOCK_ID
from server.store import cluster as store
from server.store.cluster import ServerNode


def _wire_node(node: ServerNode) -> dict[str, Any]:
    return {
        "name": node.name,
        "host": node.host,
        "port": node.port,
        "peerport": 0,
        "relayport": 0,
        "apiport": node.port,
        "pid": node.pid,
        "started": wire.format_time(node.started_at),
        "lastheartbeat": wire.format_time(node.heartbeat_at),
    }


async def get_cluster(call: Call) -> Any:
    await auth.check_server_owner(call.pool, call.services.config.server_id, call.signer)
    fresh_within_s = STALE_INTERVALS * call.services.config.cluster_heartbeat_s
    nodes = await store.live(call.pool, fresh_within_s, SWEEPER_LOCK_ID)
    leader = next((node for node in nodes if node.leader), None)
    return {"nodes": [_wire_node(node) for node in nodes], "leader": _wire_node(leader) if leader else {}}


HANDLERS = {"getclustermsg": get_cluster}
