"""Pausing a colony's assignments: ``pauseassignmentsmsg`` and ``resumeassignmentsmsg`` (colony
owner), ``getpausestatusmsg`` (members in any state, and the colony owner).

The pause is durable colony state (``server.store.pause``): it holds on every replica and across
restarts. While paused, assign long-polls wait rather than being refused; resuming wakes them on
every replica (``server.scheduler.assign``).
"""

from __future__ import annotations

from typing import Any

from server import auth
from server.context import Call, replies_as
from server.errors import NotFound
from server.store import pause as store

PAUSE_STATUS_REPLY = "pausestatusreplymsg"


async def pause_assignments(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_colony_owner(call.pool, colony, call.signer)
    if not await store.pause(call.pool, colony):
        raise NotFound(f"Failed to pause assignments, colony <{colony}> not found")
    return {}


async def resume_assignments(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_colony_owner(call.pool, colony, call.signer)
    if not await store.resume(call.pool, colony):
        raise NotFound(f"Failed to resume assignments, colony <{colony}> not found")
    return {}


@replies_as(PAUSE_STATUS_REPLY)
async def get_pause_status(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    if not await auth.is_colony_owner(call.pool, colony, call.signer):
        await auth.require_member(call.pool, colony, call.signer, approved=False)
    paused = await store.is_paused(call.pool, colony)
    if paused is None:
        raise NotFound(f"Failed to get pause status, colony <{colony}> not found")
    return {"msgtype": PAUSE_STATUS_REPLY, "colonyname": colony, "ispaused": paused}


HANDLERS = {
    "pauseassignmentsmsg": pause_assignments,
    "resumeassignmentsmsg": resume_assignments,
    "getpausestatusmsg": get_pause_status,
}
