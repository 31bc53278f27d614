"""One PostgreSQL connection LISTENing on a channel for as long as the server runs.

The connection is re-opened if PostgreSQL goes away (its termination is noticed at once, and a
ping every few seconds catches a silent loss). Notifications sent while it was down are lost,
so ``on_listening`` runs after every (re)connection: the owner re-checks whatever it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from server.scheduler.tasks import stop_task

log = logging.getLogger(__name__)

RECONNECT_DELAY_S = 0.5
PING_INTERVAL_S = 5.0


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
    ) -> None:
        """Listen on ``channel`` (its notifications go to ``on_notification``) and on each
        channel of ``also`` (to its own callback), on the one connection."""
        self.dsn = dsn
        self.channel = channel
        self.on_notification = on_notification
        self.callbacks = {channel: on_notification, **(also or {})}
        self.on_listening = on_listening
        self.name = name
        self.application_name = application_name
        self.listening = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 30) -> None:
        """Start listening; returns once the first LISTEN is in place."""
        self._task = asyncio.create_task(self._listen_forever(), name=self.name)
        await asyncio.wait_for(self.listening.wait(), timeout)

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
        con = await asyncpg.connect(self.dsn, server_settings=settings)
        lost = asyncio.Event()
        con.add_termination_listener(lambda _con: lost.set())
        try:
            for channel in self.callbacks:
                await con.add_listener(channel, self._notified)
            self.listening.set()
            log.info("%s listening", self.name)
            self.on_listening()  # anything announced while nobody was listening
            while not lost.is_set() and not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(lost, self._stopping), PING_INTERVAL_S)
                if not lost.is_set() and not self._stopping.is_set():
                    await con.execute("SELECT 1", timeout=PING_INTERVAL_S)
            if lost.is_set():
                log.warning("%s lost its database connection; reconnecting", self.name)
        finally:
            self.listening.clear()
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
