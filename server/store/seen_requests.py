"""The replay records: signatures of accepted state-changing requests (``server.replay`` decides
which requests are recorded and for how long)."""

from __future__ import annotations

from typing import Any

from server.errors import Replayed
from server.store import Executor as Db


async def record(db: Db, key: str) -> None:
    """Record an accepted request, or refuse it as a replay."""
    status = await db.execute("INSERT INTO seen_requests (signature) VALUES ($1) ON CONFLICT DO NOTHING", key)
    if not status.endswith(" 1"):
        raise Replayed()


async def forget(db: Db, key: str | None) -> None:
    """Forget a recorded request whose handler failed, so that the client may retry it."""
    if key is not None:
        await db.execute("DELETE FROM seen_requests WHERE signature = $1", key)


async def expire(db: Db, retention_s: int) -> int:
    """Forget requests seen more than ``retention_s`` ago (called by the deadline sweeper with
    ``ReplayGuard.retention_s``)."""
    status = await db.execute(
        "DELETE FROM seen_requests WHERE seen_at < now() - make_interval(secs => $1)", float(retention_s)
    )
    return int(status.split()[-1])


# A CTE that records the request ``{key}`` (a text parameter, NULL when not recorded); the
# statement's state change must also require ``REQUEST_IS_FRESH`` and report ``SEEN_COUNT``.
SEEN_CTE = """seen AS (
    INSERT INTO seen_requests (signature) SELECT {key}::text WHERE {key}::text IS NOT NULL
    ON CONFLICT DO NOTHING RETURNING 1)"""
REQUEST_IS_FRESH = "({key}::text IS NULL OR EXISTS (SELECT 1 FROM seen))"


def check_recorded(row: Any, key: str | None) -> None:
    """After a statement with ``SEEN_CTE``: refuse the request if it was a replay."""
    if key is not None and row["seen"] == 0:
        raise Replayed()
