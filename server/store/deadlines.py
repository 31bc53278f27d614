"""Set-based deadline updates: expired leases are retried or failed, expired waits are failed.

Each statement touches every expired process at once (no row cap) through the partial deadline
indexes, and returns the (colony, executortype) pairs whose queues gained ready work.
"""

from __future__ import annotations

from server.store import Executor as Db
from server.store import queries

SQL = queries.load("deadlines")


async def retry_expired_leases(db: Db) -> list[tuple[str, str]]:
    rows = await db.fetch(SQL["retry_expired_leases"])
    return sorted({(r["colony_name"], r["executor_type"]) for r in rows if not r["wait_for_parents"]})


async def fail_exhausted_leases(db: Db) -> list[tuple[str, str]]:
    """Fail the expired leases with no retries left; their (process id, graph id)."""
    return [(r["process_id"], r["processgraph_id"]) for r in await db.fetch(SQL["fail_exhausted_leases"])]


async def fail_expired_waits(db: Db) -> list[tuple[str, str]]:
    """Fail the processes that waited past maxwaittime; their (process id, graph id)."""
    return [(r["process_id"], r["processgraph_id"]) for r in await db.fetch(SQL["fail_expired_waits"])]
