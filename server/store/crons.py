"""Crons: a stored workflow spec and a schedule; the trigger loop (``scheduler/triggers``) fires them.

A firing is one transaction: lock the cron row, check its previous graph, create the new graph,
record the run. A cron is *due* when ``next_run`` has passed; a due cron that waits for its
previous graph stays due (and is skipped) until that graph has ended or been removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.domain import graph_plan
from server.store import Executor as Db
from server.store import queries

SQL = queries.load("crons")


async def insert(
    db: Db,
    *,
    cron_id: str,
    colony_name: str,
    name: str,
    cron_expression: str,
    interval_s: int,
    random: bool,
    next_run: datetime,
    workflow_spec: str,
    wait_for_prev: bool,
    initiator_id: str,
    initiator_name: str,
) -> Any:
    """The new cron's row, or None if the colony already has a cron with this name."""
    return await db.fetchrow(
        SQL["insert"],
        cron_id, colony_name, name, cron_expression, interval_s, random, next_run, workflow_spec,
        wait_for_prev, initiator_id, initiator_name,
    )


async def get_row(db: Db, cron_id: str) -> Any:
    return await db.fetchrow(SQL["get"], cron_id)


async def list_for_colony(db: Db, colony_name: str, count: int) -> list[Any]:
    return await db.fetch(SQL["list_for_colony"], colony_name, count)


async def remove(db: Db, cron_id: str) -> bool:
    return await db.fetchval(SQL["remove"], cron_id) is not None


# -- firing ---------------------------------------------------------------------------------------


async def due_ids(db: Db, limit: int) -> list[str]:
    """Crons whose next run has passed (or was never computed) and that are not blocked by an
    active previous graph, most overdue first."""
    rows = await db.fetch(SQL["due_ids"], limit)
    return [r["cron_id"] for r in rows]


async def lock(db: Db, cron_id: str, *, skip_locked: bool) -> Any:
    """Lock the cron for the rest of the transaction: its row plus ``now`` (the database clock);
    None if it is gone (or, with ``skip_locked``, being fired elsewhere)."""
    return await db.fetchrow(SQL["lock_if_free"] if skip_locked else SQL["lock"], cron_id)


async def previous_active(db: Db, cron_id: str) -> bool:
    """Whether the (locked) cron's previous graph has not ended. A statement of its own after the
    lock, so it sees a graph that the transaction it waited for has just created."""
    return bool(await db.fetchval(SQL["previous_active"], cron_id))


async def leaf_outputs(db: Db, graph_id: str) -> list[Any]:
    """The outputs of the graph's leaves (processes without children), concatenated in the order
    the graph lists its processes (depth first from the roots); [] if the graph is gone."""
    if not graph_id:
        return []
    roots = await db.fetchval(SQL["graph_roots"], graph_id)
    if roots is None:
        return []
    rows = await db.fetch(SQL["graph_outputs"], graph_id)
    by_id = {r["process_id"]: r for r in rows}
    order = graph_plan.reachable_order(roots, {pid: list(r["children"]) for pid, r in by_id.items()})
    reached = set(order)
    order += [pid for pid in by_id if pid not in reached]
    outputs: list[Any] = []
    for pid in order:
        row = by_id.get(pid)
        if row is not None and not row["children"] and isinstance(row["output"], list):
            outputs.extend(row["output"])
    return outputs


async def record_run(db: Db, cron_id: str, *, ran_at: datetime, next_run: datetime, graph_id: str) -> Any:
    return await db.fetchrow(SQL["record_run"], cron_id, ran_at, next_run, graph_id)


async def reschedule(db: Db, cron_id: str, next_run: datetime | None) -> Any:
    return await db.fetchrow(SQL["reschedule"], cron_id, next_run)
