"""Identity rotation (changecolonyidmsg, changeuseridmsg, changeexecutoridmsg, changeserveridmsg)
and the effective server id.

Each change runs inside the caller's transaction: ``claim`` locks the new id and refuses one that
is taken, then the change is a conditional update on the old id, so a racing rotation is refused
instead of applied twice."""

from __future__ import annotations

from server.store import Executor as Db
from server.store import queries

SQL = queries.load("identities")


async def claim(con: Db, new_id: str) -> bool:
    """Lock ``new_id`` for this transaction; False if some identity already has it."""
    await con.execute(SQL["lock_id"], new_id)
    return not await con.fetchval(SQL["in_use"], new_id)


async def server_id(db: Db, configured_id: str) -> str:
    """The server owner's id: the rotated one if a rotation is stored, else the configured one."""
    return await db.fetchval(SQL["server_id"]) or configured_id


async def change_server_id(con: Db, old_id: str, new_id: str) -> bool:
    return await con.fetchval(SQL["change_server_id"], old_id, new_id) is not None


async def change_colony_id(con: Db, colony_name: str, old_id: str, new_id: str) -> bool:
    return (await con.execute(SQL["change_colony_id"], colony_name, old_id, new_id)).endswith(" 1")


async def change_user_id(con: Db, colony_name: str, old_id: str, new_id: str) -> list[str]:
    """The names of the users whose id changed (none if ``old_id`` is no user of the colony)."""
    return [row["name"] for row in await con.fetch(SQL["change_user_id"], colony_name, old_id, new_id)]


async def change_executor_id(con: Db, colony_name: str, old_id: str, new_id: str) -> list[str]:
    rows = await con.fetch(SQL["change_executor_id"], colony_name, old_id, new_id)
    return [row["name"] for row in rows]


async def hand_over(con: Db, colony_name: str, old_id: str, new_id: str) -> None:
    """What the member ``old_id`` holds in the colony (assigned processes, what it initiated)
    passes to ``new_id``."""
    await con.fetchrow(SQL["hand_over"], colony_name, old_id, new_id)
