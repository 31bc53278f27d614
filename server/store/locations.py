"""Locations: named places of a colony that executors and process conditions refer to."""

from __future__ import annotations

from pycolonies.models import Location
from server.store import Executor as Db
from server.store import queries
from server.store.rows import to_location

SQL = queries.load("locations")


async def add(db: Db, location: Location) -> Location | None:
    """The stored location, or None if its name (in the colony) or its id is taken."""
    row = await db.fetchrow(SQL["add"], location.colonyname, location.name, location.locationid,
                            location.description, location.long, location.lat)
    return to_location(row) if row else None


async def get(db: Db, colony_name: str, name: str) -> Location | None:
    row = await db.fetchrow(SQL["get"], colony_name, name)
    return to_location(row) if row else None


async def list_for_colony(db: Db, colony_name: str) -> list[Location]:
    return [to_location(row) for row in await db.fetch(SQL["list_for_colony"], colony_name)]


async def remove(db: Db, colony_name: str, name: str) -> bool:
    return (await db.execute(SQL["remove"], colony_name, name)).endswith(" 1")
