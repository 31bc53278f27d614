"""One PostgreSQL connection LISTENing on a channel for as long as the server runs.

The connection is re-opened if PostgreSQL goes away (its termination is noticed at once, and a
ping every few seconds catches a silent loss). Notifications sent while it was down are lost,
so ``on_listening`` runs after every (re)connection: the owner re-checks whatever it serves.

An ``on_demand`` listener LISTENs only while its owner wants it (``want``), and UNLISTENs once
nobody has wanted it for ``idle_unlisten_s``: every notification costs PostgreSQL a signal and a
message to each listening connection, and the server a wake-up, so a replica should not hear
the busy process-state channel while none of its clients subscribes to anything. When it starts
listening again, ``on_listening`` runs as after a reconnection, so what was announced before
the LISTEN took effect is re-checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import asyncpg

from server import db
from server.scheduler.tasks import stop_task

log = logging.getLogger(__name__)

RECONNECT_DELAY_S = 0.5
PING_INTERVAL_S = 5.0
IDLE_UNLISTEN_S = 30.0


class ChannelListener:
    def __init__(
        self,
        dsn: str,
        channel: str,
        on_notification: Callable[[str], None],
        on_listening: Callable[[], None],
        *,
        name: str,
        application_name: str | None = None,
        also: dict[str, Callable[[str], None]] | None = None,
        on_demand: bool = False,
        idle_unlisten_s: float = IDLE_UNLISTEN_S,
    ) -> None:
        """Listen on ``channel`` (its notifications go to ``on_notification``) and on each
        channel of ``also`` (to its own callback), on the one connection; ``on_demand``: only
        while wanted (see the module's notes)."""
        self.dsn = dsn
        self.channel = channel
        self.on_notification = on_notification
        self.callbacks = {channel: on_notification, **(also or {})}
        self.on_listening = on_listening
        self.name = name
        self.application_name = application_name
        self.listening = asyncio.Event()
        self.connected = asyncio.Event()
        self.idle_unlisten_s = idle_unlisten_s
        self._on_demand = on_demand
        self._wanted = not on_demand
        self._unwanted_since = 0.0
        self._changed = asyncio.Event()  # ``want`` changed: the listening loop re-decides
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 30) -> None:
        """Start listening; returns once the first LISTEN is in place (for an on-demand
        listener: once its connection is open)."""
        self._task = asyncio.create_task(self._listen_forever(), name=self.name)
        ready = self.connected if self._on_demand else self.listening
        await asyncio.wait_for(ready.wait(), timeout)

    def want(self, wanted: bool) -> None:
        """An on-demand listener's owner needs notifications (True) or no longer does (False)."""
        if wanted == self._wanted:
            return
        self._wanted = wanted
        if not wanted:
            self._unwanted_since = time.monotonic()
        self._changed.set()

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await stop_task(self._task)
            self._task = None

    def _notified(self, _con: object, _pid: int, channel: str, payload: str) -> None:
        self.callbacks[channel](payload)

    async def _listen_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._listen_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.info("%s: no database connection: %r", self.name, exc)
            except Exception:
                log.exception("%s failed; reconnecting", self.name)
            if not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), RECONNECT_DELAY_S)

    async def _listen_once(self) -> None:
        """One connection's life: LISTEN, let the owner re-check, then ping until it is lost."""
        settings = {"application_name": self.application_name} if self.application_name else None
        con = await asyncpg.connect(self.dsn, server_settings=settings, timeout=db.CONNECT_TIMEOUT_S)
        lost = asyncio.Event()
        con.add_termination_listener(lambda _con: lost.set())
        try:
            self.connected.set()
            while not lost.is_set() and not self._stopping.is_set():
                self._changed.clear()
                wait_s = PING_INTERVAL_S
                if self._wanted and not self.listening.is_set():
                    for channel in self.callbacks:
                        await con.add_listener(channel, self._notified)
                    self.listening.set()
                    log.info("%s listening", self.name)
                    self.on_listening()  # anything announced while nobody was listening
                elif not self._wanted and self.listening.is_set():
                    idle_for = time.monotonic() - self._unwanted_since
                    if idle_for >= self.idle_unlisten_s:
                        for channel in self.callbacks:
                            await con.remove_listener(channel, self._notified)
                        self.listening.clear()
                        log.info("%s no longer listening: nobody needs it", self.name)
                    else:
                        wait_s = min(wait_s, self.idle_unlisten_s - idle_for)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(lost, self._stopping, self._changed), wait_s)
                if not lost.is_set() and not self._stopping.is_set() and not self._changed.is_set():
                    await con.execute("SELECT 1", timeout=PING_INTERVAL_S)
            if lost.is_set():
                log.warning("%s lost its database connection; reconnecting", self.name)
        finally:
            self.listening.clear()
            self.connected.clear()
            with contextlib.suppress(Exception):
                await con.close(timeout=2)


async def _first(*events: asyncio.Event) -> None:
    """Wait until any of ``events`` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
