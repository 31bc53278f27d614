"""A rolling restart of both server replicas under load, behind a load balancer
(tests/support/balancer.py), as an operator upgrades a deployment: SIGTERM one replica, wait for
it to exit, start its successor on the same port, wait until it is healthy, then the other.

A replica that gets SIGTERM stops accepting connections, finishes the requests in flight, hands
its long-polls and subscriptions back (503 and a closed websocket: the client asks again, and the
balancer sends it to the other replica), and exits 0. Our SDK's submitters, waiters and
executors, and one real python executor (``colonies executor start``), all through the balancer,
see no failed call; every process ends exactly once with the output of its own close.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycolonies import Colonies, func_spec, wire
from pycolonies.models import Process
from tests.conftest import make_colony
from tests.executors.harness import starting
from tests.integration.replicas import HOST, Replica, balanced_replicas, restart_in_place
from tests.integration.steady_load import (
    FUNCNAME,
    Idler,
    Submitter,
    Worker,
    closed_since,
    longest_gap_s,
    stop_threads,
)
from tests.support import wait_until
from tests.support.balancer import Balancer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

WORKERS = 3
IDLERS = 2  # long-polls and as many subscriptions, always waiting
CLOSES_BETWEEN = 100  # closes before, between and after the two restarts
PYTHON_JOBS = 20
LONG_POLL_S = 10  # a replica that waited for its long-polls would take this long to stop
RUN_TIMEOUT_S = 180.0


def double(x):  # noqa: ANN001, ANN201 - shipped to the python executor as source
    return x * 2


@pytest.fixture
def deployment(database: str, tmp_path: Path) -> Iterator[tuple[list[Replica], Balancer, str]]:
    with balanced_replicas(database, tmp_path) as replicas_and_balancer:
        yield replicas_and_balancer


def test_rolling_restart_under_load_fails_no_client_call(
    deployment: tuple[list[Replica], Balancer, str], tmp_path: Path
) -> None:
    replicas, balancer, server_prvkey = deployment
    with Colonies(HOST, balancer.port) as admin:
        env = make_colony(admin, replicas[0])  # type: ignore[arg-type]  # duck-typed server
        keys = [env.add_executor(f"worker-{i}") for i in range(WORKERS)]
        for i, key in enumerate(keys):
            admin.add_function(env.colonyname, f"worker-{i}", FUNCNAME, key)

        submitting, working = threading.Event(), threading.Event()
        submitters = [Submitter(HOST, balancer.port, env.colonyname, env.executortype, env.user_prvkey,
                                submitting, first_argument=i * 1_000_000) for i in (0, 1)]
        workers = [Worker(HOST, balancer.port, env.colonyname, key, working, f"{i}", poll_s=LONG_POLL_S)
                   for i, key in enumerate(keys)]
        # Long-polls and subscriptions that are always waiting, so each stopping replica holds
        # some: an executor type with no work, and a process that nobody runs.
        idle_key = env.add_executor("idle", executortype="idle")
        never_run = admin.submit_func_spec({"funcname": "never", "conditions": {
            "colonyname": env.colonyname, "executortype": "nobody"}}, env.user_prvkey)
        idlers = [Idler(HOST, balancer.port, env.colonyname, idle_key, working, f"poll{i}", LONG_POLL_S)
                  for i in range(IDLERS)]
        idlers += [Idler(HOST, balancer.port, env.colonyname, env.user_prvkey, working, f"wait{i}",
                         LONG_POLL_S, waits_for=never_run.processid) for i in range(IDLERS)]
        workers_and_idlers = [*workers, *idlers]
        python_dir = tmp_path / "python"
        with starting("python", balancer.port, env.colonyname, env.colony_prvkey, python_dir) as start:
            python_executor = start()
            python_jobs: list[Process] = []
            for thread in (*submitters, *workers_and_idlers):
                thread.start()
            try:
                try:
                    stops = []
                    began = time.monotonic()
                    for index in (0, 1):
                        mark = time.monotonic()
                        wait_until(lambda m=mark: closed_since(workers, m) >= CLOSES_BETWEEN, RUN_TIMEOUT_S,
                                   f"{CLOSES_BETWEEN} closes before restarting replica {index}", interval=0.1)
                        for n in range(len(python_jobs), len(python_jobs) + PYTHON_JOBS // 2):
                            spec = func_spec(double, [n], env.colonyname, "python-executor", maxexectime=30)
                            python_jobs.append(admin.submit_func_spec(spec, env.user_prvkey))
                        stops.append(restart_in_place(replicas, index, server_prvkey, tmp_path / "replicas"))
                    mark = time.monotonic()
                    wait_until(lambda: closed_since(workers, mark) >= CLOSES_BETWEEN, RUN_TIMEOUT_S,
                               f"{CLOSES_BETWEEN} closes after the restarts", interval=0.1)
                    pause_s = longest_gap_s(workers, began, time.monotonic())
                finally:
                    stop_threads(submitters, submitting)
                acknowledged = {pid: arg for s in submitters for pid, arg in s.acknowledged.items()}
                expected = len(acknowledged) + sum(s.unconfirmed for s in submitters) + len(python_jobs)

                def all_done() -> bool:
                    stats = admin.stats(env.colonyname, env.user_prvkey)
                    return stats["successfulprocesses"] >= expected and not stats["runningprocesses"]

                wait_until(all_done, RUN_TIMEOUT_S, "every submitted process to succeed", interval=0.2)
            finally:
                stop_threads(workers_and_idlers, working, timeout=LONG_POLL_S + 30)
            python_log = python_executor.stdout + python_executor.stderr

        # Each replica stopped at once (its long-polls were handed back, not waited out), cleanly.
        for stop_s, code in stops:
            assert code == 0, f"a replica exited with {code}"
            assert stop_s < LONG_POLL_S / 2, f"a replica took {stop_s:.1f} s to stop"
        # Zero failed calls from the SDK's threads, no replay surprises, and nothing lost.
        failures = [f for t in [*submitters, *workers_and_idlers] for f in t.calls.failures]
        assert not failures, failures[:10]
        assert not [a for t in [*submitters, *workers] for a in t.calls.already_applied]
        assert sum(s.waited for s in submitters) > 0
        with Colonies(HOST, balancer.port) as sdk:
            for pid, argument in acknowledged.items():
                process = sdk.get_process(pid, env.user_prvkey)
                assert (process.state, process.output) == (wire.SUCCESS, [argument * 2]), pid
            for n, job in enumerate(python_jobs):
                process = sdk.get_process(job.processid, env.user_prvkey)
                assert (process.state, process.output) == (wire.SUCCESS, [n * 2]), python_log
        closes = [pid for w in workers for pid in w.closed]
        assert len(closes) == len(set(closes)) == len(acknowledged)
        assert admin.stats(env.colonyname, env.user_prvkey)["successfulprocesses"] == expected
        assert all(idler.rounds > 0 for idler in idlers)
        # The python executor rode it out too: no warning, no error in its log.
        problems = [line for line in python_log.splitlines() if " WARNING " in line or " ERROR " in line]
        assert not problems, python_log[-3000:]
    print(f"\nrolling restart: replicas stopped in {', '.join(f'{s:.2f}' for s, _ in stops)} s; "
          f"longest gap between closes {pause_s:.2f} s; longest submit or close "
          f"{max(t.calls.longest_s for t in [*submitters, *workers]):.2f} s; "
          f"{len(acknowledged)} submits, {balancer.connections} balanced connections")
