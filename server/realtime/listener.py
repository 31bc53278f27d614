"""This replica's process state-change and channel-entry feed: one LISTEN connection,
dispatched in memory.

The store announces every transition on ``events.CHANNEL`` (see ``server/store/events.py``) and
every channel append on ``channels.CHANNEL``. A ``ChannelListener`` keeps one connection listening
to both and hands each event to the inboxes that watch its process id, its (colony, executortype,
state) or its (process, channel). Notifications sent while the connection was down are lost, so
after every reconnection each inbox is told to re-check the database.

It LISTENs only while some inbox is registered (and a while after the last one leaves): a replica
whose clients subscribe to nothing does not hear the three state changes of every process. The
first inbox is therefore told to re-check once the LISTEN is in place, as after a reconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from server.listening import ChannelListener
from server.store import channels, events
from server.store.channels import EntryEvent
from server.store.events import ProcessEvent

log = logging.getLogger(__name__)

APPLICATION_NAME = "colonies-pubsub-listener"
MAX_PENDING = 1000  # events an inbox holds before it drops them and asks for a re-check instead

TypeKey = tuple[str, str, int]  # (colony, executortype, state)
Event = ProcessEvent | EntryEvent


@dataclass(eq=False)
class Inbox:
    """Events for one subscription, taken in batches; ``resync`` means "events may have been lost"."""

    _events: list[Event] = field(default_factory=list)
    _resync: bool = False
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def deliver(self, event: Event) -> None:
        if len(self._events) >= MAX_PENDING:
            self._events.clear()
            self._resync = True
        else:
            self._events.append(event)
        self._ready.set()

    def request_resync(self) -> None:
        self._resync = True
        self._ready.set()

    async def take(self) -> tuple[list[Event], bool]:
        """Wait for news; return the pending events and whether a re-check is needed."""
        await self._ready.wait()
        self._ready.clear()
        batch, resync = self._events, self._resync
        self._events, self._resync = [], False
        return batch, resync


class ProcessListener:
    """Inboxes keyed by process id and by (colony, executortype, state), fed from PostgreSQL."""

    def __init__(self, dsn: str) -> None:
        self._by_process: dict[str, set[Inbox]] = {}
        self._by_type: dict[TypeKey, set[Inbox]] = {}
        self._by_colony: dict[str, set[Inbox]] = {}
        self._by_channel: dict[tuple[str, str], set[Inbox]] = {}
        self._listener = ChannelListener(dsn, events.CHANNEL, self._on_notification, self.resync_all,
                                         name="pubsub listener", application_name=APPLICATION_NAME,
                                         also={channels.CHANNEL: self._on_entry}, on_demand=True)

    @contextlib.contextmanager
    def _watch(self, table: dict, key: object, inbox: Inbox | None = None) -> Iterator[Inbox]:
        """Register an inbox, LISTENing while any is registered (a table drops a key whose last
        inbox leaves, so any non-empty table means a registration)."""
        self._listener.want(True)
        try:
            with _registered(table, key, inbox) as registered:
                yield registered
        finally:
            self._listener.want(any(self._tables()))

    @property
    def listening(self) -> bool:
        """Whether the LISTEN is in place right now."""
        return self._listener.listening.is_set()

    @property
    def idle_unlisten_s(self) -> float:
        """How long the LISTEN stays after the last inbox left."""
        return self._listener.idle_unlisten_s

    @idle_unlisten_s.setter
    def idle_unlisten_s(self, seconds: float) -> None:
        self._listener.idle_unlisten_s = seconds

    @contextlib.contextmanager
    def watch_process(self, process_id: str, inbox: Inbox | None = None) -> Iterator[Inbox]:
        """An inbox (``inbox`` or a new one) receiving every state change of one process while the
        block runs."""
        with self._watch(self._by_process, process_id, inbox) as watching:
            yield watching

    @contextlib.contextmanager
    def watch_channel(self, process_id: str, channel: str, inbox: Inbox) -> Iterator[Inbox]:
        """Deliver every entry appended to channel ``channel`` of the process to ``inbox``."""
        with self._watch(self._by_channel, (process_id, channel), inbox):
            yield inbox

    @contextlib.contextmanager
    def watch_type(self, colony_name: str, executor_type: str, state: int) -> Iterator[Inbox]:
        """An inbox receiving every process of (colony, executortype) that enters ``state``."""
        with self._watch(self._by_type, (colony_name, executor_type, state)) as inbox:
            yield inbox

    @contextlib.contextmanager
    def watch_colony(self, colony_name: str, inbox: Inbox) -> Iterator[Inbox]:
        """Deliver every state change in the colony to ``inbox`` while the block runs."""
        with self._watch(self._by_colony, colony_name, inbox):
            yield inbox

    def _tables(self) -> tuple[dict, ...]:
        return self._by_process, self._by_type, self._by_colony, self._by_channel

    @property
    def watching(self) -> int:
        """How many inboxes are registered (for tests: nothing may leak)."""
        return sum(len(inboxes) for table in self._tables() for inboxes in table.values())

    def dispatch(self, event: ProcessEvent) -> None:
        for inbox in self._by_process.get(event.process_id, ()):
            inbox.deliver(event)
        for inbox in self._by_type.get((event.colony_name, event.executor_type, event.state), ()):
            inbox.deliver(event)
        for inbox in self._by_colony.get(event.colony_name, ()):
            inbox.deliver(event)

    def resync_all(self) -> None:
        for table in self._tables():
            for inbox in (inbox for inboxes in table.values() for inbox in inboxes):
                inbox.request_resync()

    def _on_entry(self, payload: str) -> None:
        event = channels.parse_event(payload)
        if event is not None:
            for inbox in self._by_channel.get((event.process_id, event.channel), ()):
                inbox.deliver(event)

    def _on_notification(self, payload: str) -> None:
        event = events.parse(payload)
        if event is not None:
            self.dispatch(event)

    async def start(self, timeout: float = 30) -> None:
        """Open the listening connection (it LISTENs once an inbox is registered)."""
        await self._listener.start(timeout)

    async def stop(self) -> None:
        await self._listener.stop()


@contextlib.contextmanager
def _registered(table: dict, key: object, inbox: Inbox | None = None) -> Iterator[Inbox]:
    inbox = inbox if inbox is not None else Inbox()
    inboxes = table.setdefault(key, set())
    inboxes.add(inbox)
    try:
        yield inbox
    finally:
        inboxes.discard(inbox)
        if not inboxes and table.get(key) is inboxes:
            del table[key]

