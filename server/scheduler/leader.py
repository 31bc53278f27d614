"""A background duty that exactly one replica performs at a time, chosen by a PostgreSQL lock.

Every replica runs the loop. The one holding the session advisory lock ``lock_id`` calls
``tick`` every ``period`` seconds; the others try to take the lock once a second. If the leader
dies, its session ends, the lock is released and another replica takes over. A lost connection
is re-opened (the lock is then contended again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

import asyncpg

from server import db
from server.scheduler.tasks import stop_task

log = logging.getLogger(__name__)

FOLLOWER_RETRY_S = 1.0


class LeaderLoop(ABC):
    name = "leader loop"  # for logs: "this replica now <duty>"
    duty = "leads"
    lock_id = 0

    def __init__(self, dsn: str, period: float) -> None:
        self.dsn = dsn
        self.period = period
        self.is_leader = False
        self.backend_pid: int | None = None  # the PostgreSQL backend of the loop's connection
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    async def tick(self, con: asyncpg.Connection) -> None:
        """One pass of the duty, on the leader's own connection."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop at the next pause (a database call in flight is let finish, up to a few seconds)."""
        self._stopping.set()
        if self._task is not None:
            await stop_task(self._task)
            self._task = None

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless stopping; True while the loop should go on."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()

    async def _connect(self) -> asyncpg.Connection:
        con = await asyncpg.connect(self.dsn, timeout=db.CONNECT_TIMEOUT_S)
        await db.init_connection(con)  # json codecs, as the pool's connections
        return con

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                con = await self._connect()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.debug("%s cannot connect yet: %s", self.name, exc)
                await self._pause(FOLLOWER_RETRY_S)
                continue
            self.backend_pid = con.get_server_pid()
            try:
                await self._lead_or_follow(con)
            # InternalClientError: asyncpg's state of a connection cut in the middle of a statement
            # ("another operation is in progress"); like a lost connection, it is re-opened.
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                    asyncpg.InternalClientError) as exc:
                log.warning("%s lost its database connection: %s", self.name, exc)
                await self._pause(FOLLOWER_RETRY_S)
            finally:
                self.is_leader = False
                self.backend_pid = None
                with contextlib.suppress(Exception):
                    await con.close(timeout=2)

    async def _lead_or_follow(self, con: asyncpg.Connection) -> None:
        while not await con.fetchval("SELECT pg_try_advisory_lock($1)", self.lock_id):
            if not await self._pause(FOLLOWER_RETRY_S):
                return
        self.is_leader = True
        log.info("this replica now %s", self.duty)
        while True:
            await self.tick(con)
            if not await self._pause(self.period):
                return
