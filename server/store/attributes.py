"""Process attributes (key/value pairs an executor attaches while running)."""

from __future__ import annotations

from pycolonies.models import Attribute
from server.store import Executor as Db


async def add(db: Db, attribute: Attribute) -> bool:
    status = await db.execute(
        "INSERT INTO attributes (attribute_id, target_id, colony_name, processgraph_id, attribute_type, "
        "key, value) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
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
    row = await db.fetchrow(
        """SELECT a.attribute_id, a.target_id, a.colony_name, a.processgraph_id, a.attribute_type,
                  a.key, a.value, p.state
             FROM attributes a JOIN processes p ON p.process_id = a.target_id
            WHERE a.attribute_id = $1""",
        attribute_id,
    )
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
