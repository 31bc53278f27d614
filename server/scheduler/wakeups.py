"""Wake long-polling assign calls when work becomes ready, on this replica and on every other one.

A state change that makes a process ready calls ``pg_notify(CHANNEL, "<colony>\\x1f<type>")`` inside
its transaction, so PostgreSQL delivers the notification exactly when the change commits, to every
replica listening.

Each notification opens a new *generation* of its (colony, executortype) queue and wakes the
longest-waiting idle waiter (not all of them: a herd of failed attempts per submit cost a third
of the database's transactions under load). A woken waiter that finds nothing it may run while
ready work remains hands the wake-up on to the next waiter that has not looked since, so every
eligible waiter gets its chance (the reference wakes one waiter and stops there). A waiter
registers *before* it looks, and looks again if a notification arrived during its look, so no
wake-up is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

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


@dataclass(eq=False)
class Waiter:
    event: asyncio.Event = field(default_factory=asyncio.Event)
    looked: int = -1  # the queue generation at which this waiter last started to look
    idle: bool = False  # waiting for a wake-up (not looking for work right now)


@dataclass
class _Queue:
    waiters: list[Waiter] = field(default_factory=list)  # longest-waiting first
    generation: int = 0


class Wakeups:
    """This replica's long-poll waiters, keyed by (colony, executortype).

    A background task keeps one LISTEN connection open and reconnects it if PostgreSQL goes away;
    after every (re)connection all waiters are woken, since notifications may have been missed.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.closing = False
        self.listening = asyncio.Event()
        self._queues: dict[str, _Queue] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @contextlib.contextmanager
    def waiter(self, colony_name: str, executor_type: str) -> Iterator[Waiter]:
        key = topic(colony_name, executor_type)
        queue = self._queues.setdefault(key, _Queue())
        waiter = Waiter()
        queue.waiters.append(waiter)
        try:
            yield waiter
        finally:
            queue.waiters.remove(waiter)
            if not queue.waiters and self._queues.get(key) is queue:
                del self._queues[key]

    def generation(self, colony_name: str, executor_type: str) -> int:
        queue = self._queues.get(topic(colony_name, executor_type))
        return queue.generation if queue is not None else 0

    def wake(self, key: str) -> None:
        """A new generation of ready work: wake the longest-waiting idle waiter."""
        queue = self._queues.get(key)
        if queue is None:
            return
        queue.generation += 1
        self._wake_first(queue, lambda waiter: True)

    def hand_off(self, colony_name: str, executor_type: str, waiter: Waiter) -> None:
        """``waiter`` looked and found nothing it may run while ready work remains: wake the next
        idle waiter that has not looked since ``waiter`` did."""
        queue = self._queues.get(topic(colony_name, executor_type))
        if queue is not None:
            self._wake_first(queue, lambda other: other is not waiter and other.looked < waiter.looked)

    @staticmethod
    def _wake_first(queue: _Queue, eligible) -> None:  # noqa: ANN001 - a predicate on Waiter
        # Only an idle waiter can take a wake-up: one that is looking right now would use it up
        # without effect (it compares generations when its look finds nothing).
        for waiter in queue.waiters:
            if waiter.idle and not waiter.event.is_set() and eligible(waiter):
                waiter.event.set()
                return

    def wake_all(self) -> None:
        """Wake every waiter (after reconnecting, when notifications may have been missed)."""
        for queue in self._queues.values():
            queue.generation += 1
            for waiter in queue.waiters:
                waiter.event.set()

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
                log.debug("wake-up listener cannot connect yet: %r", exc)
                await self._pause(RECONNECT_DELAY_S)
                continue
            lost = asyncio.Event()
            con.add_termination_listener(lambda _con, lost=lost: lost.set())
            try:
                await con.add_listener(CHANNEL, self._on_notification)
                self.listening.set()
                log.info("wake-up listener listening")
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
