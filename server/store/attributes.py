"""Process attributes (key/value pairs an executor attaches while running)."""

from __future__ import annotations

from pycolonies.models import Attribute
from server.store import Executor as Db
from server.store import queries
from server.store.rows import to_attribute

SQL = queries.load("attributes")


async def add(db: Db, attribute: Attribute) -> bool:
    status = await db.execute(
        SQL["add"],
        attribute.attributeid,
        attribute.targetid,
        attribute.targetcolonyname,
        attribute.targetprocessgraphid,
        attribute.attributetype,
        attribute.key,
        attribute.value,
        attribute.state,
    )
    return status.endswith(" 1")


async def get(db: Db, attribute_id: str) -> Attribute | None:
    row = await db.fetchrow(SQL["get"], attribute_id)
    if row is None:
        return None
    return to_attribute(row)
