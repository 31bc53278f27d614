"""The replay records: signatures of accepted state-changing requests (``server.replay`` decides
which requests are recorded and for how long).

Hot statements record their request themselves (``processes.sql``): they insert it in a CTE,
change state only when it was new, and report that as the column ``fresh`` for
``check_recorded``."""

from __future__ import annotations

from typing import Any

from server.errors import Replayed
from server.store import Executor as Db
from server.store import queries

SQL = queries.load("seen_requests")


async def record(db: Db, key: str) -> None:
    """Record an accepted request, or refuse it as a replay."""
    if not (await db.execute(SQL["record"], key)).endswith(" 1"):
        raise Replayed()


async def forget(db: Db, key: str | None) -> None:
    """Forget a recorded request whose handler failed, so that the client may retry it."""
    if key is not None:
        await db.execute(SQL["forget"], key)


async def expire(db: Db, retention_s: int) -> int:
    """Forget requests seen more than ``retention_s`` ago (called by the deadline sweeper with
    ``ReplayGuard.retention_s``)."""
    status = await db.execute(SQL["expire"], float(retention_s))
    return int(status.split()[-1])


def check_recorded(row: Any, key: str | None) -> None:
    """After a statement that recorded its request (column ``fresh``): refuse a replay."""
    if key is not None and not row["fresh"]:
        raise Replayed()
