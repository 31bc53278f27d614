"""Set-based deadline updates: expired leases are retried or failed, expired waits are failed.

Each statement touches every expired process at once (no row cap) through the partial deadline
indexes, and returns the (colony, executortype) pairs whose queues gained ready work.
"""

from __future__ import annotations

from server.store import Executor as Db
from server.store import events

RETRY_EXPIRED_LEASES = f"""
WITH requeued AS (
UPDATE processes
   SET state = 0, assigned_executor_id = '', retries = retries + 1,
       start_time = NULL, end_time = NULL, exec_deadline = NULL,
       wait_deadline = CASE WHEN max_wait_time > 0
                            THEN clock_timestamp() + make_interval(secs => max_wait_time) END
 WHERE state = 1 AND exec_deadline IS NOT NULL AND exec_deadline <= clock_timestamp()
   AND (max_retries < 0 OR retries < max_retries)
RETURNING process_id, state, colony_name, executor_type, wait_for_parents),
event AS (SELECT {events.notify_sql("requeued")} FROM requeued)
SELECT colony_name, executor_type, wait_for_parents, (SELECT count(*) FROM event) AS events FROM requeued
"""

FAIL_EXHAUSTED_LEASES = f"""
WITH failed AS (
UPDATE processes
   SET state = 3, end_time = clock_timestamp(), exec_deadline = NULL,
       errors = jsonb_build_array(format(
           'Maximum execution time limit exceeded (maxexectime %s s; %s of %s retries used)',
           max_exec_time, retries, max_retries))
 WHERE state = 1 AND exec_deadline IS NOT NULL AND exec_deadline <= clock_timestamp()
   AND max_retries >= 0 AND retries >= max_retries
RETURNING process_id, state, colony_name, executor_type, processgraph_id),
event AS (SELECT {events.notify_sql("failed")} FROM failed)
SELECT process_id, processgraph_id, (SELECT count(*) FROM event) AS events FROM failed
"""

FAIL_EXPIRED_WAITS = f"""
WITH failed AS (
UPDATE processes
   SET state = 3, end_time = clock_timestamp(), wait_deadline = NULL,
       errors = jsonb_build_array(format(
           'Maximum waiting time limit exceeded (maxwaittime %s s)', max_wait_time))
 WHERE state = 0 AND wait_deadline IS NOT NULL AND wait_deadline <= clock_timestamp()
RETURNING process_id, state, colony_name, executor_type, processgraph_id),
event AS (SELECT {events.notify_sql("failed")} FROM failed)
SELECT process_id, processgraph_id, (SELECT count(*) FROM event) AS events FROM failed
"""


async def retry_expired_leases(db: Db) -> list[tuple[str, str]]:
    rows = await db.fetch(RETRY_EXPIRED_LEASES)
    return sorted({(r["colony_name"], r["executor_type"]) for r in rows if not r["wait_for_parents"]})


async def fail_exhausted_leases(db: Db) -> list[tuple[str, str]]:
    """Fail the expired leases with no retries left; their (process id, graph id)."""
    return [(r["process_id"], r["processgraph_id"]) for r in await db.fetch(FAIL_EXHAUSTED_LEASES)]


async def fail_expired_waits(db: Db) -> list[tuple[str, str]]:
    """Fail the processes that waited past maxwaittime; their (process id, graph id)."""
    return [(r["process_id"], r["processgraph_id"]) for r in await db.fetch(FAIL_EXPIRED_WAITS)]
