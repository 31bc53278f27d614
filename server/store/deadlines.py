"""Set-based deadline updates: expired leases are retried or failed, expired waits are failed.

Each statement touches every expired process at once (no row cap) through the partial deadline
indexes, and returns the (colony, executortype) pairs whose queues gained ready work.
"""

from __future__ import annotations

from server.store import Executor as Db

RETRY_EXPIRED_LEASES = """
UPDATE processes
   SET state = 0, assigned_executor_id = '', retries = retries + 1,
       start_time = NULL, end_time = NULL, exec_deadline = NULL,
       wait_deadline = CASE WHEN max_wait_time > 0
                            THEN clock_timestamp() + make_interval(secs => max_wait_time) END
 WHERE state = 1 AND exec_deadline IS NOT NULL AND exec_deadline <= clock_timestamp()
   AND (max_retries < 0 OR retries < max_retries)
RETURNING colony_name, executor_type, wait_for_parents
"""

FAIL_EXHAUSTED_LEASES = """
UPDATE processes
   SET state = 3, end_time = clock_timestamp(), exec_deadline = NULL,
       errors = jsonb_build_array(format(
           'Maximum execution time limit exceeded (maxexectime %s s; %s of %s retries used)',
           max_exec_time, retries, max_retries))
 WHERE state = 1 AND exec_deadline IS NOT NULL AND exec_deadline <= clock_timestamp()
   AND max_retries >= 0 AND retries >= max_retries
RETURNING process_id
"""

FAIL_EXPIRED_WAITS = """
UPDATE processes
   SET state = 3, end_time = clock_timestamp(), wait_deadline = NULL,
       errors = jsonb_build_array(format(
           'Maximum waiting time limit exceeded (maxwaittime %s s)', max_wait_time))
 WHERE state = 0 AND wait_deadline IS NOT NULL AND wait_deadline <= clock_timestamp()
RETURNING process_id
"""


async def retry_expired_leases(db: Db) -> list[tuple[str, str]]:
    rows = await db.fetch(RETRY_EXPIRED_LEASES)
    return sorted({(r["colony_name"], r["executor_type"]) for r in rows if not r["wait_for_parents"]})


async def fail_exhausted_leases(db: Db) -> int:
    return len(await db.fetch(FAIL_EXHAUSTED_LEASES))


async def fail_expired_waits(db: Db) -> int:
    return len(await db.fetch(FAIL_EXPIRED_WAITS))
