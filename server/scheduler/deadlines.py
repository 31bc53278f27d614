"""The deadline sweeper: one leader across all replicas enforces maxexectime and maxwaittime.

Every replica runs this task; the one holding the PostgreSQL session advisory lock
``SWEEPER_LOCK_ID`` sweeps every ``interval`` seconds (``LeaderLoop``).
"""

from __future__ import annotations

import logging
import time

import asyncpg

from server.scheduler.leader import LeaderLoop
from server.store import blobs, graphs, seen_requests, wakeups
from server.store import deadlines as store

log = logging.getLogger(__name__)

SWEEPER_LOCK_ID = 0x636F6C6F6E79_01  # "colony" + 1
SWEEP_INTERVAL_S = 0.25
REPLAY_EXPIRY_INTERVAL_S = 10.0
# An uploaded blob is recorded (addfilemsg) right after its upload; one still unrecorded after
# this long never will be.
ORPHAN_BLOB_AGE_S = 3600.0


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


class DeadlineSweeper(LeaderLoop):
    name = "deadline sweeper"
    duty = "sweeps deadlines"
    lock_id = SWEEPER_LOCK_ID

    def __init__(self, dsn: str, interval: float = SWEEP_INTERVAL_S, replay_retention_s: int = 360) -> None:
        super().__init__(dsn, interval)
        self.replay_retention_s = replay_retention_s
        self._next_expiry = 0.0
        self.last_sweep_at: float | None = None  # the wall-clock time of the last completed sweep

    async def tick(self, con: asyncpg.Connection) -> None:
        result = await sweep(con)
        self.last_sweep_at = time.time()
        if any(result.values()):
            log.info("deadlines: %s", result)
        if time.monotonic() >= self._next_expiry:
            await seen_requests.expire(con, self.replay_retention_s)
            if collected := await blobs.collect_orphans(con, ORPHAN_BLOB_AGE_S):
                log.info("collected %d uploaded blob(s) that no file refers to", collected)
            self._next_expiry = time.monotonic() + REPLAY_EXPIRY_INTERVAL_S
