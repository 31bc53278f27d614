"""Process and executor logs (timestamps are Unix nanoseconds)."""

from __future__ import annotations

from pycolonies.models import Log
from server.store import Executor as Db
from server.store import queries
from server.store.rows import to_log

SQL = queries.load("logs")


async def add(db: Db, log: Log) -> None:
    await db.execute(
        SQL["add"],
        log.processid,
        log.colonyname,
        log.executorname,
        log.message,
        log.timestamp,
    )


async def query(
    db: Db,
    colony_name: str,
    *,
    process_id: str = "",
    executor_name: str = "",
    count: int,
    since: int = 0,
    latest: bool = False,
) -> list[Log]:
    """A process's or an executor's logs: oldest first after ``since``, or the newest ``count``."""
    if executor_name:
        sql, key = (SQL["latest_executor_logs"] if latest else SQL["executor_logs"]), executor_name
    else:
        sql, key = (SQL["latest_process_logs"] if latest else SQL["process_logs"]), process_id
    rows = await db.fetch(sql, colony_name, key, since, count)
    return [to_log(r) for r in rows]


async def search(db: Db, colony_name: str, text: str, since_ns: int, count: int) -> list[Log]:
    """The colony's newest ``count`` log entries after ``since_ns`` that contain ``text``
    (case-insensitive, taken literally: ``%`` and ``_`` are not wildcards)."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await db.fetch(
        SQL["search"],
        colony_name,
        since_ns,
        pattern,
        count,
    )
    return [to_log(r) for r in rows]
