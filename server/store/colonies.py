"""Colonies and colony statistics."""

from __future__ import annotations

from pycolonies.models import Colony, Statistics
from server.store import Executor as Db
from server.store.graphs import EFFECTIVE_STATE


def _colony(row) -> Colony:
    return Colony(colonyid=row["colony_id"], name=row["name"])


async def get(db: Db, name: str) -> Colony | None:
    row = await db.fetchrow("SELECT name, colony_id FROM colonies WHERE name = $1", name)
    return _colony(row) if row else None


async def list_all(db: Db) -> list[Colony]:
    rows = await db.fetch("SELECT name, colony_id FROM colonies ORDER BY name")
    return [_colony(r) for r in rows]


async def add(db: Db, colony: Colony) -> bool:
    """Insert; False if the name or id is taken."""
    status = await db.execute(
        "INSERT INTO colonies (name, colony_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        colony.name,
        colony.colonyid,
    )
    return status.endswith(" 1")


async def remove(db: Db, name: str) -> bool:
    """Delete a colony and, by cascade, everything in it."""
    return (await db.execute("DELETE FROM colonies WHERE name = $1", name)).endswith(" 1")


_STATS_SQL = f"""
WITH workflow_states AS (
  SELECT {EFFECTIVE_STATE} AS state FROM processgraphs g WHERE $1::text IS NULL OR g.colony_name = $1)
SELECT
  (SELECT count(*) FROM colonies WHERE $1::text IS NULL OR name = $1) AS colonies,
  (SELECT count(*) FROM executors WHERE $1::text IS NULL OR colony_name = $1) AS executors,
  (SELECT count(*) FROM executors WHERE ($1::text IS NULL OR colony_name = $1) AND state = 1)
      AS activeexecutors,
  (SELECT count(*) FROM executors WHERE ($1::text IS NULL OR colony_name = $1) AND state = 3)
      AS unregisteredexecutors,
  count(*) FILTER (WHERE p.state = 0) AS waitingprocesses,
  count(*) FILTER (WHERE p.state = 1) AS runningprocesses,
  count(*) FILTER (WHERE p.state = 2) AS successfulprocesses,
  count(*) FILTER (WHERE p.state = 3) AS failedprocesses,
  count(*) FILTER (WHERE p.state = 4) AS cancelledprocesses,
  (SELECT count(*) FILTER (WHERE w.state = 0) FROM workflow_states w) AS waitingworkflows,
  (SELECT count(*) FILTER (WHERE w.state = 1) FROM workflow_states w) AS runningworkflows,
  (SELECT count(*) FILTER (WHERE w.state = 2) FROM workflow_states w) AS successfulworkflows,
  (SELECT count(*) FILTER (WHERE w.state = 3) FROM workflow_states w) AS failedworkflows,
  (SELECT count(*) FILTER (WHERE w.state = 4) FROM workflow_states w) AS cancelledworkflows
FROM processes p
WHERE $1::text IS NULL OR p.colony_name = $1
"""


async def statistics(db: Db, colony_name: str | None) -> Statistics:
    """Counts for one colony, or server-wide when ``colony_name`` is None."""
    row = await db.fetchrow(_STATS_SQL, colony_name)
    return Statistics(**dict(row))
