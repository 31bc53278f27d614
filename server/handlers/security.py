"""ID rotation RPCs (the reference's security messages): a user or an executor changes its own
id, the colony owner the colony's, the server owner the server's. The reply echoes the request.

Each change is one transaction that records the request (replay protection: a captured rotation
cannot be applied again), claims the new id (64 hex, no identity's yet; 400 otherwise) and
updates the old id conditionally. Afterwards the old key is refused and the new one works on
every replica at once: nothing caches identities, and the server id a rotation stores overrides
the configured one (``server_identity``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from server import auth
from server.context import Call
from server.errors import BadRequest, Forbidden
from server.params import require_id
from server.replay import records_replay
from server.store import identities as store
from server.store import seen_requests

Change = Callable[[Any], Awaitable[bool]]


async def _rotate(call: Call, field: str, change: Change) -> Any:
    """Record the request, claim the new id in ``field`` and run ``change(con)`` (False: the
    signer no longer holds what it changes), all in one transaction; the request echoed."""
    new_id = require_id(call.msg.str(field), field)
    if new_id in (call.signer, await auth.server_owner_id(call.pool, call.services.config.server_id)):
        raise BadRequest(f"Invalid {field}: {new_id} is already in use by an identity")
    async with call.pool.acquire() as con, con.transaction():
        if call.replay_key is not None:
            await seen_requests.record(con, call.replay_key)
        if not await store.claim(con, new_id):
            raise BadRequest(f"Invalid {field}: {new_id} is already in use by an identity")
        if not await change(con):
            raise Forbidden(f"Failed to change {field}, the signer's identity changed meanwhile")
    return call.msg.data


MemberIdChange = Callable[[Any, str, str, str], Awaitable[list[str]]]


async def _change_member_id(call: Call, kind: str, field: str, change_id: MemberIdChange) -> Any:
    """A user or an executor (``kind``) of the colony changes its own id to ``field``, and hands
    what it owns (processes, workflows, crons, generators) over to the new id."""
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer, approved=False)
    new_id = call.msg.str(field)

    async def change(con: Any) -> bool:
        if not await change_id(con, colony, call.signer, new_id):
            return False
        await store.hand_over(con, colony, call.signer, new_id)
        return True

    if not any(m.kind == kind for m in await auth.members(call.pool, colony, call.signer)):
        raise Forbidden(f"Access denied, the signer is not {'an' if kind == 'executor' else 'a'} {kind} "
                        f"of Colony <{colony}>")
    return await _rotate(call, field, change)


@records_replay
async def change_user_id(call: Call) -> Any:
    return await _change_member_id(call, "user", "userid", store.change_user_id)


@records_replay
async def change_executor_id(call: Call) -> Any:
    return await _change_member_id(call, "executor", "executorid", store.change_executor_id)


@records_replay
async def change_colony_id(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_colony_owner(call.pool, colony, call.signer)
    new_id = call.msg.str("colonyid")
    return await _rotate(call, "colonyid",
                         lambda con: store.change_colony_id(con, colony, call.signer, new_id))


@records_replay
async def change_server_id(call: Call) -> Any:
    await auth.check_server_owner(call.pool, call.services.config.server_id, call.signer)
    new_id = call.msg.str("serverid")
    return await _rotate(call, "serverid", lambda con: store.change_server_id(con, call.signer, new_id))


HANDLERS = {
    "changeuseridmsg": change_user_id,
    "changeexecutoridmsg": change_executor_id,
    "changecolonyidmsg": change_colony_id,
    "changeserveridmsg": change_server_id,
}
