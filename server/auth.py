"""Authorization: who the recovered signer is relative to the server and a colony.

Roles (docs/protocol.md, "Roles"): SERVER (the configured server id, or the one a rotation
stored), OWNER (the colony's id), MEMBER (an approved executor or a user of the colony), MEMBER*
(any executor state), and, for process operations, the ASSIGNED executor. The owner keys are
not members. Failures are 403.
"""

from __future__ import annotations

from pycolonies import wire
from server.errors import BadRequest, Forbidden
from server.store import Executor as Db
from server.store import colonies as colony_store
from server.store import executors as executor_store
from server.store import identities
from server.store.executors import Member


async def server_owner_id(db: Db, configured_id: str) -> str:
    """The server owner's id: the one ``changeserveridmsg`` stored (on every replica, across
    restarts) or, before any rotation, the configured one."""
    return await identities.server_id(db, configured_id)


async def check_server_owner(db: Db, configured_id: str, signer: str) -> None:
    """403 unless the signer is the server owner (see ``server_owner_id``)."""
    if signer != await server_owner_id(db, configured_id):
        raise Forbidden("Access denied, not server owner")


async def require_colony_owner(db: Db, colony_name: str, signer: str) -> None:
    if not colony_name:
        raise BadRequest("Empty Colony name")
    colony = await colony_store.get(db, colony_name)
    if colony is None:
        raise Forbidden(f"Access denied, Colony with name <{colony_name}> does not exist")
    if colony.colonyid != signer:
        raise Forbidden("Access denied, not colony owner")


async def is_colony_owner(db: Db, colony_name: str, signer: str) -> bool:
    colony = await colony_store.get(db, colony_name) if colony_name else None
    return colony is not None and colony.colonyid == signer


async def require_member(db: Db, colony_name: str, signer: str, *, approved: bool = True) -> Member:
    """The signer's membership of the colony; an approved one is required unless ``approved=False``."""
    if not colony_name:
        raise BadRequest("Empty Colony name")
    for member in await executor_store.find_member(db, colony_name, signer):
        if not approved or member.state == wire.APPROVED:
            return member
    raise Forbidden(f"Access denied, not a member of Colony with name <{colony_name}>")


async def members(db: Db, colony_name: str, signer: str) -> list[Member]:
    """Every identity the signer has in the colony (executors in any state, and users)."""
    return await executor_store.find_member(db, colony_name, signer)


async def require_executor(db: Db, colony_name: str, signer: str) -> Member:
    """An approved executor of the colony (users are members but cannot execute)."""
    member = await require_member(db, colony_name, signer)
    if member.kind != "executor":
        raise Forbidden(f"Access denied, the signer is a user, not an executor of Colony <{colony_name}>")
    return member
