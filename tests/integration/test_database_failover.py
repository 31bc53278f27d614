"""Losing the database primary under load: PostgreSQL 15 from Debian, a primary and a synchronous
standby (tests/support/pg_cluster.py), two server replicas given both hosts in one URL, and
submitters and executors that use nothing but the SDK's own retries.

The primary is killed with SIGKILL (every one of its processes at once) and the standby
promoted. Then: no SDK call failed (a retry whose first attempt had gone through is refused as a
replay and reported as AlreadyApplied, which is counted, never applied twice); every submit and
every close that was acknowledged is on the new primary; every process ends exactly once with the
output of the close that ended it; and the replicas' leaders run again there: the cron still
starts processes, and the deadline sweeper still fails the ones nobody takes in time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pycolonies import Colonies, crypto, wire
from server.embedded import free_port
from server.realtime.listener import APPLICATION_NAME as PUBSUB_LISTENER
from server.scheduler.wakeups import APPLICATION_NAME as WAKEUP_LISTENER
from tests.conftest import make_colony
from tests.integration.replicas import HOST, Replica
from tests.integration.steady_load import (
    FUNCNAME,
    Submitter,
    Worker,
    closed_since,
    longest_gap_s,
    stop_threads,
)
from tests.support import wait_until
from tests.support.pg_cluster import ReplicatedPostgres, require_postgres15

pytestmark = [pytest.mark.slow, pytest.mark.pg15, pytest.mark.timeout(600)]

WORKERS = 4
CLOSED_BEFORE = 150  # closes before the primary is killed, and as many after
RUN_TIMEOUT_S = 180.0


@pytest.fixture
def cluster() -> Iterator[ReplicatedPostgres]:
    require_postgres15()
    pg = ReplicatedPostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


@pytest.fixture
def replicas(cluster: ReplicatedPostgres, tmp_path: Path) -> Iterator[list[Replica]]:
    server_prvkey = crypto.generate_private_key()
    started = [Replica(cluster.dsn, server_prvkey, tmp_path / "replicas", free_port(HOST), name)
               for name in ("a", "b")]
    try:
        for replica in started:
            replica.wait_healthy()
        yield started
    finally:
        for replica in started:
            replica.stop()


def test_killing_the_primary_under_load_loses_no_acknowledged_change(
    cluster: ReplicatedPostgres, replicas: list[Replica]
) -> None:
    with replicas[0].client() as admin:
        env = make_colony(admin, replicas[0])  # type: ignore[arg-type]  # duck-typed server
        keys = [env.add_executor(f"worker-{i}") for i in range(WORKERS)]
        for i, key in enumerate(keys):
            admin.add_function(env.colonyname, f"worker-{i}", FUNCNAME, key)
        # Leader duties, to see them on the new primary: a cron that starts a process every
        # second, for an executor type nobody runs, which the sweeper fails after 1 s of waiting.
        tick = {"nodename": "tick", "funcname": "tick", "maxwaittime": 1,
                "conditions": {"colonyname": env.colonyname, "executortype": "nobody"}}
        admin.add_cron("ticker", "", False, {"colonyname": env.colonyname, "functionspecs": [tick]},
                       env.colonyname, env.user_prvkey, interval=1)

        submitting, working = threading.Event(), threading.Event()
        submitters = [Submitter(HOST, replicas[i].port, env.colonyname, env.executortype, env.user_prvkey,
                                submitting, first_argument=i * 1_000_000) for i in (0, 1)]
        workers = [Worker(HOST, replicas[i % 2].port, env.colonyname, key, working, f"{i}")
                   for i, key in enumerate(keys)]
        for thread in (*submitters, *workers):
            thread.start()
        try:
            try:
                wait_until(lambda: closed_since(workers, 0) >= CLOSED_BEFORE, RUN_TIMEOUT_S,
                           f"{CLOSED_BEFORE} closes before the failover", interval=0.1)
                killed_at = time.monotonic()
                promoted_wall = datetime.now(UTC)
                promote_s = cluster.fail_over()
                wait_until(lambda: closed_since(workers, killed_at) >= CLOSED_BEFORE, RUN_TIMEOUT_S,
                           f"{CLOSED_BEFORE} closes after the failover", interval=0.1)
            finally:
                stop_threads(submitters, submitting)  # no new work; the executors finish the rest
            pause_s = longest_gap_s(workers, killed_at - 5, time.monotonic())
            acknowledged = {pid: arg for s in submitters for pid, arg in s.acknowledged.items()}
            unconfirmed = sum(s.unconfirmed for s in submitters)
            expected = len(acknowledged) + unconfirmed

            def all_done() -> bool:
                stats = admin.stats(env.colonyname, env.user_prvkey)
                return stats["successfulprocesses"] >= expected and not stats["runningprocesses"]

            wait_until(all_done, RUN_TIMEOUT_S, "every submitted process to succeed", interval=0.2)
        finally:
            stop_threads(workers, working)
        all_workers = workers

        # No SDK call failed: the failover was a pause.
        failures = [f for t in [*submitters, *all_workers] for f in t.calls.failures]
        assert not failures, failures[:10]
        longest_call_s = max(t.calls.longest_s for t in [*submitters, *all_workers])

        # Every acknowledged submit and close is on the new primary; each process ended once.
        processes = {}
        with Colonies(HOST, replicas[1].port) as sdk:
            for pid in acknowledged:
                processes[pid] = sdk.get_process(pid, env.user_prvkey)
        lost = [pid for pid, p in processes.items() if p.state != wire.SUCCESS]
        assert not lost, f"{len(lost)} acknowledged submits did not end in success: {lost[:5]}"
        for pid, process in processes.items():
            assert process.output == [acknowledged[pid] * 2], (pid, process.output)
        closes = [(pid, out) for w in all_workers for pid, out in w.closed.items()]
        assert len({pid for pid, _ in closes}) == len(closes), "a process was closed twice"
        for pid, output in closes:
            if pid in processes:
                assert processes[pid].output == output
        stats = admin.stats(env.colonyname, env.user_prvkey)
        work_processes = stats["successfulprocesses"]
        assert work_processes == expected, (stats, expected)

        # The leaders moved: the cron started processes after the promotion, and the sweeper
        # failed them for waiting (maxwaittime) on the new primary.
        def swept_after_promotion() -> bool:
            failed = admin.list_processes(env.colonyname, 100, wire.FAILED, env.user_prvkey,
                                          executortype="nobody")
            started = [wire.parse_time(p["submissiontime"]) for p in failed]
            return any(at is not None and at > promoted_wall for at in started)

        wait_until(swept_after_promotion, 30, "a cron process started and swept on the new primary")

        # And directly on the new primary: both replicas' listeners are connected there, and the
        # two leader locks are held.
        listeners = "SELECT count(*) FROM pg_stat_activity WHERE application_name = ANY($1::text[])"
        names = [WAKEUP_LISTENER, PUBSUB_LISTENER]
        wait_until(lambda: cluster.standby.fetchval(listeners, names) == 2 * len(replicas), 30,
                   "both replicas' listeners on the new primary")
        locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        assert cluster.standby.fetchval(locks) == 2  # the sweeper's and the trigger loop's
    for replica in replicas:
        assert replica.alive, replica.output
    print(f"\nfailover: promotion {promote_s:.2f} s; longest gap between closes {pause_s:.2f} s; "
          f"longest submit or close {longest_call_s:.2f} s; "
          f"{len(acknowledged)} submits, {unconfirmed} unconfirmed (AlreadyApplied), "
          f"{sum(len(t.calls.already_applied) for t in all_workers)} worker calls AlreadyApplied")
