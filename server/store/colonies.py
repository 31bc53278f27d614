"""Colonies and colony statistics."""

from __future__ import annotations

from pycolonies.models import Colony, Statistics
from server.store import Executor as Db
from server.store import queries
from server.store.rows import to_colony

SQL = queries.load("colonies")


async def get(db: Db, name: str) -> Colony | None:
    row = await db.fetchrow(SQL["get"], name)
    return to_colony(row) if row else None


async def list_all(db: Db) -> list[Colony]:
    rows = await db.fetch(SQL["list_all"])
    return [to_colony(r) for r in rows]


async def add(db: Db, colony: Colony) -> bool:
    """Insert; False if the name or id is taken."""
    status = await db.execute(SQL["add"], colony.name, colony.colonyid)
    return status.endswith(" 1")


async def remove(db: Db, name: str) -> bool:
    """Delete a colony and, by cascade, everything in it."""
    return (await db.execute(SQL["remove"], name)).endswith(" 1")


async def statistics(db: Db, colony_name: str | None) -> Statistics:
    """Counts for one colony, or server-wide when ``colony_name`` is None."""
    row = await db.fetchrow(SQL["statistics"], colony_name)
    return Statistics(**dict(row))
