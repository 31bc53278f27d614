"""A colony's assignment pause: durable state in ``colonies.assignments_paused``.

Assign (``processes.assign_next``) hands out nothing while it is set. Resuming wakes the colony's
waiting assigns on every replica with the wake-up notification of an empty executor type
(``server.scheduler.wakeups``), sent in the resuming statement, so it arrives once it commits.
"""

from __future__ import annotations

from server.store import Executor as Db
from server.store import queries

SQL = queries.load("pause")


async def pause(db: Db, colony_name: str) -> bool:
    """Pause the colony's assignments; False if there is no such colony."""
    return await db.fetchrow(SQL["pause"], colony_name) is not None


async def resume(db: Db, colony_name: str) -> bool:
    """Resume them and wake the colony's waiting assigns; False if there is no such colony."""
    return await db.fetchrow(SQL["resume"], colony_name) is not None


async def is_paused(db: Db, colony_name: str) -> bool | None:
    """Whether the colony's assignments are paused; None if there is no such colony."""
    return await db.fetchval(SQL["is_paused"], colony_name)
