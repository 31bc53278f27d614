"""Process and executor logs (timestamps are Unix nanoseconds)."""

from __future__ import annotations

from pycolonies.models import Log
from server.store import Executor as Db


def _log(row) -> Log:
    return Log(
        processid=row["process_id"],
        colonyname=row["colony_name"],
        executorname=row["executor_name"],
        message=row["message"],
        timestamp=row["ts"],
    )


async def add(db: Db, log: Log) -> None:
    await db.execute(
        "INSERT INTO logs (process_id, colony_name, executor_name, message, ts) VALUES ($1, $2, $3, $4, $5)",
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
    order = "DESC" if latest else "ASC"
    if executor_name:
        where, key = "colony_name = $1 AND executor_name = $2", executor_name
    else:
        where, key = "colony_name = $1 AND process_id = $2", process_id
    rows = await db.fetch(
        f"""SELECT process_id, colony_name, executor_name, message, ts FROM logs
             WHERE {where} AND ts > $3 ORDER BY ts {order}, log_id {order} LIMIT $4""",
        colony_name,
        key,
        since,
        count,
    )
    return [_log(r) for r in rows]


async def search(db: Db, colony_name: str, text: str, since_ns: int, count: int) -> list[Log]:
    """The colony's newest ``count`` log entries after ``since_ns`` that contain ``text``
    (case-insensitive, taken literally: ``%`` and ``_`` are not wildcards)."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await db.fetch(
        """SELECT process_id, colony_name, executor_name, message, ts FROM logs
            WHERE colony_name = $1 AND ts > $2 AND message ILIKE $3
            ORDER BY ts DESC, log_id DESC LIMIT $4""",
        colony_name,
        since_ns,
        pattern,
        count,
    )
    return [_log(r) for r in rows]
