"""Wake long-polling assign calls when work becomes ready, on this replica and on every other one.

A state change that makes a process ready sends a wake-up notification inside its transaction
(``server.store.wakeups``), so PostgreSQL delivers it exactly when the change commits, to every
replica listening.

Each notification opens a new *generation* of its (colony, executortype) queue and wakes the
longest-waiting idle waiter (not all of them: a herd of failed attempts per submit cost a third
of the database's transactions under load). A woken waiter that finds nothing it may run while
ready work remains hands the wake-up on to the next waiter that has not looked since, so every
eligible waiter gets its chance (the reference wakes one waiter and stops there). A waiter
registers *before* it looks, and looks again if a notification arrived during its look, so no
wake-up is lost.

A notification for the topic of a whole colony (an empty executortype, sent when the colony's
paused assignments are resumed) wakes every waiter of every queue of that colony.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from server.listening import ChannelListener
from server.store.wakeups import CHANNEL, colony_of_topic, topic

APPLICATION_NAME = "colonies-wakeup-listener"  # its connection's name in pg_stat_activity

log = logging.getLogger(__name__)

RECONNECT_DELAY_S = 0.5
PING_INTERVAL_S = 5.0


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

    Fed by one LISTEN connection (``ChannelListener``); after every (re)connection all waiters
    are woken, since notifications may have been missed.
    """

    def __init__(self, dsn: str) -> None:
        self.closing = False
        self.handoffs = 0  # wake-ups passed on by a waiter that could not use them (for tests, metrics)
        # Every wake-up this replica heard, of any queue: an assign that saw none arrive during
        # its first look (before it had a queue to be woken on) need not look again.
        self.notifications = 0
        self._queues: dict[str, _Queue] = {}
        self._listener = ChannelListener(dsn, CHANNEL, self.wake, self.wake_all,
                                         name="wake-up listener", application_name=APPLICATION_NAME)

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

    def waiting(self, colony_name: str, executor_type: str) -> int:
        """How many waiters of (colony, executortype) wait for a wake-up right now (not looking)."""
        queue = self._queues.get(topic(colony_name, executor_type))
        # A copy, so another thread (a test) may ask while the event loop changes the list.
        return sum(waiter.idle for waiter in list(queue.waiters)) if queue is not None else 0

    def generation(self, colony_name: str, executor_type: str) -> int:
        queue = self._queues.get(topic(colony_name, executor_type))
        return queue.generation if queue is not None else 0

    def wake(self, key: str) -> None:
        """A new generation of ready work: wake the longest-waiting idle waiter (for a colony's
        topic: every waiter of the colony)."""
        self.notifications += 1
        colony = colony_of_topic(key)
        if colony is not None:
            self.wake_colony(colony)
            return
        queue = self._queues.get(key)
        if queue is None:
            return
        queue.generation += 1
        self._wake_first(queue, lambda waiter: True)

    def hand_off(self, colony_name: str, executor_type: str, waiter: Waiter) -> None:
        """``waiter`` looked and found nothing it may run while ready work remains: wake the next
        idle waiter that has not looked since ``waiter`` did."""
        queue = self._queues.get(topic(colony_name, executor_type))
        if queue is not None and self._wake_first(
                queue, lambda other: other is not waiter and other.looked < waiter.looked):
            self.handoffs += 1

    @staticmethod
    def _wake_first(queue: _Queue, eligible) -> bool:  # noqa: ANN001 - a predicate on Waiter
        # Only an idle waiter can take a wake-up: one that is looking right now would use it up
        # without effect (it compares generations when its look finds nothing).
        for waiter in queue.waiters:
            if waiter.idle and not waiter.event.is_set() and eligible(waiter):
                waiter.event.set()
                return True
        return False

    def wake_colony(self, colony_name: str) -> None:
        """Wake every waiter of the colony, whatever its executortype (its assignments resumed)."""
        self.notifications += 1
        prefix = topic(colony_name, "")
        for key, queue in self._queues.items():
            if key.startswith(prefix):
                queue.generation += 1
                for waiter in queue.waiters:
                    waiter.event.set()

    def wake_all(self) -> None:
        """Wake every waiter (after reconnecting, when notifications may have been missed)."""
        self.notifications += 1
        for queue in self._queues.values():
            queue.generation += 1
            for waiter in queue.waiters:
                waiter.event.set()

    async def start(self, timeout: float = 30) -> None:
        """Start listening; returns once the first LISTEN is in place."""
        await self._listener.start(timeout)

    def begin_shutdown(self) -> None:
        """Release every long-poll now, so a shutdown does not wait for their timeouts."""
        self.closing = True
        self.wake_all()

    async def stop(self) -> None:
        self.closing = True
        await self._listener.stop()

