"""The executor base (``executors.base``/``executors.worker``) with a small test kind
(``tests/executors/toy_executor.py``) run as a real subprocess against a real server: results,
failures, logs, bounded concurrency, cancellation, heartbeats, server restarts, graceful shutdown
and registration."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from executors.config import ConfigError, ExecutorConfig
from executors.logs import LogForwarder
from executors.register import RegistrationError
from executors.retry import Backoff
from pycolonies import crypto, wire
from pycolonies.aio import AsyncColonies
from pycolonies.models import Process
from server.testing import ServerThread
from tests.conftest import ColonyEnv
from tests.executors.harness import (
    TOY,
    RunningExecutor,
    executor_env,
    log_text,
    submit,
    wait_state,
)
from tests.executors.toy_executor import ToyExecutor
from tests.support import wait_until

StartToy = Callable[..., RunningExecutor]


@pytest.fixture
def start_toy(colony: ColonyEnv, tmp_path: Path) -> Iterator[StartToy]:
    """``start_toy(*options, **env)`` starts the toy executor registered with the colony key."""
    started: list[RunningExecutor] = []

    def start(*options: str, ready: bool = True, **variables: str) -> RunningExecutor:
        variables.setdefault("COLONIES_COLONY_PRVKEY", colony.colony_prvkey)
        env = executor_env(colony.server.port, colony.colonyname, **variables)
        executor = RunningExecutor([*TOY, *options], env, tmp_path / f"toy{len(started)}")
        started.append(executor)
        return executor.wait_ready() if ready else executor

    yield start
    for executor in started:
        executor.stop()


def run(colony: ColonyEnv, funcname: str, *args: object, **kwargs: object) -> Process:
    return submit(colony.client, colony.colonyname, colony.user_prvkey, funcname, *args, **kwargs)


def state(colony: ColonyEnv, processid: str) -> int:
    return colony.client.get_process(processid, colony.user_prvkey).state


def test_register_run_close_fail_and_log(colony: ColonyEnv, start_toy: StartToy) -> None:
    toy = start_toy()
    assert toy.name.startswith("toy-") and len(toy.name) == len("toy-") + 8
    assert f"Registered executor {toy.name} (type toy) in colony dev" in toy.stdout
    executor = colony.client.get_executor(colony.colonyname, toy.name, colony.user_prvkey)
    assert executor["state"] == wire.APPROVED and executor["executortype"] == "toy"
    functions = colony.client.get_functions_by_executor(colony.colonyname, toy.name, colony.user_prvkey)
    assert {f["funcname"] for f in functions} == {"echo", "fail", "crash", "chatty", "sleep", "block"}

    echo = run(colony, "echo", "hello", {"n": 42}, 1.5)
    failed = run(colony, "fail", "no luck")
    crashed = run(colony, "crash")
    chatty = run(colony, "chatty", 300, width=20_000)

    done = wait_state(colony.client, echo, colony.user_prvkey)
    assert done.state == wire.SUCCESS and done.output == ["hello", {"n": 42}, 1.5]
    done = wait_state(colony.client, failed, colony.user_prvkey)
    assert done.state == wire.FAILED and done.errors == ["no luck", "details of no luck"]
    done = wait_state(colony.client, crashed, colony.user_prvkey)
    assert done.state == wire.FAILED and done.errors[0] == "RuntimeError: boom"
    assert "Traceback" in done.errors[1] and "_crash" in done.errors[1]
    done = wait_state(colony.client, chatty, colony.user_prvkey)
    assert done.state == wire.SUCCESS and done.output == [300]

    text, entries = log_text(colony.client, colony.colonyname, chatty.processid, colony.user_prvkey)
    lines = text.splitlines()
    assert lines[:300] == [f"line {i}" for i in range(300)]
    assert lines[300].startswith("x" * 8192) and lines[300].endswith("[11808 more characters cut]")
    assert entries < 30, "lines arriving together go out as one log entry"

    wait_until(lambda: toy.stderr.count(": succeeded in") == 2, 10, "one log line per success")
    assert f"{echo.processid[:8]} echo: succeeded in" in toy.stderr
    assert f"{failed.processid[:8]} fail: failed in" in toy.stderr and "no luck" in toy.stderr
    toy.signal(signal.SIGTERM)
    assert toy.wait_exit() == 0
    executors = colony.client.list_executors(colony.colonyname, colony.user_prvkey)
    assert toy.name not in {e["executorname"] for e in executors if e["state"] != wire.UNREGISTERED}, \
        "an executor registered with a generated key is removed when it stops"


def test_bounded_concurrency(colony: ColonyEnv, start_toy: StartToy) -> None:
    toy = start_toy("--concurrency", "2")
    processes = [run(colony, "sleep", 0.4) for _ in range(6)]
    done = [wait_state(colony.client, p, colony.user_prvkey) for p in processes]
    assert all(p.state == wire.SUCCESS for p in done), [p.errors for p in done]
    assert max(p.output[1] for p in done) == 2, "the executor ran 2 at once, never more"
    events = sorted([(p.starttime, 1) for p in done] + [(p.endtime, -1) for p in done],
                    key=lambda event: (event[0], event[1]))
    running, peak = 0, 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 2, "the server saw 2 processes running at once, never more"
    toy.signal(signal.SIGTERM)
    assert toy.wait_exit() == 0


def test_cancel_stops_the_work_unclosed(colony: ColonyEnv, start_toy: StartToy, tmp_path: Path) -> None:
    toy = start_toy()
    marker = tmp_path / "ticks.txt"
    process = run(colony, "sleep", 60, marker=str(marker))
    wait_until(lambda: marker.exists() and marker.read_text().count("tick") >= 3, 30, "the work to start")
    colony.client.cancel_process(process.processid, colony.user_prvkey)
    wait_until(lambda: "the process was cancelled" in toy.stderr, 10, "the executor to notice")
    ticks = marker.read_text().count("tick")
    time.sleep(0.3)
    assert marker.read_text().count("tick") == ticks, "the work stopped"
    assert state(colony, process.processid) == wire.CANCELLED
    assert "refused" not in toy.stderr, "a cancelled process is not closed"
    after = run(colony, "echo", "next")
    assert wait_state(colony.client, after, colony.user_prvkey).output == ["next"], "the slot is free again"


def test_heartbeats_during_a_long_process(colony: ColonyEnv, start_toy: StartToy) -> None:
    toy = start_toy("--heartbeat", "0.2")
    process = run(colony, "sleep", 1.5)
    wait_state(colony.client, process, colony.user_prvkey, states=[wire.RUNNING])

    def heard() -> datetime:
        executor = colony.client.get_executor(colony.colonyname, toy.name, colony.user_prvkey)
        return datetime.fromisoformat(executor["lastheardfromtime"].replace("Z", "+00:00"))

    first = heard()
    wait_until(lambda: heard() > first, 5, "lastheardfromtime to advance while the process runs")
    assert state(colony, process.processid) == wire.RUNNING
    assert wait_state(colony.client, process, colony.user_prvkey).state == wire.SUCCESS


def test_backs_off_and_reconnects_after_a_server_restart(colony: ColonyEnv, start_toy: StartToy) -> None:
    toy = start_toy()
    first = colony.server
    first.stop()
    wait_until(lambda: "unreachable" in toy.stderr, 15, "the executor to notice the outage")
    time.sleep(1.5)  # a few retries while the server is down
    second = ServerThread(first.dsn, port=first.port, server_prvkey=first.server_prvkey).start()
    try:
        process = run(colony, "echo", "after the restart")
        done = wait_state(colony.client, process, colony.user_prvkey, timeout=30)
        assert done.state == wire.SUCCESS and done.output == ["after the restart"]
        assert toy.stderr.count("unreachable") == 1, "one log line per outage, not per retry"
        assert toy.stderr.count("answers again") == 1
        assert toy.popen.poll() is None
    finally:
        toy.stop()
        second.stop()


def test_sigterm_lets_running_work_finish(colony: ColonyEnv, start_toy: StartToy) -> None:
    toy = start_toy("--grace", "30")
    running = run(colony, "sleep", 1.5)
    wait_state(colony.client, running, colony.user_prvkey, states=[wire.RUNNING])
    waiting = run(colony, "echo", "not taken")
    started = time.monotonic()
    toy.signal(signal.SIGTERM)
    assert toy.wait_exit(30) == 0
    assert time.monotonic() - started < 10
    assert state(colony, running.processid) == wire.SUCCESS
    assert state(colony, waiting.processid) == wire.WAITING, "no new work once stopping"
    assert "SIGTERM: stopping" in toy.stderr


@pytest.mark.parametrize("how", ["grace", "second-signal"])
def test_sigterm_gives_unfinished_work_back(
    colony: ColonyEnv, start_toy: StartToy, tmp_path: Path, how: str
) -> None:
    gate = tmp_path / "gate"
    toy = start_toy("--grace", "0.5" if how == "grace" else "60")
    process = run(colony, "block", str(gate))
    wait_until(Path(f"{gate}.started").exists, 30, "the work to start")
    started = time.monotonic()
    toy.signal(signal.SIGTERM)
    if how == "second-signal":
        wait_until(lambda: "SIGTERM: stopping" in toy.stderr, 10, "the executor to log the SIGTERM")
        toy.signal(signal.SIGINT)
    assert toy.wait_exit(30) == 0
    assert time.monotonic() - started < 10
    released = colony.client.get_process(process.processid, colony.user_prvkey)
    assert released.state == wire.WAITING and released.retries == 0 and not released.assignedexecutorid
    assert "given back to the queue" in toy.stderr

    gate.touch()
    other = start_toy()
    done = wait_state(colony.client, process, colony.user_prvkey)
    assert done.state == wire.SUCCESS and done.output == ["unblocked"]
    executor = colony.client.get_executor(colony.colonyname, other.name, colony.user_prvkey)
    assert done.assignedexecutorid == executor["executorid"]


def test_an_approved_executor_key_is_used_as_is(colony: ColonyEnv, start_toy: StartToy) -> None:
    prvkey = colony.add_executor("toy-worker", "toy")
    toy = start_toy(COLONIES_PRVKEY=prvkey, COLONIES_COLONY_PRVKEY="")
    assert toy.name == "toy-worker" and "Registered" not in toy.stdout
    process = run(colony, "echo", 1)
    done = wait_state(colony.client, process, colony.user_prvkey)
    assert done.output == [1] and done.assignedexecutorid == crypto.derive_id(prvkey)
    functions = colony.client.get_functions_by_executor(colony.colonyname, "toy-worker", colony.user_prvkey)
    assert "echo" in {f["funcname"] for f in functions}
    toy.signal(signal.SIGINT)
    assert toy.wait_exit() == 0
    executor = colony.client.get_executor(colony.colonyname, "toy-worker", colony.user_prvkey)
    assert executor["state"] == wire.APPROVED, "an executor given by its key is kept"


@pytest.mark.parametrize(
    ("variables", "needles"),
    [
        ({"COLONIES_COLONY_NAME": ""}, ["COLONIES_COLONY_NAME"]),
        ({"COLONIES_COLONY_PRVKEY": ""}, ["COLONIES_PRVKEY", "COLONIES_COLONY_PRVKEY"]),
        ({"COLONIES_PRVKEY": "unapproved"}, ["'toy-pending'", "pending, not approved"]),
        ({"COLONIES_PRVKEY": "stranger"}, ["not the key of an executor of colony 'dev'"]),
        ({"COLONIES_COLONY_PRVKEY": "stranger"}, ["not the key of that colony's owner"]),
        ({"COLONIES_PRVKEY": "xyz"}, ["COLONIES_PRVKEY is not a valid private key", "64 hex"]),
    ],
)
def test_bad_settings_fail_with_one_clear_line(
    colony: ColonyEnv, start_toy: StartToy, variables: dict[str, str], needles: list[str]
) -> None:
    keys = {"unapproved": colony.add_executor("toy-pending", "toy", approve=False),
            "stranger": crypto.generate_private_key()}
    variables = {name: keys.get(value, value) for name, value in variables.items()}
    if "COLONIES_PRVKEY" in variables:
        variables["COLONIES_COLONY_PRVKEY"] = ""
    toy = start_toy(ready=False, **variables)
    assert toy.wait_exit(30) == 1
    lines = [line for line in toy.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), toy.stderr
    for needle in needles:
        assert needle in lines[0]


async def test_in_process_run_and_stop(colony: ColonyEnv) -> None:
    config = ExecutorConfig(host=colony.server.host, port=colony.server.port, colonyname=colony.colonyname,
                            colony_prvkey=colony.colony_prvkey, executorname="toy-in-process")
    announced: list[str] = []
    toy = ToyExecutor(config, announce=announced.append)
    task = asyncio.create_task(toy.run())
    async with AsyncColonies(colony.server.host, colony.server.port) as client:
        # Polled in a thread, so this loop goes on running the executor meanwhile.
        await asyncio.to_thread(wait_until, lambda: task.done() or any("ready" in line for line in announced),
                                30, "the executor to announce it is ready")
        assert not task.done(), task
        spec = {"funcname": "echo", "args": ["in process"], "maxexectime": -1,
                "conditions": {"colonyname": colony.colonyname, "executortype": "toy"}}
        process = await client.submit_func_spec(spec, colony.user_prvkey)
        done = await client.wait(process, 10, colony.user_prvkey)
        assert done.output == ["in process"]
        toy.stop()
        await asyncio.wait_for(task, 10)
        assert toy.identity is not None and toy.identity.executorname == "toy-in-process"
    with pytest.raises(ConfigError, match="COLONIES_COLONY_NAME"):
        await ToyExecutor(config.replace(colonyname="")).run()
    with pytest.raises(RegistrationError, match="not the key of an executor"):
        await ToyExecutor(config.replace(prvkey=crypto.generate_private_key())).run()


async def test_log_forwarder_coalesces_caps_and_drops() -> None:
    """Against a sink slower than the producer: batches, cut lines, a dropped-lines note in place,
    and a total limit."""
    received: list[str] = []

    async def slow_sink(text: str) -> None:
        await asyncio.sleep(0.02)
        received.append(text)

    forwarder = LogForwarder(slow_sink, linger=0.02, max_line=10, max_batch=100, max_pending=200,
                             max_total=1000)
    for i in range(100):  # faster than the sink: the first 200 characters wait, the rest is dropped
        await forwarder.log(f"line {i}")
    while forwarder.pending:
        await asyncio.sleep(0.01)
    await forwarder.log("y" * 50)
    await forwarder.close()
    await forwarder.log("after close")
    lines = "".join(received).splitlines()
    kept = lines_within(200)
    assert lines[:kept] == [f"line {i}" for i in range(kept)]
    assert lines[kept] == (f"[executor: {100 - kept} lines dropped: the output came faster than the "
                           "server took it]")
    assert lines[kept + 1:] == ["y" * 10 + "... [40 more characters cut]"]
    assert all(len(batch) <= 100 for batch in received) and len(received) < kept

    received.clear()
    forwarder = LogForwarder(slow_sink, linger=0.02, max_total=100)
    for i in range(50):
        await forwarder.log(f"line {i}")
        await asyncio.sleep(0)
    await forwarder.close()
    lines = "".join(received).splitlines()
    kept = lines_within(100)
    assert lines[:kept] == [f"line {i}" for i in range(kept)] and len(lines) == kept + 1
    assert lines[kept].startswith("[executor: the log limit of 100 characters per process is reached")


def lines_within(limit: int) -> int:
    """How many of "line 0", "line 1", ... (each with its newline) fit in ``limit`` characters."""
    count = total = 0
    while total + len(f"line {count}\n") <= limit:
        total += len(f"line {count}\n")
        count += 1
    return count


def test_config_from_the_environment_and_overrides() -> None:
    env = {"COLONIES_SERVER_HOST": "colonies.example", "COLONIES_SERVER_PORT": "443", "COLONIES_TLS": "true",
           "COLONIES_COLONY_NAME": "lab", "COLONIES_COLONY_PRVKEY": "ab" * 32,
           "COLONIES_EXECUTOR_NAME": "gpu-1", "COLONIES_EXECUTOR_TYPE": "gpu"}
    config = ExecutorConfig.from_env(env, concurrency=3, grace=None).checked()
    assert (config.host, config.port, config.tls, config.colonyname) == ("colonies.example", 443, True, "lab")
    assert (config.executorname, config.executortype) == ("gpu-1", "gpu")
    assert (config.concurrency, config.grace) == (3, 30), "None leaves the default"
    assert ExecutorConfig.from_env({"COLONIES_SERVER_TLS": "true"}).tls
    with pytest.raises(ConfigError, match="COLONIES_SERVER_PORT must be an integer"):
        ExecutorConfig.from_env({"COLONIES_SERVER_PORT": "http"})
    with pytest.raises(ConfigError, match="COLONIES_EXECUTOR_NAME"):
        config.replace(executorname="a:b").checked()


def test_backoff_doubles_with_jitter_up_to_the_limit() -> None:
    backoff = Backoff(0.5, 10.0)
    delays = [backoff.next_delay() for _ in range(10)]
    for attempt, delay in enumerate(delays):
        ceiling = min(10.0, 0.5 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 0.5
