"""Users: human members of a colony."""

from __future__ import annotations

from pycolonies.models import User
from server.store import Executor as Db

_COLUMNS = "colony_name, name, user_id, email, phone"


def _user(row) -> User:
    return User(
        colonyname=row["colony_name"],
        userid=row["user_id"],
        name=row["name"],
        email=row["email"],
        phone=row["phone"],
    )


async def add(db: Db, user: User) -> bool:
    status = await db.execute(
        "INSERT INTO users (colony_name, name, user_id, email, phone) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT DO NOTHING",
        user.colonyname,
        user.name,
        user.userid,
        user.email,
        user.phone,
    )
    return status.endswith(" 1")


async def get(db: Db, colony_name: str, name: str) -> User | None:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM users WHERE colony_name = $1 AND name = $2", colony_name, name
    )
    return _user(row) if row else None


async def get_by_id(db: Db, colony_name: str, user_id: str) -> User | None:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM users WHERE colony_name = $1 AND user_id = $2", colony_name, user_id
    )
    return _user(row) if row else None


async def list_for_colony(db: Db, colony_name: str) -> list[User]:
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM users WHERE colony_name = $1 ORDER BY name", colony_name)
    return [_user(r) for r in rows]


async def remove(db: Db, colony_name: str, name: str) -> bool:
    status = await db.execute("DELETE FROM users WHERE colony_name = $1 AND name = $2", colony_name, name)
    return status.endswith(" 1")
