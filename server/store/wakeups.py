"""Wake-up notifications: the channel and the topic of a (colony, executortype) queue.

A state change that makes a process ready calls the SQL function ``notify_ready(colony,
executortype)`` inside its transaction (migration 0005), which sends ``pg_notify(CHANNEL,
"<colony>\\x1f<type>")``; PostgreSQL delivers it exactly when the change commits, to every
replica's listener (``server.scheduler.wakeups.Wakeups``).
"""

from __future__ import annotations

from server.store import Executor as Db
from server.store import queries

SQL = queries.load("wakeups")
CHANNEL = "colonies_ready"  # as notify_ready sends it
_SEP = "\x1f"


def topic(colony_name: str, executor_type: str) -> str:
    """The topic of one (colony, executortype) queue; with an empty executortype, of the whole
    colony (resuming its assignments wakes every queue of it)."""
    return f"{colony_name}{_SEP}{executor_type}"


def colony_of_topic(key: str) -> str | None:
    """The colony whose every queue a topic addresses (``topic(colony, "")``); None for one queue."""
    return key[: -len(_SEP)] if key.endswith(_SEP) else None


async def announce(db: Db, colony_name: str, executor_type: str) -> None:
    """Queue a wake-up for (colony, executortype), delivered when the current transaction commits."""
    await db.execute(SQL["announce"], colony_name, executor_type)
