"""Wake long-polling assign calls when work becomes ready, on this replica and on every other one.

A state change that makes a process ready calls ``pg_notify(CHANNEL, "<colony>\\x1f<type>")`` inside
its transaction, so PostgreSQL delivers the notification exactly when the change commits, to every
replica listening. Each replica wakes *all* its waiters for that (colony, executortype); they race
for the work with ``FOR UPDATE SKIP LOCKED`` and the losers wait again.

A waiter registers *before* it looks for work, so a notification that arrives between the look
and the wait is not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator

import asyncpg

from server.store import Executor as Db

log = logging.getLogger(__name__)

CHANNEL = "colonies_ready"
_SEP = "\x1f"


def topic(colony_name: str, executor_type: str) -> str:
    return f"{colony_name}{_SEP}{executor_type}"


async def announce(db: Db, colony_name: str, executor_type: str) -> None:
    """Queue a wake-up for (colony, executortype), delivered when the current transaction commits."""
    await db.execute("SELECT pg_notify($1, $2)", CHANNEL, topic(colony_name, executor_type))


class Wakeups:
    """This replica's long-poll waiters, keyed by (colony, executortype)."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._connection: asyncpg.Connection | None = None
        self.closing = False

    @contextlib.contextmanager
    def waiter(self, colony_name: str, executor_type: str) -> Iterator[asyncio.Event]:
        key = topic(colony_name, executor_type)
        event = asyncio.Event()
        self._waiters[key].add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[key]

    def wake(self, key: str) -> None:
        for event in self._waiters.get(key, ()):
            event.set()

    def wake_all(self) -> None:
        """Wake every waiter (e.g. after the listener reconnects and may have missed notifications)."""
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    def _on_notification(self, _con: object, _pid: int, _channel: str, payload: str) -> None:
        self.wake(payload)

    async def start(self, dsn: str) -> None:
        self._connection = await asyncpg.connect(dsn)
        await self._connection.add_listener(CHANNEL, self._on_notification)

    def begin_shutdown(self) -> None:
        """Release every long-poll now, so a shutdown does not wait for their timeouts."""
        self.closing = True
        self.wake_all()

    async def stop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None
