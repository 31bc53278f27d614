"""Crash safety: several replicas on one database, a replica killed mid-load, an executor killed while
holding a process, and PostgreSQL restarted under a running server.

Servers run as real ``colonies server start`` subprocesses (see ``tests/integration/replicas.py``);
executors are threads, each with its own ``pycolonies.Colonies`` client and its own key. The tests
marked ``slow`` push thousands of processes through and take 10-40 s each on a 2-core machine.

Contract exercised (see docs/scheduling-and-workflows.md, "Scheduling guarantees"):

* a process is handed to exactly one executor per assignment, and closed at most once;
* a RUNNING process whose ``maxexectime`` lease expires is put back to WAITING with ``retries + 1``
  (or FAILED once ``maxretries`` is used up) by a server-side sweeper, whichever replicas survive;
* the server survives a PostgreSQL restart: 503 envelopes and /health 503 during the outage, then
  it serves again and long-polls are woken again.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pycolonies import (
    Colonies,
    ColoniesConnectionError,
    ColoniesServerError,
    NotFoundError,
    blobs,
    crypto,
    wire,
)
from pycolonies.models import Process
from server.embedded import EmbeddedPostgres, free_port
from server.testing import ServerThread
from tests.conftest import ColonyEnv, make_colony
from tests.integration.replicas import HOST, Replica, cli_env, http_status
from tests.integration.steady_load import stop_threads
from tests.support import wait_until

FUNCNAME = "work"


# -- helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def start_replica(tmp_path: Path) -> Iterator[Callable[..., Replica]]:
    """Start server replicas as subprocesses; every one still running at the end is stopped."""
    started: list[Replica] = []

    def start(dsn: str, server_prvkey: str, name: str = "replica") -> Replica:
        replica = Replica(dsn, server_prvkey, tmp_path / "replicas", free_port(HOST), name)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()


def work_spec(env: ColonyEnv, index: int, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "funcname": FUNCNAME,
        "args": [index],
        "maxwaittime": -1,
        "maxexectime": -1,
        "maxretries": 0,
        "conditions": {"colonyname": env.colonyname, "executortype": env.executortype},
    }
    spec.update(overrides)
    return spec


def add_executors(env: ColonyEnv, count: int) -> list[tuple[str, str]]:
    """Register, approve and give the ``work`` function to ``count`` executors: (name, prvkey)."""
    executors = []
    for i in range(count):
        name = f"worker-{i}"
        prvkey = env.add_executor(name)
        env.client.add_function(env.colonyname, name, FUNCNAME, prvkey)
        executors.append((name, prvkey))
    return executors


class ExecutorLoop(threading.Thread):
    """An executor: assign (long-poll), close at once, repeat until ``stop`` is set.

    ``endpoints`` are the replicas it may talk to, its own first. On a transport failure
    (``ColoniesConnectionError`` that is not a server reply) it switches to the next endpoint; a
    close whose reply was lost is resent there. Everything it saw is recorded for the test.
    """

    def __init__(
        self,
        name: str,
        prvkey: str,
        colonyname: str,
        endpoints: list[Replica],
        stop: threading.Event,
        poll_s: int = 1,
    ) -> None:
        super().__init__(name=f"executor-{name}", daemon=True)
        self.executorname = name
        self.prvkey = prvkey
        self.executorid = crypto.derive_id(prvkey)
        self.colonyname = colonyname
        self.endpoints = endpoints
        self.stop_event = stop
        self.poll_s = poll_s
        self.index = 0
        self.received: list[str] = []  # every process an assign reply handed to us
        self.closed: list[str] = []  # closes the server confirmed
        self.ambiguous: list[tuple[str, str]] = []  # close reply lost, resend refused: (pid, why)
        self.refused: list[tuple[str, str]] = []  # closes refused because the lease expired
        self.errors: list[str] = []  # anything unexpected
        self.failovers = 0
        self.closed_after_failover = 0
        self._client: Colonies | None = None

    @property
    def endpoint(self) -> Replica:
        return self.endpoints[self.index]

    def _switch(self, why: BaseException) -> None:
        if len(self.endpoints) == 1:
            self.errors.append(f"transport failure with no other replica: {why!r}")
            time.sleep(0.2)
            return
        assert self._client is not None
        self._client.close()
        self.index = (self.index + 1) % len(self.endpoints)
        self._client = self.endpoint.client()
        self.failovers += 1

    def run(self) -> None:
        self._client = self.endpoint.client()
        try:
            while not self.stop_event.is_set():
                try:
                    process = self._client.assign(self.colonyname, self.poll_s, self.prvkey)
                except NotFoundError:
                    continue
                except ColoniesServerError as exc:
                    if exc.status != 503:
                        self.errors.append(f"assign: {exc!r}")
                    time.sleep(0.1)
                    continue
                except ColoniesConnectionError as exc:
                    self._switch(exc)
                    continue
                self.received.append(process.processid)
                self._close(process.processid)
        except BaseException as exc:  # reported to the test thread
            self.errors.append(f"crashed: {exc!r}")
        finally:
            self._client.close()

    def _close(self, processid: str) -> None:
        assert self._client is not None
        uncertain = False  # an earlier attempt may have committed although its reply was lost
        for _ in range(50):
            try:
                self._client.close(processid, [self.executorname], self.prvkey)
            except ColoniesServerError as exc:
                if exc.status == 503:
                    time.sleep(0.1)
                    continue
                if uncertain and exc.status in (400, 403):
                    self.ambiguous.append((processid, exc.message))
                elif exc.status == 403 and "deadline" in exc.message:
                    self.refused.append((processid, exc.message))
                else:
                    self.errors.append(f"close {processid}: {exc!r}")
                return
            except ColoniesConnectionError as exc:
                uncertain = True
                self._switch(exc)
                continue
            self.closed.append(processid)
            if self.failovers:
                self.closed_after_failover += 1
            return
        self.errors.append(f"gave up closing {processid}")


def completed(executors: list[ExecutorLoop]) -> int:
    return sum(len(e.closed) + len(e.ambiguous) for e in executors)


def submit_many(replica: Replica, env: ColonyEnv, indexes: range, out: list[str], errors: list[str],
                **overrides: Any) -> None:
    """Submit one process per index through ``replica`` (as the user), appending the ids to ``out``."""
    try:
        with replica.client() as sdk:
            for i in indexes:
                out.append(sdk.submit_func_spec(work_spec(env, i, **overrides), env.user_prvkey).processid)
    except BaseException as exc:  # reported to the test thread
        errors.append(f"submit via {replica.name}: {exc!r}")


def fetch_processes(replica: Replica, ids: list[str], prvkey: str, threads: int = 4) -> dict[str, Process]:
    """``get_process`` for every id, through ``replica``, a few threads at a time."""

    def fetch(chunk: list[str]) -> list[Process]:
        with replica.client() as sdk:
            return [sdk.get_process(pid, prvkey) for pid in chunk]

    chunks = [ids[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        return {p.processid: p for chunk in pool.map(fetch, chunks) for p in chunk}


def function_counters(client: Colonies, env: ColonyEnv) -> dict[str, int]:
    """executorname -> how many of its closes the server counted for the ``work`` function."""
    functions = client.get_functions_by_colony(env.colonyname, env.user_prvkey)
    return {f["executorname"]: f["counter"] for f in functions if f["funcname"] == FUNCNAME}


def state_counts(client: Colonies, env: ColonyEnv) -> dict[str, int]:
    stats = client.stats(env.colonyname, env.user_prvkey)
    return {k: stats[k] for k in ("waitingprocesses", "runningprocesses", "successfulprocesses",
                                  "failedprocesses", "cancelledprocesses")}


# -- (a) two replicas, one database, exactly-once hand-out ----------------------------------------

TOTAL_A = 5000
EXECUTORS_A = 8
RUN_TIMEOUT_A = 120.0


@pytest.mark.slow
def test_two_replicas_hand_each_process_to_exactly_one_executor(
    database: str, start_replica: Callable[..., Replica]
) -> None:
    server_prvkey = crypto.generate_private_key()
    replicas = [start_replica(database, server_prvkey, "a"), start_replica(database, server_prvkey, "b")]
    for replica in replicas:
        replica.wait_healthy()
    with replicas[0].client() as admin:
        env = make_colony(admin, replicas[0])  # type: ignore[arg-type]  # duck-typed server
        workers = add_executors(env, EXECUTORS_A)

        stop = threading.Event()
        executors = [
            ExecutorLoop(name, prvkey, env.colonyname, [replicas[i % 2]], stop)
            for i, (name, prvkey) in enumerate(workers)
        ]
        submitted: list[list[str]] = [[], []]
        submit_errors: list[str] = []
        half = TOTAL_A // 2
        submitters = [
            threading.Thread(target=submit_many, daemon=True,
                             args=(replicas[i], env, range(i * half, (i + 1) * half), submitted[i],
                                   submit_errors))
            for i in (0, 1)
        ]
        started = time.monotonic()
        try:
            for thread in (*executors, *submitters):
                thread.start()
            for submitter in submitters:
                submitter.join(RUN_TIMEOUT_A)
            assert not submit_errors, submit_errors
            wait_until(lambda: completed(executors) >= TOTAL_A or any(e.errors for e in executors),
                       RUN_TIMEOUT_A, f"{TOTAL_A} processes to be closed", interval=0.2)
        finally:
            stop_threads(executors, stop, timeout=30)
        elapsed = time.monotonic() - started

        # Exactly one executor ever received each process, and each was closed exactly once.
        received = Counter(pid for e in executors for pid in e.received)
        twice = {pid: n for pid, n in received.items() if n > 1}
        assert not twice, f"{len(twice)} processes were handed out more than once: {list(twice.items())[:5]}"
        errors = [err for e in executors for err in e.errors]
        assert not errors, errors[:20]
        ids = submitted[0] + submitted[1]
        assert len(ids) == TOTAL_A and len(set(ids)) == TOTAL_A
        assert set(received) == set(ids)
        closed = Counter(pid for e in executors for pid in e.closed)
        assert all(n == 1 for n in closed.values())
        assert set(closed) == set(ids)
        assert all(e.failovers == 0 and not e.ambiguous and not e.refused for e in executors)
        # Both replicas did real work.
        for replica in replicas:
            served = sum(len(e.closed) for e in executors if e.endpoint is replica)
            assert served > 0, f"{replica.name} closed nothing"

        # The server agrees: all SUCCESS, and its per-executor close counters match ours.
        assert state_counts(admin, env) == {
            "waitingprocesses": 0, "runningprocesses": 0, "successfulprocesses": TOTAL_A,
            "failedprocesses": 0, "cancelledprocesses": 0,
        }
        assert function_counters(admin, env) == {e.executorname: len(e.closed) for e in executors}
        receiver = {pid: e for e in executors for pid in e.received}
        sample = random.Random(7).sample(ids, 300)
        for pid, process in fetch_processes(replicas[1], sample, env.user_prvkey).items():
            assert process.state == wire.SUCCESS
            assert process.assignedexecutorid == receiver[pid].executorid
            assert process.output == [receiver[pid].executorname]
            assert process.retries == 0
    for replica in replicas:
        assert replica.alive, replica.output
    print(f"\n{TOTAL_A} processes through 2 replicas and {EXECUTORS_A} executors in {elapsed:.1f} s")


# -- (b) kill -9 one replica mid-load ---------------------------------------------------------------

TOTAL_B = 1500
EXEC_TIME_B = 3
RETRIES_B = 5
RUN_TIMEOUT_B = 90.0


@pytest.mark.slow
def test_killing_a_replica_mid_load_loses_no_process(
    database: str, start_replica: Callable[..., Replica]
) -> None:
    server_prvkey = crypto.generate_private_key()
    # The doomed replica starts first, so it is the one sweeping deadlines when it dies: the
    # survivor must take the sweeper over to retry the processes whose assign reply was lost.
    doomed = start_replica(database, server_prvkey, "doomed")
    doomed.wait_healthy()
    survivor = start_replica(database, server_prvkey, "survivor")
    survivor.wait_healthy()
    with survivor.client() as admin:
        env = make_colony(admin, survivor)  # type: ignore[arg-type]  # duck-typed server
        workers = add_executors(env, 8)

        # All work is queued first (half through each replica), so the count of processes is exact.
        submitted: list[list[str]] = [[], []]
        submit_errors: list[str] = []
        half = TOTAL_B // 2
        submitters = [
            threading.Thread(target=submit_many, daemon=True,
                             args=(replica, env, range(i * half, (i + 1) * half), submitted[i],
                                   submit_errors),
                             kwargs={"maxexectime": EXEC_TIME_B, "maxretries": RETRIES_B})
            for i, replica in enumerate((survivor, doomed))
        ]
        for submitter in submitters:
            submitter.start()
        for submitter in submitters:
            submitter.join(60)
        assert not submit_errors, submit_errors
        ids = submitted[0] + submitted[1]
        assert len(set(ids)) == TOTAL_B

        stop = threading.Event()
        executors = [
            ExecutorLoop(name, prvkey, env.colonyname,
                         [doomed, survivor] if i % 2 else [survivor, doomed], stop)
            for i, (name, prvkey) in enumerate(workers)
        ]
        on_doomed = [e for e in executors if e.endpoints[0] is doomed]
        try:
            for executor in executors:
                executor.start()
            wait_until(lambda: completed(executors) >= TOTAL_B // 3, RUN_TIMEOUT_B,
                       "a third of the processes to be closed", interval=0.02)
            doomed.proc.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            doomed.proc.wait(10)
            done_at_kill = completed(executors)

            def finished() -> bool:
                counts = state_counts(admin, env)
                return counts["waitingprocesses"] == 0 and counts["runningprocesses"] == 0

            wait_until(finished, RUN_TIMEOUT_B, "every process to finish after the kill", interval=0.25)
        finally:
            stop_threads(executors, stop, timeout=30)
        recovery = time.monotonic() - killed_at

        errors = [err for e in executors for err in e.errors]
        assert not errors, errors[:20]
        assert survivor.alive, survivor.output
        assert done_at_kill < TOTAL_B, "the replica was killed after all the work was done"
        # Every executor of the killed replica noticed and carried on through the survivor.
        for executor in on_doomed:
            assert executor.failovers >= 1, f"{executor.executorname} never failed over"
            assert executor.endpoint is survivor
        assert sum(e.closed_after_failover for e in on_doomed) > 0

        # Nothing lost: every process is SUCCESS, or FAILED only by its retry policy.
        counts = state_counts(admin, env)
        assert sum(counts.values()) == TOTAL_B, counts
        processes = fetch_processes(survivor, ids, env.user_prvkey)
        assert set(processes) == set(ids)
        received = Counter(pid for e in executors for pid in e.received)
        closed = Counter(pid for e in executors for pid in e.closed)
        by_state: Counter[int] = Counter()
        for pid, process in processes.items():
            by_state[process.state] += 1
            if process.state == wire.FAILED:
                assert process.retries == RETRIES_B, process
                assert any("Maximum execution time" in str(err) for err in process.errors), process.errors
            else:
                assert process.state == wire.SUCCESS, process
            # A process is handed out again only after its lease expired and it was retried.
            assert received[pid] <= process.retries + 1, (pid, received[pid], process.retries)
            assert closed[pid] <= 1, (pid, closed[pid])
        assert by_state[wire.SUCCESS] + by_state[wire.FAILED] == TOTAL_B
        assert by_state[wire.SUCCESS] == counts["successfulprocesses"]
        # Each SUCCESS was counted once by the server (a close whose reply was lost counts once too).
        assert sum(function_counters(admin, env).values()) == by_state[wire.SUCCESS]
        retried = sum(1 for p in processes.values() if p.retries > 0)
    print(f"\nkilled a replica after {done_at_kill}/{TOTAL_B} closes; all finished {recovery:.1f} s later; "
          f"{retried} processes retried, {by_state[wire.FAILED]} failed, "
          f"{sum(len(e.ambiguous) for e in executors)} closes with a lost reply")


# -- (c) an executor killed while holding a process -------------------------------------------------

EXECUTOR_SCRIPT = """
import os, sys, time
from pycolonies import Colonies, wire
client = Colonies(os.environ["T_HOST"], int(os.environ["T_PORT"]), timeout=30)
p = client.assign(os.environ["T_COLONY"], 20, os.environ["T_PRVKEY"])
print("ASSIGNED", p.processid, p.assignedexecutorid, p.state, p.starttime.isoformat(),
      p.execdeadline.isoformat() if p.execdeadline else "-", flush=True)
while True:
    time.sleep(3600)
"""


def test_killed_executors_process_is_retried_by_another_executor(colony: ColonyEnv) -> None:
    doomed_prvkey = colony.add_executor("doomed")
    doomed_id = crypto.derive_id(doomed_prvkey)
    submitted = colony.client.submit_func_spec(
        work_spec(colony, 0, maxexectime=2, maxretries=1), colony.user_prvkey
    )
    lines: list[str] = []
    proc = subprocess.Popen(
        [sys.executable, "-c", EXECUTOR_SCRIPT],
        env=cli_env(T_HOST=colony.server.host, T_PORT=str(colony.server.port), T_COLONY=colony.colonyname,
                    T_PRVKEY=doomed_prvkey),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    reader = threading.Thread(target=lambda: lines.extend(line.strip() for line in proc.stdout or ()),
                              daemon=True)
    reader.start()
    try:
        wait_until(lambda: any(line.startswith("ASSIGNED") for line in lines) or proc.poll() is not None,
                   30, "the executor subprocess to be assigned a process")
        assigned = [line.split() for line in lines if line.startswith("ASSIGNED")]
        assert assigned, lines
        _, processid, executorid, state, starttime, execdeadline = assigned[0]
        assert (processid, executorid, int(state)) == (submitted.processid, doomed_id, wire.RUNNING)
        # The lease the dead executor held: maxexectime (2 s) from its assignment.
        deadline = datetime.fromisoformat(execdeadline)
        lease = (deadline - datetime.fromisoformat(starttime)).total_seconds()
        assert 1.9 <= lease <= 2.1, lease
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    # The sweeper puts it back to WAITING with one retry used, once the lease has run out.
    def left_running() -> Process | None:
        process = colony.client.get_process(submitted.processid, colony.user_prvkey)
        return process if process.state != wire.RUNNING else None

    requeued = wait_until(left_running, 2 + 8, "the expired lease to be requeued")
    assert datetime.now(UTC) >= deadline - timedelta(seconds=0.05), "requeued before maxexectime passed"
    assert requeued.state == wire.WAITING, requeued
    assert requeued.retries == 1
    assert requeued.assignedexecutorid == ""
    assert not requeued.isassigned

    def refused_close_by_the_dead_executor() -> None:
        with pytest.raises(ColoniesServerError) as refused:
            colony.client.close(submitted.processid, ["zombie"], doomed_prvkey)
        assert refused.value.status in (400, 403), refused.value

    # The dead executor's key, closing late, is refused and changes nothing.
    refused_close_by_the_dead_executor()
    after = colony.client.get_process(submitted.processid, colony.user_prvkey)
    assert (after.state, after.retries, after.assignedexecutorid) == (wire.WAITING, 1, "")

    # Another executor gets it, and the zombie cannot close it under that executor either.
    with Colonies(colony.server.host, colony.server.port, timeout=30) as other:
        again = other.assign(colony.colonyname, 5, colony.executor_prvkey)
        assert again.processid == submitted.processid
        assert again.retries == 1
        assert again.assignedexecutorid == crypto.derive_id(colony.executor_prvkey)
        refused_close_by_the_dead_executor()
        other.close(submitted.processid, ["done"], colony.executor_prvkey)
    done = colony.client.get_process(submitted.processid, colony.user_prvkey)
    assert done.state == wire.SUCCESS
    assert done.output == ["done"]
    assert done.retries == 1
    refused_close_by_the_dead_executor()
    assert colony.client.get_process(submitted.processid, colony.user_prvkey).output == ["done"]


# -- (d) PostgreSQL restarted under a running server ------------------------------------------------

RECOVERY_TIMEOUT = 45.0
WAKE_BOUND = 10.0  # well under the assign's internal 30 s re-check slice


class LongPoll(threading.Thread):
    def __init__(self, replica: Replica, colonyname: str, prvkey: str, timeout: int = 45) -> None:
        super().__init__(daemon=True)
        self.replica = replica
        self.colonyname = colonyname
        self.prvkey = prvkey
        self.timeout = timeout
        self.result: Process | None = None
        self.error: BaseException | None = None
        self.finished_at: float | None = None

    def run(self) -> None:
        try:
            with self.replica.client(timeout=30) as sdk:
                self.result = sdk.assign(self.colonyname, self.timeout, self.prvkey)
        except BaseException as exc:  # reported to the test thread
            self.error = exc
        finally:
            self.finished_at = time.monotonic()


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own (not the session one), stopped afterwards."""
    pg = EmbeddedPostgres(tmp_path / "pg")
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


@pytest.mark.slow
def test_server_rides_out_a_postgres_restart(
    private_postgres: EmbeddedPostgres, start_replica: Callable[..., Replica]
) -> None:
    pg = private_postgres
    replica = start_replica(pg.dsn, crypto.generate_private_key(), "pg-restart")
    replica.wait_healthy()
    # no retries: the 503s of the outage are what is tested
    with replica.client(timeout=20, retry_for=0) as client:
        env = make_colony(client, replica)  # type: ignore[arg-type]  # duck-typed server
        other_prvkey = env.add_executor("checker", "checker")

        def round_trip(executortype: str, prvkey: str) -> None:
            """submit, assign and close one process of ``executortype``, strictly."""
            submitted = client.submit_func_spec(
                work_spec(env, 0, conditions={"colonyname": env.colonyname, "executortype": executortype}),
                env.user_prvkey,
            )
            assigned = client.assign(env.colonyname, 5, prvkey)
            assert assigned.processid == submitted.processid
            client.close(assigned.processid, ["ok"], prvkey)
            assert client.get_process(assigned.processid, env.user_prvkey).state == wire.SUCCESS

        round_trip("checker", other_prvkey)
        round_trip(env.executortype, env.executor_prvkey)

        # A long-poll in flight across the restart.
        across = LongPoll(replica, env.colonyname, env.executor_prvkey)
        across.start()
        time.sleep(0.5)
        assert across.is_alive(), f"the long-poll returned early: {across.result!r} {across.error!r}"

        pg.stop()
        try:
            # Requests get a clean 503 envelope, /health says 503, and the server stays up.
            for attempt in (
                lambda: client.stats(env.colonyname, env.user_prvkey),
                lambda: client.submit_func_spec(work_spec(env, 1), env.user_prvkey),
                lambda: client.assign(env.colonyname, -1, other_prvkey),
            ):
                with pytest.raises(ColoniesServerError) as outage:
                    attempt()
                assert outage.value.status == 503, repr(outage.value)
            assert replica.health() == 503
            assert replica.alive, replica.output
        finally:
            pg.start()  # same data directory, same port
        restarted = time.monotonic()

        # Within a bounded time it serves again.
        wait_until(lambda: replica.health() == 200, RECOVERY_TIMEOUT, "/health to be 200 again",
                   interval=0.2)

        def serves() -> bool:
            try:
                client.stats(env.colonyname, env.user_prvkey)
            except ColoniesServerError as exc:
                assert exc.status == 503, repr(exc)
                return False
            return True

        wait_until(serves, RECOVERY_TIMEOUT, "requests to succeed again", interval=0.2)
        print(f"\nserving again {time.monotonic() - restarted:.1f} s after PostgreSQL restarted")
        round_trip("checker", other_prvkey)

        # The long-poll that waited across the restart is still waiting (or was released with a
        # clean 503 during the outage); one started now waits too. A new submit wakes each of them.
        print(f"long-poll across the restart: {'still waiting' if across.is_alive() else repr(across.error)}")
        if not across.is_alive():
            assert isinstance(across.error, ColoniesServerError) and across.error.status == 503, (
                across.result, across.error)
        fresh = LongPoll(replica, env.colonyname, env.executor_prvkey)
        fresh.start()
        time.sleep(0.5)
        assert fresh.is_alive(), f"the long-poll returned early: {fresh.result!r} {fresh.error!r}"
        waiting = [p for p in (across, fresh) if p.is_alive()]
        submitted_at = time.monotonic()
        ids = {client.submit_func_spec(work_spec(env, 10 + i), env.user_prvkey).processid
               for i in range(len(waiting))}
        for poller in waiting:
            poller.join(WAKE_BOUND + 5)
        for poller in waiting:
            assert not poller.is_alive(), "a long-poll was not woken by a submit after the restart"
            assert poller.error is None, repr(poller.error)
            assert poller.finished_at is not None
            assert poller.finished_at - submitted_at < WAKE_BOUND, "woken by its re-check, not the submit"
        assert {p.result.processid for p in waiting if p.result} == ids
        for poller in waiting:
            assert poller.result is not None
            client.close(poller.result.processid, ["ok"], env.executor_prvkey)
        round_trip(env.executortype, env.executor_prvkey)
        assert replica.alive, replica.output
    assert http_status(f"{replica.url}/health") == 200


# -- (e) the deadline sweeper across replicas (fast, in-process servers) ----------------------------


def test_sweeper_moves_to_a_surviving_replica_and_counts_each_expiry_once(colony: ColonyEnv) -> None:
    """One sweeper at a time (an advisory lock), conditional updates, no double increments."""
    first = colony.server
    expiring = {"maxexectime": 1, "maxretries": -1}

    def requeued_all(client: Colonies, ids: list[str]) -> list[Process] | None:
        processes = [client.get_process(pid, colony.user_prvkey) for pid in ids]
        return processes if all(p.state == wire.WAITING for p in processes) else None

    # Alone, the first replica sweeps: it is the leader.
    probe = colony.client.submit_func_spec(work_spec(colony, 0, **expiring), colony.user_prvkey).processid
    assert colony.client.assign(colony.colonyname, 5, colony.executor_prvkey).processid == probe
    wait_until(lambda: requeued_all(colony.client, [probe]), 1 + 5, "the only replica to sweep")

    second = ServerThread(first.dsn, server_prvkey=first.server_prvkey).start()
    try:
        with Colonies(second.host, second.port, timeout=30) as other:
            clients = [colony.client, other]
            ids = [probe]
            for i in range(1, 12):
                submitted = clients[i % 2].submit_func_spec(work_spec(colony, i, **expiring),
                                                            colony.user_prvkey)
                ids.append(submitted.processid)
            # Both replicas hand out leases; all expire together while both replicas run.
            for i in range(len(ids)):
                clients[i % 2].assign(colony.colonyname, 5, colony.executor_prvkey)
            swept = wait_until(lambda: requeued_all(other, ids), 1 + 5, "every lease to be requeued")
            assert {p.processid: p.retries for p in swept} == {pid: (2 if pid == probe else 1) for pid in ids}

            # The leader goes away; the other replica takes the sweeping over.
            first.stop()
            for _ in ids:
                other.assign(colony.colonyname, 5, colony.executor_prvkey)
            leased_at = time.monotonic()
            swept = wait_until(lambda: requeued_all(other, ids), 1 + 1 + 6,
                               "the surviving replica to take the sweeper over")
            took = time.monotonic() - leased_at
            print(f"\nrequeued by the surviving replica {took:.1f} s after assignment")
            assert {p.processid: p.retries for p in swept} == {pid: (3 if pid == probe else 2) for pid in ids}
    finally:
        second.stop()


def _chunks_pending(dsn: str) -> int:
    """Backends idling inside an upload's open transaction after writing a chunk."""
    async def count() -> int:
        con = await asyncpg.connect(dsn)
        try:
            return await con.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE state = 'idle in transaction' AND query LIKE 'INSERT INTO blob_chunks%'"
            )
        finally:
            await con.close()

    return asyncio.run(count())


@pytest.mark.slow
def test_killing_a_replica_mid_upload_leaves_no_half_visible_file(
    database: str, start_replica: Callable[..., Replica]
) -> None:
    server_prvkey = crypto.generate_private_key()
    doomed = start_replica(database, server_prvkey, "doomed")
    doomed.wait_healthy()
    with doomed.client() as admin:
        env = make_colony(admin, doomed)  # type: ignore[arg-type]  # duck-typed server
    data = os.urandom(8 * 1024 * 1024)
    headers = blobs.signed_headers("putblobmsg", env.colonyname, "big", env.user_prvkey, size=len(data),
                                   checksum=hashlib.sha256(data).hexdigest())
    sock = socket.create_connection((HOST, doomed.port))
    try:
        head = f"PUT {blobs.blob_path(env.colonyname, 'big')} HTTP/1.1\r\nHost: x\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + f"Content-Length: {len(data)}\r\n\r\n"
        sock.sendall(head.encode() + data[: 3 * 1024 * 1024])
        wait_until(lambda: _chunks_pending(database) > 0, 30, "the upload to be writing chunks")
        doomed.kill()
    finally:
        sock.close()
    survivor = start_replica(database, server_prvkey, "survivor")
    survivor.wait_healthy()
    with survivor.client() as client:
        assert client.get_file_labels(env.colonyname, env.user_prvkey) == []
        client.s3 = None
        get = blobs.signed_headers("getblobmsg", env.colonyname, "big", env.user_prvkey)
        conn = http.client.HTTPConnection(HOST, survivor.port, timeout=30)
        conn.request("GET", blobs.blob_path(env.colonyname, "big"), headers=get)
        assert conn.getresponse().status == 404
        conn.close()
        record = client.upload_data(env.colonyname, env.user_prvkey, filename="big", data=data, label="/d")
        assert client.download_data(env.colonyname, env.user_prvkey, fileid=record["fileid"]) == data
