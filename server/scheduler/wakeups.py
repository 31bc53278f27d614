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

from server.scheduler.tasks import stop_task
from server.store import Executor as Db

log = logging.getLogger(__name__)

CHANNEL = "colonies_ready"
RECONNECT_DELAY_S = 0.5
PING_INTERVAL_S = 5.0
_SEP = "\x1f"


def topic(colony_name: str, executor_type: str) -> str:
    return f"{colony_name}{_SEP}{executor_type}"


async def announce(db: Db, colony_name: str, executor_type: str) -> None:
    """Queue a wake-up for (colony, executortype), delivered when the current transaction commits."""
    await db.execute("SELECT pg_notify($1, $2)", CHANNEL, topic(colony_name, executor_type))


class Wakeups:
    """This replica's long-poll waiters, keyed by (colony, executortype).

    A background task keeps one LISTEN connection open and reconnects it if PostgreSQL goes away;
    after every (re)connection all waiters are woken, since notifications may have been missed.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.closing = False
        self.listening = asyncio.Event()
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

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
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    def _on_notification(self, _con: object, _pid: int, _channel: str, payload: str) -> None:
        self.wake(payload)

    async def start(self, timeout: float = 30) -> None:
        """Start listening; returns once the first LISTEN is in place."""
        self._task = asyncio.create_task(self._listen_forever(), name="wakeup-listener")
        await asyncio.wait_for(self.listening.wait(), timeout)

    async def _listen_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                con = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.debug("wake-up listener cannot connect yet: %s", exc)
                await self._pause(RECONNECT_DELAY_S)
                continue
            lost = asyncio.Event()
            con.add_termination_listener(lambda _con, lost=lost: lost.set())
            try:
                await con.add_listener(CHANNEL, self._on_notification)
                self.listening.set()
                self.wake_all()  # anything announced while we were not listening
                while not lost.is_set() and not self._stopping.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(_first(lost, self._stopping), PING_INTERVAL_S)
                    if not lost.is_set() and not self._stopping.is_set():
                        await con.execute("SELECT 1", timeout=PING_INTERVAL_S)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("wake-up listener lost its database connection: %s", exc)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await con.close(timeout=2)
            if not self._stopping.is_set():
                log.info("wake-up listener reconnecting")
                await self._pause(RECONNECT_DELAY_S)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def begin_shutdown(self) -> None:
        """Release every long-poll now, so a shutdown does not wait for their timeouts."""
        self.closing = True
        self.wake_all()

    async def stop(self) -> None:
        self.closing = True
        self._stopping.set()
        if self._task is not None:
            await stop_task(self._task)
            self._task = None


async def _first(*events: asyncio.Event) -> None:
    """Wait until any of ``events`` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
