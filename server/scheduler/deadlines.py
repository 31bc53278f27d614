"""The deadline sweeper: one leader across all replicas enforces maxexectime and maxwaittime.

Every replica runs this task; the one holding the PostgreSQL session advisory lock
``SWEEPER_LOCK_ID`` sweeps every ``interval`` seconds, the others try to take the lock once a
second. If the leader dies, its session ends, the lock is released and another replica takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg

from server import replay
from server.scheduler import wakeups
from server.scheduler.tasks import stop_task
from server.store import deadlines as store
from server.store import graphs

log = logging.getLogger(__name__)

SWEEPER_LOCK_ID = 0x636F6C6F6E79_01  # "colony" + 1
SWEEP_INTERVAL_S = 0.25
FOLLOWER_RETRY_S = 1.0
REPLAY_EXPIRY_INTERVAL_S = 10.0


async def sweep(con: asyncpg.Connection) -> dict[str, int]:
    """One pass, in one transaction: retry or fail expired leases, fail expired waits (and the
    pending descendants of those in workflows), wake queues."""
    async with con.transaction():
        await graphs.lock_graphs_of_expired(con)  # graph rows before process rows, as everywhere
        requeued = await store.retry_expired_leases(con)
        failed_leases = await store.fail_exhausted_leases(con)
        failed_waits = await store.fail_expired_waits(con)
        in_graphs = [(pid, gid) for pid, gid in failed_leases + failed_waits if gid]
        if in_graphs:
            await graphs.fail_descendants(
                con, [pid for pid, _ in in_graphs], sorted({gid for _, gid in in_graphs})
            )
        for colony, executortype in requeued:
            await wakeups.announce(con, colony, executortype)
    return {"requeued_queues": len(requeued), "failed_leases": len(failed_leases),
            "failed_waits": len(failed_waits)}


class DeadlineSweeper:
    def __init__(self, dsn: str, interval: float = SWEEP_INTERVAL_S, replay_window_s: int = 300) -> None:
        self.dsn = dsn
        self.interval = interval
        self.replay_window_s = replay_window_s
        self.is_leader = False
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="deadline-sweeper")

    async def stop(self) -> None:
        """Stop at the next pause (a database call in flight is let finish, up to a few seconds)."""
        self._stopping.set()
        if self._task is not None:
            await stop_task(self._task)
            self._task = None

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless stopping; True while the sweeper should go on."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                con = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.debug("deadline sweeper cannot connect yet: %s", exc)
                await self._pause(FOLLOWER_RETRY_S)
                continue
            try:
                await self._lead_or_follow(con)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("deadline sweeper lost its database connection: %s", exc)
                await self._pause(FOLLOWER_RETRY_S)
            finally:
                self.is_leader = False
                with contextlib.suppress(Exception):
                    await con.close(timeout=2)

    async def _lead_or_follow(self, con: asyncpg.Connection) -> None:
        while not await con.fetchval("SELECT pg_try_advisory_lock($1)", SWEEPER_LOCK_ID):
            if not await self._pause(FOLLOWER_RETRY_S):
                return
        self.is_leader = True
        log.info("this replica now sweeps deadlines")
        next_expiry = 0.0
        while True:
            result = await sweep(con)
            if any(result.values()):
                log.info("deadlines: %s", result)
            if time.monotonic() >= next_expiry:
                await replay.expire(con, self.replay_window_s)
                next_expiry = time.monotonic() + REPLAY_EXPIRY_INTERVAL_S
            if not await self._pause(self.interval):
                return

