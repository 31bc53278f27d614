"""Users: human members of a colony."""

from __future__ import annotations

from pycolonies.models import User
from server.store import Executor as Db
from server.store import queries
from server.store.rows import to_user

SQL = queries.load("users")

async def add(db: Db, user: User) -> bool:
    status = await db.execute(
        SQL["add"],
        user.colonyname,
        user.name,
        user.userid,
        user.email,
        user.phone,
    )
    return status.endswith(" 1")


async def get(db: Db, colony_name: str, name: str) -> User | None:
    row = await db.fetchrow(SQL["get"], colony_name, name)
    return to_user(row) if row else None


async def get_by_id(db: Db, colony_name: str, user_id: str) -> User | None:
    row = await db.fetchrow(SQL["get_by_id"], colony_name, user_id)
    return to_user(row) if row else None


async def list_for_colony(db: Db, colony_name: str) -> list[User]:
    rows = await db.fetch(SQL["list_for_colony"], colony_name)
    return [to_user(r) for r in rows]


async def remove(db: Db, colony_name: str, name: str) -> bool:
    status = await db.execute(SQL["remove"], colony_name, name)
    return status.endswith(" 1")
