"""What a /pubsub subscription request asks for, who may ask, and which processes it is sent.

* ``subscribeprocessmsg {processid, executortype, state, timeout}``: one process entering
  ``state``; sent at once if it is already there. Members of the process's colony only.
* ``subscribeprocessesmsg {colonyname, executortype, state, timeout}``: every process of that
  colony and executor type entering ``state``. Members of ``colonyname`` only.
* ``subscribeprocessgraphmsg {processgraphid, timeout}`` (ours, for the dashboard): the state of
  every process of one workflow, first all of them (``{"processgraphid", "states": {id: state}}``),
  then each change as it happens, in the same shape with only the changed processes. Members of
  the graph's colony only. Built from the events alone, so a busy graph costs no reads.
* ``subscribechannelmsg {processid, name, afterseq, timeout}``: the entries of one process
  channel after ``afterseq``, first those already there (one frame, if any), then each new one as
  it is appended on any replica; each frame is a JSON list of entries. When the process ends (its
  channels are dropped) or ``timeout`` (0: 30 s) passes, a final ``[]`` frame, then the socket
  closes. Only the process's submitter or assigned executor, members of its colony, may follow.

A feed registers its inbox before it looks at the database, so no transition is lost between the
look and the first event. Each push is the process freshly read from the database; a snapshot
identical to the last one sent for that process (the same transition seen by the look and by its
event, or again after a re-check) is not sent twice.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from pycolonies import wire
from pycolonies.codec import FieldError, WireDict, coerce
from server import auth
from server.errors import BadRequest, NotFound
from server.handlers.channels import MAX_CHANNEL_ENTRIES, open_channel
from server.params import Msg, require_id
from server.realtime.listener import Inbox, ProcessListener
from server.store import channels, graphs
from server.store import processes as store
from server.store.channels import EntryEvent
from server.store.events import ProcessEvent
from server.store.rows import to_process

SUBSCRIBE_PROCESS = "subscribeprocessmsg"
SUBSCRIBE_PROCESSES = "subscribeprocessesmsg"
SUBSCRIBE_GRAPH = "subscribeprocessgraphmsg"
SUBSCRIBE_CHANNEL = "subscribechannelmsg"
PAYLOADTYPES = (SUBSCRIBE_PROCESS, SUBSCRIBE_PROCESSES, SUBSCRIBE_GRAPH, SUBSCRIBE_CHANNEL)
_STATES = "0 (WAITING), 1 (RUNNING), 2 (SUCCESS), 3 (FAILED) or 4 (CANCELLED)"
DEFAULT_CHANNEL_TIMEOUT_S = 30.0  # the reference's, for a channel subscription without a timeout
MAX_FRAME_PAYLOAD = 2 * 1024 * 1024  # base64 payload characters per channel frame

Push = Callable[[Any], Awaitable[None]]


class Feed(Protocol):
    timeout: float
    reply_type: str  # the payloadtype of what it pushes

    def watch(self, listener: ProcessListener) -> AbstractContextManager[Inbox]:
        """Register this feed's inbox for as long as the block runs."""
        ...

    async def check(self, push: Push) -> None:
        """Authorize the signer, then push what is already in the requested state."""
        ...

    async def follow(self, inbox: Inbox, push: Push) -> None:
        """Push every matching transition until cancelled (or return when nothing more can come)."""
        ...

    def farewell(self) -> Any:
        """What to push when the timeout ends the subscription (None: nothing)."""
        ...


def feed_for(pool: asyncpg.Pool, signer: str, msg: Msg) -> Feed:
    """The feed a decoded subscription message asks for; BadRequest names a bad field."""
    timeout = _timeout(msg)
    if msg.payloadtype == SUBSCRIBE_CHANNEL:
        after = msg.int("afterseq")
        if after < 0:
            raise BadRequest(f"Invalid {SUBSCRIBE_CHANNEL}: afterseq must not be negative, got {after}")
        return ChannelFeed(pool, signer, timeout if timeout > 0 else DEFAULT_CHANNEL_TIMEOUT_S,
                           msg.str("processid"), msg.str("name"), after)
    if msg.payloadtype == SUBSCRIBE_GRAPH:
        return GraphFeed(pool, signer, timeout, require_id(msg.str("processgraphid"), "processgraphid"))
    state = _state(msg)
    executor_type = msg.str("executortype")
    if msg.payloadtype == SUBSCRIBE_PROCESS:
        process_id = msg.required_str("processid")
        return ProcessFeed(pool, signer, timeout, state, process_id, executor_type)
    if not executor_type:
        raise BadRequest(f"Invalid {msg.payloadtype}: executortype is required")
    return TypeFeed(pool, signer, timeout, state, msg.str("colonyname"), executor_type)


def _state(msg: Msg) -> int:
    state = msg.data.get("state")
    if state is None:
        return wire.WAITING
    if isinstance(state, bool) or not isinstance(state, int) or not wire.WAITING <= state <= wire.CANCELLED:
        raise BadRequest(f"Invalid {msg.payloadtype}: state must be {_STATES}, got {json.dumps(state)}")
    return state


def _timeout(msg: Msg) -> float:
    value = msg.data.get("timeout")
    if value is None:
        return 0.0
    try:
        timeout = coerce(float, value, "timeout")
    except FieldError as exc:
        raise BadRequest(f"Invalid {msg.payloadtype}: {exc} of seconds") from exc
    if not math.isfinite(timeout):
        raise BadRequest(f"Invalid {msg.payloadtype}: timeout must be a finite number of seconds")
    return timeout


@dataclass
class _Sent:
    """The last snapshot pushed per process, to skip an identical one."""

    last: dict[str, int] = field(default_factory=dict)

    def is_new(self, process: WireDict) -> bool:
        digest = hash(json.dumps(process, sort_keys=True, default=str))
        if self.last.get(process["processid"]) == digest:
            return False
        self.last[process["processid"]] = digest
        return True


@dataclass
class ProcessFeed:
    pool: asyncpg.Pool
    signer: str
    timeout: float
    state: int
    process_id: str
    executor_type: str
    _sent: _Sent = field(default_factory=_Sent)
    reply_type: str = SUBSCRIBE_PROCESS

    def farewell(self) -> Any:
        return None

    def watch(self, listener: ProcessListener) -> AbstractContextManager[Inbox]:
        return listener.watch_process(self.process_id)

    async def check(self, push: Push) -> None:
        row = await store.get_row(self.pool, self.process_id)
        if row is None:
            raise NotFound(f"Failed to subscribe, process <{self.process_id}> not found")
        await auth.require_member(self.pool, row["colony_name"], self.signer)
        if self.executor_type and self.executor_type != row["executor_type"]:
            raise BadRequest(
                f"Failed to subscribe, executortype <{self.executor_type}> does not match the process's "
                f"executortype <{row['executor_type']}> (leave it empty to use the process's)"
            )
        if row["state"] == self.state:
            await self._push(to_process(row), push)

    async def follow(self, inbox: Inbox, push: Push) -> None:
        while True:
            events, resync = await inbox.take()
            entered = any(event.state == self.state for event in events)
            if not entered and not resync:
                continue
            process = await store.get(self.pool, self.process_id)
            # An event says it entered the state (even if it has moved on since); a re-check only
            # knows where it is now.
            if process is not None and (entered or process["state"] == self.state):
                await self._push(process, push)

    async def _push(self, process: WireDict, push: Push) -> None:
        if self._sent.is_new(process):
            await push(process)


@dataclass
class TypeFeed:
    pool: asyncpg.Pool
    signer: str
    timeout: float
    state: int
    colony_name: str
    executor_type: str
    _sent: _Sent = field(default_factory=_Sent)
    reply_type: str = SUBSCRIBE_PROCESS

    def farewell(self) -> Any:
        return None

    def watch(self, listener: ProcessListener) -> AbstractContextManager[Inbox]:
        return listener.watch_type(self.colony_name, self.executor_type, self.state)

    async def check(self, push: Push) -> None:
        await auth.require_member(self.pool, self.colony_name, self.signer)

    async def follow(self, inbox: Inbox, push: Push) -> None:
        while True:
            events, resync = await inbox.take()
            found: list[Any] = []
            for event in events:
                process = await store.get(self.pool, event.process_id)
                if process is not None:
                    found.append(process)
            if resync:
                found += await store.list_by_state(
                    self.pool, self.colony_name, self.state, wire.MAX_COUNT, executor_type=self.executor_type
                )
            for process in found:
                if self._sent.is_new(process):
                    await push(process)


_OPEN = (wire.WAITING, wire.RUNNING)
OUTSIDERS_REMEMBERED = 10_000  # processes of the colony known not to be in the graph


@dataclass
class GraphFeed:
    pool: asyncpg.Pool
    signer: str
    timeout: float
    graph_id: str
    reply_type: str = SUBSCRIBE_GRAPH
    _members: set[str] = field(default_factory=set)
    _sent: dict[str, int] = field(default_factory=dict)  # every member's state as last sent
    _outsiders: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _listener: ProcessListener | None = None
    _inbox: Inbox = field(default_factory=Inbox)
    _stack: ExitStack = field(default_factory=ExitStack)

    def farewell(self) -> Any:
        return None

    @contextmanager
    def watch(self, listener: ProcessListener) -> Iterator[Inbox]:
        # The colony is known only once check() has read the graph; check() registers the inbox
        # for it before it reads the states, so no change falls between the two.
        self._listener = listener
        with self._stack:
            yield self._inbox

    async def check(self, push: Push) -> None:
        colony = await graphs.colony_of(self.pool, self.graph_id)
        if colony is None:
            raise NotFound(f"Failed to subscribe, process graph <{self.graph_id}> not found")
        await auth.require_member(self.pool, colony, self.signer)
        assert self._listener is not None
        self._stack.enter_context(self._listener.watch_colony(colony, self._inbox))
        await self._push_all(push)

    async def follow(self, inbox: Inbox, push: Push) -> None:
        while True:
            events, resync = await inbox.take()
            if resync:  # events may have been lost: re-read, and send what differs from what was sent
                states = await graphs.member_states(self.pool, self.graph_id)
                self._members = set(states)
                changed = {pid: state for pid, state in states.items() if self._sent.get(pid) != state}
            else:
                changed = {}
                for event in events:
                    if await self._is_member(event.process_id, event.state):
                        changed[event.process_id] = event.state
            if changed:
                self._sent.update(changed)
                await push({"processgraphid": self.graph_id, "states": changed})

    async def _push_all(self, push: Push) -> None:
        states = await graphs.member_states(self.pool, self.graph_id)
        self._members = set(states)
        self._sent = dict(states)
        await push({"processgraphid": self.graph_id, "states": states})

    async def _is_member(self, process_id: str, state: int) -> bool:
        if process_id in self._members:
            return True
        # A process joins a graph when it is added (it enters WAITING then); other events of
        # processes outside the graph need no read.
        if state != wire.WAITING or process_id in self._outsiders:
            return False
        if await graphs.graph_of_process(self.pool, process_id) == self.graph_id:
            self._members.add(process_id)
            return True
        self._outsiders[process_id] = None
        if len(self._outsiders) > OUTSIDERS_REMEMBERED:
            self._outsiders.popitem(last=False)
        return False


@dataclass
class ChannelFeed:
    pool: asyncpg.Pool
    signer: str
    timeout: float
    process_id: str
    name: str
    after: int
    reply_type: str = SUBSCRIBE_CHANNEL
    _sent: set[int] = field(default_factory=set)
    _inbox: Inbox = field(default_factory=Inbox)

    @contextmanager
    def watch(self, listener: ProcessListener) -> Iterator[Inbox]:
        # Its appends and its process's state changes (an ended process drops its channels).
        with listener.watch_channel(self.process_id, self.name, self._inbox), \
                listener.watch_process(self.process_id, self._inbox):
            yield self._inbox

    def farewell(self) -> Any:
        return []  # the end of the subscription, for the clients

    async def check(self, push: Push) -> None:
        await open_channel(self.pool, self.signer, SUBSCRIBE_CHANNEL, self.process_id, self.name,
                           "subscribe to channel")
        await self._push_new(await self._read_all(), push)

    async def follow(self, inbox: Inbox, push: Push) -> None:
        while True:
            events, resync = await inbox.take()
            ended = any(isinstance(event, ProcessEvent) and event.state not in _OPEN for event in events)
            if resync:
                ended = ended or await self._has_ended()
                entries = await self._read_all()
            else:
                sequences = [event.sequence for event in events if isinstance(event, EntryEvent)
                             and event.sequence > self.after and event.sequence not in self._sent]
                entries = (await channels.read_sequences(self.pool, self.process_id, self.name, sequences)
                           if sequences else [])
            await self._push_new(entries, push)
            if ended:
                await push([])
                return

    async def _read_all(self) -> list[WireDict]:
        return await channels.read(self.pool, self.process_id, self.name, self.after, MAX_CHANNEL_ENTRIES)

    async def _has_ended(self) -> bool:
        row = await store.get_row(self.pool, self.process_id)
        return row is None or row["state"] not in _OPEN

    async def _push_new(self, entries: list[WireDict], push: Push) -> None:
        new = [entry for entry in entries if entry["sequence"] not in self._sent]
        self._sent.update(entry["sequence"] for entry in new)
        for frame in _frames(new):
            await push(frame)


def _frames(entries: list[WireDict]) -> Iterator[list[WireDict]]:
    """``entries`` in frames of at most ``MAX_FRAME_PAYLOAD`` base64 payload characters (at least
    one entry each), which clients' websockets take (aiohttp's default limit is 4 MiB)."""
    frame: list[WireDict] = []
    size = 0
    for entry in entries:
        if frame and size + len(entry["payload"]) > MAX_FRAME_PAYLOAD:
            yield frame
            frame, size = [], 0
        frame.append(entry)
        size += len(entry["payload"])
    if frame:
        yield frame
