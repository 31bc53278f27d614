"""What several handler modules need: a member's lookup of one row by id, and the states that
"remove all" accepts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pycolonies import wire
from server import auth
from server.context import Call
from server.errors import BadRequest, NotFound
from server.store import Executor as Db
from server.store.executors import Member

REMOVABLE_STATES = (wire.NOTSET, wire.WAITING, wire.SUCCESS, wire.FAILED, wire.CANCELLED)


async def member_row(
    call: Call, ident: str, *, field: str, kind: str, action: str, load: Callable[[Db, str], Awaitable[Any]]
) -> tuple[Any, Member]:
    """The row ``load`` finds for ``ident`` (400 if ``field`` is empty, 404 if there is none),
    and the signer's membership of its colony (403 otherwise)."""
    if not ident:
        raise BadRequest(f"Failed to {action}, {field} is required")
    row = await load(call.pool, ident)
    if row is None:
        raise NotFound(f"Failed to {action}, {kind} <{ident}> not found")
    member = await auth.require_member(call.pool, row["colony_name"], call.signer)
    return row, member


def removable_state(call: Call, things: str) -> int:
    """The ``state`` of a "remove all" request: -1 (all) or a state that is not RUNNING."""
    state = call.msg.int("state")
    if state not in REMOVABLE_STATES:
        raise BadRequest(
            f"Failed to remove {things}, invalid state (use -1 for all, 0 waiting, 2 successful, "
            f"3 failed, 4 cancelled; running {things} cannot be removed this way)"
        )
    return state
