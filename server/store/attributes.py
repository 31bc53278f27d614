"""Process attributes (key/value pairs an executor attaches while running)."""

from __future__ import annotations

from pycolonies.models import Attribute
from server.store import Executor as Db
from server.store import queries

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
    )
    return status.endswith(" 1")


async def get(db: Db, attribute_id: str) -> Attribute | None:
    row = await db.fetchrow(SQL["get"], attribute_id)
    if row is None:
        return None
    return Attribute(
        attributeid=row["attribute_id"],
        targetid=row["target_id"],
        targetcolonyname=row["colony_name"],
        targetprocessgraphid=row["processgraph_id"],
        state=row["state"],
        attributetype=row["attribute_type"],
        key=row["key"],
        value=row["value"],
    )
