"""Cluster membership: every server process sharing the database records itself in
``server_nodes`` and stamps a heartbeat every ``interval_s``; it deletes its record on a clean
shutdown. A record without a heartbeat for ``STALE_INTERVALS`` intervals (a killed process) is not
listed, and one silent for ``FORGET_INTERVALS`` intervals is deleted by whichever process beats
next. ``getclustermsg`` lists the live records."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable

import asyncpg

from server.scheduler.tasks import stop_task
from server.store import cluster as store

log = logging.getLogger(__name__)

STALE_INTERVALS = 3
FORGET_INTERVALS = 20
WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def advertised_host(host: str) -> str:
    """The host a replica is listed under: its bind address, or its host name if it binds all."""
    return socket.gethostname() if host in WILDCARD_HOSTS else host


class ClusterMembership:
    def __init__(self, pool: asyncpg.Pool, *, host: str, port: int, interval_s: float,
                 sweeper_backend: Callable[[], int | None], name: str = "") -> None:
        self.pool = pool
        self.node_id = uuid.uuid4().hex
        self.pid = os.getpid()
        self.name = name or f"{socket.gethostname()}-{self.pid}"
        self.host = advertised_host(host)
        self.port = port
        self.interval_s = interval_s
        self.sweeper_backend = sweeper_backend
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._join()
        self._task = asyncio.create_task(self._run(), name="cluster heartbeat")

    async def stop(self) -> None:
        """Stop beating and delete this process's record (a clean shutdown)."""
        self._stopping.set()
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        with contextlib.suppress(Exception):
            await store.leave(self.pool, self.node_id)

    async def _join(self) -> None:
        await store.join(self.pool, self.node_id, self.name, self.host, self.port, self.pid)

    async def beat(self) -> None:
        """One heartbeat (joining again if the record was deleted), then forget long-silent peers."""
        if not await store.heartbeat(self.pool, self.node_id, self.sweeper_backend()):
            await self._join()
            await store.heartbeat(self.pool, self.node_id, self.sweeper_backend())
        await store.forget_stale(self.pool, FORGET_INTERVALS * self.interval_s)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)
            if self._stopping.is_set():
                return
            try:
                await self.beat()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("cluster heartbeat failed: %s", exc)
