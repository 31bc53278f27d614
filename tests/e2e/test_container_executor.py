"""``colonies executor start --type container`` as a real subprocess against a real server, running
real podman containers from images built here without a registry: the reference's spec, failures,
bad specs, cancellation, maxexectime with retries, the memory limit, a flood of output, kill -9 and
restart, and a workflow mixing the python and the container executor."""

from __future__ import annotations

import copy
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pycolonies import Workflow, func_spec, wire
from pycolonies.models import Fs, FuncSpec, Process
from tests.conftest import ColonyEnv
from tests.executors.harness import RunningExecutor, log_text, shared_dir, starting, wait_state
from tests.support import wait_until
from tests.support.images import build_busybox, build_python, containers, require_podman
from tests.support.specs import with_changes

pytestmark = [pytest.mark.slow, pytest.mark.podman]

EXECUTORTYPE = "container-executor"
# The reference spec, unchanged but for the image (no registry is reachable here).
REFERENCE = {
    "conditions": {"executortype": "container-executor", "nodes": 1, "processespernode": 1,
                   "mem": "1Gi", "cpu": "500m", "walltime": 200, "gpu": {"count": 0}},
    "funcname": "execute",
    "kwargs": {"cmd": "echo", "args": ["hello", "world"], "docker-image": "ubuntu:20.04"},
    "maxwaittime": -1, "maxexectime": 100, "maxretries": 3,
}
StartContainer = Callable[..., RunningExecutor]


@pytest.fixture(scope="module")
def busybox() -> str:
    require_podman()
    return build_busybox()


@pytest.fixture
def start_container(colony: ColonyEnv, tmp_path: Path, busybox: str) -> Iterator[StartContainer]:
    """``start_container(*options, **env)``: ``colonies executor start --type container``,
    registered with the colony key unless ``COLONIES_PRVKEY`` is given."""
    with starting("container", colony.server.port, colony.colonyname, colony.colony_prvkey, tmp_path,
                  COLONIES_CONTAINER_STOP_GRACE="2") as start:
        yield start


def spec(colony: ColonyEnv, image: str, cmd: str, *args: str, **changes: Any) -> dict[str, Any]:
    """The reference spec running ``cmd args`` in ``image``, with ``changes`` to its top level
    (``kwargs``/``conditions`` entries are merged)."""
    data = copy.deepcopy(REFERENCE)
    data["conditions"]["colonyname"] = colony.colonyname
    data["kwargs"].update({"cmd": cmd, "args": list(args), "docker-image": image})
    return with_changes(data, **changes)


def submit(colony: ColonyEnv, data: dict[str, Any] | FuncSpec) -> Process:
    return colony.client.submit_func_spec(data, colony.user_prvkey)


def finished(colony: ColonyEnv, process: Process, timeout: float = 60.0) -> Process:
    return wait_state(colony.client, process, colony.user_prvkey, timeout=timeout)


def containers_of(process: Process) -> list[str]:
    return containers("colonies.process", process.processid)


def running_container(process: Process) -> str:
    """Wait until ``process`` has a container, and return its id."""
    found = wait_until(lambda: containers_of(process), 30, "the process's container to start")
    return found[0]


def test_the_reference_spec_says_hello_world(
    colony: ColonyEnv, start_container: StartContainer, busybox: str
) -> None:
    executor = start_container()
    data = copy.deepcopy(REFERENCE)
    data["kwargs"]["docker-image"] = busybox
    data["conditions"]["colonyname"] = colony.colonyname
    process = submit(colony, data)
    done = finished(colony, process)
    assert done.state == wire.SUCCESS and done.output == ["hello world"], done.errors
    text, _ = log_text(colony.client, colony.colonyname, process.processid, colony.user_prvkey)
    assert "hello world" in text
    assert not containers_of(process)
    functions = colony.client.get_functions_by_executor(colony.colonyname, executor.name, colony.user_prvkey)
    assert [f["funcname"] for f in functions] == ["execute"]


def test_a_failing_command_fails_with_its_stderr_and_env(
    colony: ColonyEnv, start_container: StartContainer, busybox: str
) -> None:
    start_container()
    script = 'echo "out line"; echo "bad $WHAT" >&2; exit 3'
    done = finished(colony, submit(colony, spec(colony, busybox, "sh", "-c", script, env={"WHAT": "news"})))
    assert done.state == wire.FAILED
    assert done.errors[0] == "the command exited with code 3", done.errors
    assert "bad news" in done.errors[1]


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"docker-image": None}, "kwargs['docker-image'] is missing"),
    ({"args": ["n", 1]}, "kwargs['args'][1] must be a string"),
    ({"cmd": ["echo"]}, "kwargs['cmd'] must be a string"),
    ({"docker-image": "localhost/no-such-image:1"},
     "is not on this executor's machine, and pulling is turned off"),
])
def test_bad_specs_fail_naming_the_field(
    colony: ColonyEnv, start_container: StartContainer, busybox: str, kwargs: dict[str, Any], needle: str
) -> None:
    start_container(COLONIES_CONTAINER_PULL="false")
    data = spec(colony, busybox, "echo", "hi")
    data["kwargs"].update(kwargs)
    data["kwargs"] = {k: v for k, v in data["kwargs"].items() if v is not None}
    done = finished(colony, submit(colony, data))
    assert done.state == wire.FAILED and needle in done.errors[0], done.errors
    assert finished(colony, submit(colony, spec(colony, busybox, "echo ok"))).output == ["ok"]


def test_cancelling_stops_the_container(
    colony: ColonyEnv, start_container: StartContainer, busybox: str
) -> None:
    executor = start_container()
    process = submit(colony, spec(colony, busybox, "sleep 60"))
    running_container(process)
    colony.client.cancel_process(process.processid, colony.user_prvkey)
    wait_until(lambda: not containers_of(process), 10, "the container to be gone")
    assert colony.client.get_process(process.processid, colony.user_prvkey).state == wire.CANCELLED
    wait_until(lambda: "the process was cancelled" in executor.stderr, 10, "the executor to notice")


def test_sigterm_stops_the_container_and_gives_the_process_back(
    colony: ColonyEnv, start_container: StartContainer, busybox: str
) -> None:
    executor = start_container("--grace", "1")
    process = submit(colony, spec(colony, busybox, "sleep 60"))
    running_container(process)
    executor.signal(signal.SIGTERM)
    assert executor.wait_exit(30) == 0
    assert not containers_of(process)
    released = colony.client.get_process(process.processid, colony.user_prvkey)
    assert released.state == wire.WAITING and released.retries == 0
    colony.client.cancel_process(process.processid, colony.user_prvkey)


def test_the_container_gets_no_key_of_the_executor(
    colony: ColonyEnv, start_container: StartContainer, busybox: str
) -> None:
    prvkey = colony.add_executor("box-1", EXECUTORTYPE)
    start_container(COLONIES_PRVKEY=prvkey)
    done = finished(colony, submit(colony, spec(colony, busybox, "env", env={"MINE": "1"})))
    assert done.state == wire.SUCCESS, done.errors
    text, _ = log_text(colony.client, colony.colonyname, done.processid, colony.user_prvkey)
    assert "MINE=1" in text and f"COLONIES_PROCESS_ID={done.processid}" in text
    assert prvkey not in text and colony.colony_prvkey not in text and "PRVKEY" not in text, text


def test_maxexectime_stops_the_container_and_the_retry_rule_applies(
    colony: ColonyEnv, start_container: StartContainer, busybox: str
) -> None:
    start_container()
    process = submit(colony, spec(colony, busybox, "sleep 60", maxexectime=2, maxretries=1))
    first = running_container(process)
    wait_until(lambda: first not in containers_of(process), 15, "the first container to be stopped")
    done = finished(colony, process, timeout=30)
    assert done.state == wire.FAILED and done.retries == 1, (done.state, done.retries)
    assert "Maximum execution time" in " ".join(done.errors), done.errors
    wait_until(lambda: not containers_of(process), 10, "the second container to be gone")


def test_exceeding_the_memory_limit_fails_clearly(
    colony: ColonyEnv, start_container: StartContainer, busybox: str
) -> None:
    start_container()
    hog = spec(colony, busybox, "sh", "-c", "head -c 300m /dev/zero | tail", conditions={"mem": "16Mi"})
    done = finished(colony, submit(colony, hog))
    assert done.state == wire.FAILED
    assert "memory limit of 16 MiB" in done.errors[0], done.errors


def test_a_flood_of_output_keeps_the_executor_small(
    colony: ColonyEnv, start_container: StartContainer, busybox: str
) -> None:
    executor = start_container()
    before = _peak_rss_mib(executor.popen.pid)
    script = "head -c 100m /dev/zero | tr '\\0' x | fold -w 4000; echo; echo end"
    flood = spec(colony, busybox, "sh", "-c", script)
    done = finished(colony, submit(colony, flood), timeout=120)
    assert done.state == wire.SUCCESS and done.output[-1] == "end", done.errors
    grown = _peak_rss_mib(executor.popen.pid) - before
    assert grown < 64, f"the executor grew by {grown} MiB for 100 MiB of output"
    text, _ = log_text(colony.client, colony.colonyname, done.processid, colony.user_prvkey)
    # bounded either way: the 16 MiB limit, or (a server slowed by a loaded machine) lines dropped
    assert len(text) <= 17 * 2**20 and ("log limit" in text or "lines dropped" in text), text[-300:]


def test_kill_9_and_restart_removes_the_orphan_and_the_process_is_retried(
    colony: ColonyEnv, start_container: StartContainer, busybox: str
) -> None:
    prvkey = colony.add_executor("box-1", EXECUTORTYPE)
    executor = start_container(COLONIES_PRVKEY=prvkey)
    process = submit(colony, spec(colony, busybox, "sleep 60", maxexectime=4, maxretries=1))
    orphan = running_container(process)
    executor.signal(signal.SIGKILL)
    executor.wait_exit(10)
    assert containers_of(process) == [orphan]  # the container outlives its executor...
    restarted = start_container(COLONIES_PRVKEY=prvkey)
    assert orphan not in containers("colonies.process", process.processid)  # ...until it starts again
    assert "Removed 1 container(s) left by an earlier run" in restarted.stdout
    retried = wait_until(lambda: _retried(colony, process), 30, "the process to run again after its deadline")
    assert retried.assignedexecutorid == _executor_id(prvkey)
    second = running_container(process)
    assert second != orphan
    colony.client.cancel_process(process.processid, colony.user_prvkey)
    wait_until(lambda: not containers_of(process), 10, "the retried container to be gone")


def multiply(a, b):
    return a * b


def test_a_workflow_passes_a_containers_output_to_a_python_step(
    colony: ColonyEnv, start_container: StartContainer, tmp_path: Path
) -> None:
    image = build_python()
    start_container()
    with starting("python", colony.server.port, colony.colonyname, colony.colony_prvkey, tmp_path) as start:
        start()
        code = ("import json, os; "
                "json.dump([6, int(os.environ['B'])], open(os.environ['COLONIES_OUTPUT'], 'w'))")
        produce = FuncSpec.from_wire(spec(colony, image, "python3", "-c", code, env={"B": "7"},
                                          nodename="produce"))
        step = func_spec(func=multiply, args=[], colonyname=colony.colonyname, executortype="python-executor",
                         maxexectime=60)
        step.nodename = "multiply"
        step.conditions.dependencies.append("produce")
        workflow = Workflow(colonyname=colony.colonyname, functionspecs=[produce, step])
        graph = colony.client.submit_workflow(workflow, colony.user_prvkey)
        last = colony.client.find_process("multiply", graph.processids, colony.user_prvkey)
        done = colony.client.wait(last, 60, colony.user_prvkey)
        assert done.state == wire.SUCCESS and done.output == [42], done.errors


def plot_squares():
    """Read the container step's samples from ``raw/``, draw them as an SVG bar chart in ``plots/``."""
    import pathlib

    values = [int(p.read_text()) for p in sorted(pathlib.Path("raw").glob("sample*.txt"))]
    bars = "".join(f'<rect x="{10 + 30 * i}" y="{100 - v}" width="20" height="{v}"/>'
                   for i, v in enumerate(values))
    pathlib.Path("plots/squares.svg").write_text(f'<svg xmlns="http://www.w3.org/2000/svg">{bars}</svg>')
    return sum(values)


def test_files_go_from_a_container_step_to_a_python_step_and_a_snapshot_freezes_them(
    colony: ColonyEnv, start_container: StartContainer, busybox: str, tmp_path: Path
) -> None:
    """The issue's workflow: the container step writes samples into its fs dir (synced up to a
    label), the python step on another executor reads them and writes a plot (synced up), and a
    snapshot freezes the results."""
    client, name, key = colony.client, colony.colonyname, colony.user_prvkey
    start_container()
    with shared_dir() as base, starting("python", colony.server.port, name, colony.colony_prvkey, tmp_path,
                                        COLONIES_EXECUTOR_FS_DIR=str(base / "fs")) as start:
        start()
        script = ('mkdir -p "$COLONIES_FS_DIR/raw" && for i in 1 2 3; do '
                  'echo $((i * i)) > "$COLONIES_FS_DIR/raw/sample$i.txt"; done')
        fs = {"mount": "/data", "dirs": [{"label": "/survey/raw", "dir": "/raw"}]}
        produce = FuncSpec.from_wire(spec(colony, busybox, "sh", "-c", script, nodename="produce", fs=fs))
        plot = func_spec(func=plot_squares, args=[], colonyname=name, executortype="python-executor",
                         maxexectime=60, fs=Fs(dirs=[{"label": "/survey/raw", "dir": "raw"},
                                                     {"label": "/survey/plots", "dir": "plots"}]))
        plot.conditions.dependencies.append("produce")
        graph = client.submit_workflow(Workflow(colonyname=name, functionspecs=[produce, plot]), key)
        last = client.find_process("plot_squares", graph.processids, key)
        done = client.wait(last, 90, key)
    assert done.state == wire.SUCCESS and done.output == [14], done.errors
    produced = client.get_file(name, key, label="/survey/raw", filename="sample3.txt")[0]
    assert produced["processid"] == client.find_process("produce", graph.processids, key).processid
    snapshot = client.create_snapshot(name, "/survey", "survey-v1", key)
    assert len(snapshot["fileids"]) == 4
    client.upload_data(name, key, filename="squares.svg", data=b"changed later", label="/survey/plots")
    frozen = tmp_path / "frozen"
    client.download_snapshot(name, key, str(frozen), name="survey-v1")
    assert sorted(p.relative_to(frozen).as_posix() for p in frozen.rglob("*") if p.is_file()) == [
        "plots/squares.svg", "raw/sample1.txt", "raw/sample2.txt", "raw/sample3.txt"]
    assert (frozen / "plots" / "squares.svg").read_text().count("<rect") == 3
    clash = spec(colony, busybox, "true", fs={"mount": "/colonies/fs", "dirs": [{"label": "/x"}]})
    done = finished(colony, submit(colony, clash))
    assert done.state == wire.FAILED and done.errors[0].startswith("fs.mount '/colonies/fs' cannot be used")


def test_a_missing_engine_stops_the_executor_with_one_line(start_container: StartContainer) -> None:
    executor = start_container(ready=False, COLONIES_CONTAINER_ENGINE="no-such-engine")
    assert executor.wait_exit(60) == 1
    lines = [line for line in executor.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: the container engine 'no-such-engine' is not "
                                                   "installed"), executor.stderr


# -- helpers ------------------------------------------------------------------------------------


def _retried(colony: ColonyEnv, process: Process) -> Process | None:
    current = colony.client.get_process(process.processid, colony.user_prvkey)
    return current if current.retries == 1 and current.state == wire.RUNNING else None


def _executor_id(prvkey: str) -> str:
    from pycolonies import crypto

    return crypto.derive_id(prvkey)


def _peak_rss_mib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1)) // 1024
