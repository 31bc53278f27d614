"""Wake-up notifications: the channel, the topic of a (colony, executortype) queue, and the SQL
that sends one.

A state change that makes a process ready sends ``pg_notify(CHANNEL, "<colony>\\x1f<type>")``
inside its transaction, so PostgreSQL delivers it exactly when the change commits, to every
replica's listener (``server.scheduler.wakeups.Wakeups``).
"""

from __future__ import annotations

from server.store import Executor as Db

CHANNEL = "colonies_ready"
_SEP = "\x1f"


def topic(colony_name: str, executor_type: str) -> str:
    return f"{colony_name}{_SEP}{executor_type}"


def wake_sql(rows: str) -> str:
    """A ``SELECT`` that sends one wake-up per distinct (colony, executortype) of the CTE ``rows``
    (with colony_name and executor_type columns); use it as a CTE of the changing statement."""
    return (f"SELECT pg_notify('{CHANNEL}', t.topic) FROM (SELECT DISTINCT colony_name || chr(31) || "
            f"executor_type AS topic FROM {rows}) t")


async def announce(db: Db, colony_name: str, executor_type: str) -> None:
    """Queue a wake-up for (colony, executortype), delivered when the current transaction commits."""
    await db.execute("SELECT pg_notify($1, $2)", CHANNEL, topic(colony_name, executor_type))
