"""``colonies executor start --type python`` as a real subprocess against a real server: functions
shipped with ``func_spec`` (source and cloudpickle), failures, crashes, timeouts, cancellation, a
server restart mid-job, SIGTERM, the tutorial's MapReduce through ``ctx``, and the allow-list."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pycolonies import Workflow, func_spec, wire
from pycolonies.models import Fs, FuncSpec, Process
from server.testing import ServerThread
from tests.conftest import ColonyEnv
from tests.executors.harness import (
    RunningExecutor,
    log_text,
    shared_dir,
    starting,
    wait_state,
    workers_of,
    zygote_of,
)
from tests.support import wait_until
from tests.support.processes import descendants, pid_gone

EXECUTORTYPE = "python-executor"
StartPython = Callable[..., RunningExecutor]


@pytest.fixture
def start_python(colony: ColonyEnv, tmp_path: Path) -> Iterator[StartPython]:
    """``start_python(*options, **env)``: ``colonies executor start --type python`` registered
    with the colony key."""
    with starting("python", colony.server.port, colony.colonyname, colony.colony_prvkey, tmp_path) as start:
        yield start


def spec(colony: ColonyEnv, func: Any, *args: Any, maxexectime: int = 60, **options: Any) -> FuncSpec:
    return func_spec(func=func, args=list(args), colonyname=colony.colonyname, executortype=EXECUTORTYPE,
                     maxexectime=maxexectime, **options)


def submit(colony: ColonyEnv, func: Any, *args: Any, **options: Any) -> Process:
    return colony.client.submit_func_spec(spec(colony, func, *args, **options), colony.user_prvkey)


def finished(colony: ColonyEnv, process: Process, timeout: float = 60.0) -> Process:
    return wait_state(colony.client, process, colony.user_prvkey, timeout=timeout)


# -- the functions the tests ship (their source goes with the process) -------------------------


def add(a, b):
    print(f"adding {a} and {b}")
    return a + b


def divide(a, b):
    return a / b


def crash():
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def tick(marker, seconds):
    """Write a tick to ``marker`` every 50 ms for ``seconds``."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with open(marker, "a") as file:
            file.write("tick\n")
        print("tick", flush=True)
        time.sleep(0.05)
    return "done"


def map(ctx={}):  # noqa: B006 - the ColonyOS tutorial's code as users paste it
    code = """def gen_nums(ctx={}):
    return 1, 2"""
    processgraphid = ctx["process"].processgraphid
    map_processid = ctx["process"].processid
    executor_prvkey = ctx["executor_prvkey"]
    processgraph = colonies.get_processgraph(processgraphid, executor_prvkey)  # noqa: F821
    reduce_process = colonies.find_process("reduce", processgraph.processids, executor_prvkey)  # noqa: F821
    insert = True
    for i in range(5):
        f = func_spec(func="gen_nums", args=[], colonyname=ctx["colonyname"],
                      executortype="python-executor", maxexectime=100, maxwaittime=100, code=code)
        colonies.add_child(processgraphid, map_processid, reduce_process.processid, f,  # noqa: F821
                           f"gen_nums_{i}", insert, executor_prvkey)
        insert = False


def reduce(*nums, ctx={}):  # noqa: B006
    total = 0
    for n in nums:
        total += n
    return total


def make_adder(n: int) -> Callable[[int], int]:
    def add_n(x: int) -> int:
        return x + n

    return add_n


@pytest.fixture
def marker() -> Iterator[Path]:
    """Where ``tick`` writes (in a directory the worker may write to, whoever it runs as)."""
    with shared_dir() as directory:
        yield directory / "ticks"


def workers_gone(executor: RunningExecutor) -> None:
    wait_until(lambda: not workers_of(executor.popen.pid), 10, "the worker to be killed")


# -- the tests ----------------------------------------------------------------------------------


def test_runs_a_shipped_function_with_logs(colony: ColonyEnv, start_python: StartPython) -> None:
    executor = start_python()
    assert executor.name.startswith("python-executor-")
    process = submit(colony, add, 2, 3)
    done = finished(colony, process)
    assert done.state == wire.SUCCESS and done.output == [5]
    text, _ = log_text(colony.client, colony.colonyname, process.processid, colony.user_prvkey)
    assert "adding 2 and 3" in text
    wait_until(lambda: f"{process.processid[:8]} add: succeeded" in executor.stderr, 10,
               "the success to be logged")


def count_words():
    """Read ``data/*.txt`` from the working directory, write ``summary/counts.json`` under
    ``$COLONIES_FS_DIR``."""
    import json
    import os
    import pathlib

    counts = {p.name: len(p.read_text().split()) for p in sorted(pathlib.Path("data").glob("*.txt"))}
    out = pathlib.Path(os.environ["COLONIES_FS_DIR"]) / "summary"
    out.mkdir(exist_ok=True)
    (out / "counts.json").write_text(json.dumps(counts))
    return [os.getcwd() == os.environ["COLONIES_FS_DIR"], counts]


def test_a_function_works_in_its_fs_directory(colony: ColonyEnv, start_python: StartPython) -> None:
    """The isolated worker runs in the process's fs directory: it reads the synced label and its
    results go up to another label."""
    client, name, key = colony.client, colony.colonyname, colony.user_prvkey
    client.upload_data(name, key, filename="a.txt", data=b"one two three", label="/texts")
    with shared_dir() as base:  # a root executor runs workers as another user: tmp_path is out of reach
        start_python(COLONIES_EXECUTOR_FS_DIR=str(base / "fs"))
        fs = Fs(dirs=[{"label": "/texts", "dir": "/data"}, {"label": "/summaries", "dir": "/summary"}])
        done = finished(colony, submit(colony, count_words, fs=fs))
    assert (done.state, done.output) == (wire.SUCCESS, [[True, {"a.txt": 3}]]), done.errors
    assert client.download_data(name, key, label="/summaries", filename="counts.json") == b'{"a.txt": 3}'


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root executor runs its workers as another user")
def test_an_fs_directory_the_workers_cannot_reach_is_refused_at_start(start_python: StartPython,
                                                                      tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    executor = start_python(ready=False, COLONIES_EXECUTOR_FS_DIR=str(private / "fs"))
    assert executor.wait_exit(60) == 1
    assert "cannot reach the fs directory" in executor.stderr, executor.stderr


def test_an_exception_fails_with_traceback(colony: ColonyEnv, start_python: StartPython) -> None:
    start_python()
    done = finished(colony, submit(colony, divide, 1, 0))
    assert done.state == wire.FAILED
    assert done.errors[0] == "ZeroDivisionError: division by zero"
    assert "Traceback" in done.errors[1] and "return a / b" in done.errors[1]


def test_a_crash_fails_and_work_goes_on(colony: ColonyEnv, start_python: StartPython) -> None:
    start_python()
    done = finished(colony, submit(colony, crash))
    assert done.state == wire.FAILED and "SIGKILL" in done.errors[0]
    assert finished(colony, submit(colony, add, 1, 1)).output == [2]


def test_maxexectime_kills_the_worker(colony: ColonyEnv, start_python: StartPython, marker: Path) -> None:
    executor = start_python()
    started = time.monotonic()
    process = submit(colony, tick, str(marker), 60, maxexectime=2, maxretries=0)
    done = finished(colony, process, timeout=30)
    assert done.state == wire.FAILED and time.monotonic() - started < 15
    text = " ".join(done.errors).lower()
    assert "maxexectime" in text or "execution time" in text, done.errors
    workers_gone(executor)


def test_cancelling_a_running_process_kills_its_worker(
    colony: ColonyEnv, start_python: StartPython, marker: Path
) -> None:
    executor = start_python()
    process = submit(colony, tick, str(marker), 60)
    wait_until(lambda: marker.exists() and marker.read_text().count("tick") >= 3, 30, "the work")
    colony.client.cancel_process(process.processid, colony.user_prvkey)
    workers_gone(executor)
    ticks = marker.read_text().count("tick")
    time.sleep(0.2)
    assert marker.read_text().count("tick") == ticks
    assert colony.client.get_process(process.processid, colony.user_prvkey).state == wire.CANCELLED
    assert "the process was cancelled" in executor.stderr and "refused" not in executor.stderr
    assert finished(colony, submit(colony, add, 1, 2)).output == [3]


def test_a_long_job_survives_a_server_restart(
    colony: ColonyEnv, start_python: StartPython, marker: Path
) -> None:
    executor = start_python()
    process = submit(colony, tick, str(marker), 4)
    wait_until(lambda: marker.exists(), 30, "the function to run")
    first = colony.server
    first.stop()
    ticks = marker.read_text().count("tick")
    wait_until(lambda: marker.read_text().count("tick") >= ticks + 10, 30,
               "the job to run on while the server is away")
    second = ServerThread(first.dsn, port=first.port, server_prvkey=first.server_prvkey).start()
    try:
        done = finished(colony, process)
        assert done.state == wire.SUCCESS and done.output == ["done"]
        assert executor.popen.poll() is None
    finally:
        executor.stop()
        second.stop()


def test_sigterm_gives_a_running_process_back(
    colony: ColonyEnv, start_python: StartPython, marker: Path
) -> None:
    executor = start_python("--grace", "1")
    process = submit(colony, tick, str(marker), 60)
    wait_until(lambda: marker.exists(), 30, "the function to run")
    workers = descendants(executor.popen.pid)
    assert workers
    executor.signal(signal.SIGTERM)
    assert executor.wait_exit(30) == 0
    wait_until(lambda: all(pid_gone(pid) for pid in workers), 10, "the worker to be killed")
    released = colony.client.get_process(process.processid, colony.user_prvkey)
    assert released.state == wire.WAITING and released.retries == 0
    colony.client.cancel_process(process.processid, colony.user_prvkey)


def test_sigterm_lets_a_short_job_end(colony: ColonyEnv, start_python: StartPython, marker: Path) -> None:
    executor = start_python()
    process = submit(colony, tick, str(marker), 1.5)
    wait_until(lambda: marker.exists(), 30, "the function to run")
    executor.signal(signal.SIGTERM)
    assert executor.wait_exit(30) == 0
    assert colony.client.get_process(process.processid, colony.user_prvkey).output == ["done"]


def test_the_tutorials_mapreduce(colony: ColonyEnv, start_python: StartPython) -> None:
    start_python("--concurrency", "2")
    workflow = Workflow(colonyname=colony.colonyname)
    workflow.functionspecs.append(spec(colony, map, maxexectime=100, maxwaittime=100))
    reduce_spec = spec(colony, reduce, maxexectime=100, maxwaittime=100)
    reduce_spec.conditions.dependencies.append("map")
    workflow.functionspecs.append(reduce_spec)
    graph = colony.client.submit_workflow(workflow, colony.user_prvkey)
    last = colony.client.find_process("reduce", graph.processids, colony.user_prvkey)
    done = colony.client.wait(last, 60, colony.user_prvkey)
    assert done.state == wire.SUCCESS and done.output == [15], done.errors


def test_a_cloudpickled_closure(colony: ColonyEnv, start_python: StartPython) -> None:
    start_python()
    add_five = make_adder(5)
    shipped = spec(colony, add_five, 10)
    assert "pickle" in shipped.env and "code" not in shipped.env
    done = finished(colony, colony.client.submit_func_spec(shipped, colony.user_prvkey))
    assert done.state == wire.SUCCESS and done.output == [15], done.errors


def test_no_code_runs_only_allowed_functions(colony: ColonyEnv, start_python: StartPython) -> None:
    allowed = "tests.executors.sample_functions.scale"
    executor = start_python("--no-code", "--allow", allowed)
    functions = colony.client.get_functions_by_executor(colony.colonyname, executor.name, colony.user_prvkey)
    assert [f["funcname"] for f in functions] == [allowed]
    assert [a["name"] for a in functions[0]["args"]] == ["*nums", "factor"], functions
    refused = finished(colony, submit(colony, add, 1, 2))
    assert refused.state == wire.FAILED and "not allowed on this executor" in refused.errors[0]
    done = finished(colony, submit(colony, allowed, 1, 2, kwargs={"factor": 3}))
    assert done.state == wire.SUCCESS and done.output == [[3, 6]], done.errors


@pytest.mark.parametrize(
    ("options", "variables", "needle"),
    [
        ((), {"COLONIES_COLONY_NAME": ""}, "set COLONIES_COLONY_NAME"),
        ((), {"COLONIES_COLONY_PRVKEY": ""}, "set COLONIES_PRVKEY"),
        (("--type", "fortran"), {},
         "unknown executor type 'fortran'; known: container, python, quantum, slurm"),
        (("--no-code",), {}, "--no-code without --allow"),
        (("--allow", "no_such_module.f"), {}, "no_such_module"),
        (("--concurrency", "0"), {}, "concurrency must be at least 1"),
        ((), {"COLONIES_WORKER_PRELOAD": "no_such_module_xyz"},
         "zygote did not start: ModuleNotFoundError: No module named 'no_such_module_xyz'"),
        ((), {"COLONIES_WORKER_MEMORY": "lots"}, "COLONIES_WORKER_MEMORY must be a size such as '2Gi'"),
        ((), {"COLONIES_WORKER_WARM": "maybe"}, "COLONIES_WORKER_WARM must be true or false"),
        ((), {"COLONIES_EXECUTOR_FS_DIR": "relative/fs"},
         "COLONIES_EXECUTOR_FS_DIR must be an absolute path"),
        ((), {"COLONIES_EXECUTOR_FS_DIR": "/proc/self/nowhere"}, "for the processes' fs directories"),
    ],
)
def test_bad_settings_fail_with_one_clear_line(
    start_python: StartPython, options: tuple[str, ...], variables: dict[str, str], needle: str
) -> None:
    executor = start_python(*options, ready=False, **variables)
    assert executor.wait_exit(60) == 1
    lines = [line for line in executor.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), executor.stderr
    assert needle in lines[0]


# -- warm workers: forked from a zygote, as isolated as fresh ones --------------------------------


def set_module_state():
    import json
    import sys

    json.colonies_leak = "left by an earlier process"
    sys.modules["colonies_leak"] = sys
    return "set"


def read_module_state():
    import json
    import random
    import sys

    return [hasattr(json, "colonies_leak"), "colonies_leak" in sys.modules, random.random()]


def test_no_module_state_leaks_from_one_process_to_the_next(colony: ColonyEnv, start_python: StartPython
                                                            ) -> None:
    start_python()
    assert finished(colony, submit(colony, set_module_state)).output == ["set"]
    (first,) = finished(colony, submit(colony, read_module_state)).output
    (second,) = finished(colony, submit(colony, read_module_state)).output
    assert first[:2] == second[:2] == [False, False]
    assert first[2] != second[2]  # each child's random numbers are its own


def hog_memory():
    return len(bytearray(1 << 30))


def open_many(directory):
    import os

    return [open(os.path.join(directory, f"f{n}"), "w") for n in range(200)] and "opened"


def test_memory_and_open_file_limits_fail_only_their_process(colony: ColonyEnv, start_python: StartPython
                                                             ) -> None:
    start_python(COLONIES_WORKER_MEMORY="512Mi", COLONIES_WORKER_OPEN_FILES="64")
    with shared_dir() as directory:
        hogged = finished(colony, submit(colony, hog_memory))
        opened = finished(colony, submit(colony, open_many, str(directory)))
    assert hogged.state == wire.FAILED and hogged.errors[0] == "MemoryError", hogged.errors
    assert opened.state == wire.FAILED and "Too many open files" in opened.errors[0], opened.errors
    assert finished(colony, submit(colony, add, 1, 2)).output == [3]


def test_a_zygote_that_dies_fails_its_running_process_and_a_new_one_takes_over(
    colony: ColonyEnv, start_python: StartPython, marker: Path
) -> None:
    executor = start_python()
    running = submit(colony, tick, str(marker), 60)
    wait_until(lambda: marker.exists(), 30, "the function to run")
    (zygote,) = wait_until(lambda: zygote_of(executor.popen.pid), 10, "the zygote")
    os.kill(zygote, signal.SIGKILL)
    done = finished(colony, running)
    assert done.state == wire.FAILED and "the worker crashed" in done.errors[0], done.errors
    assert finished(colony, submit(colony, add, 2, 2)).output == [4]
    assert "zygote died" in executor.stderr


def escape():
    import subprocess

    subprocess.Popen(["sleep", "300"], start_new_session=True)
    return "escaped"


def test_what_a_function_starts_dies_with_its_run(colony: ColonyEnv, start_python: StartPython) -> None:
    executor = start_python()
    assert finished(colony, submit(colony, escape)).output == ["escaped"]
    wait_until(lambda: not workers_of(executor.popen.pid), 10, "the escaped process to be killed")


def wait_for(path):
    import os
    import time

    with open(path + ".pid", "w") as file:
        file.write(str(os.getpid()))
    while not os.path.exists(path):
        time.sleep(0.05)
    return "released"


def peek_at(path):
    import os
    import time

    while not os.path.exists(path + ".pid"):
        time.sleep(0.05)
    with open(path + ".pid") as file:
        sibling = file.read()
    found = []
    for what in ("environ", "mem"):
        try:
            with open(f"/proc/{sibling}/{what}", "rb") as file:
                file.read(1)
            found.append(f"{what} readable")
        except OSError as exc:
            found.append(f"{what}: {type(exc).__name__}")
    open(path, "w").close()
    return found


def test_a_worker_cannot_read_a_sibling_workers_memory(colony: ColonyEnv, start_python: StartPython,
                                                       marker: Path) -> None:
    start_python("--concurrency", "2")
    waiting = submit(colony, wait_for, str(marker))
    peeking = submit(colony, peek_at, str(marker))
    assert finished(colony, peeking).output == [["environ: PermissionError", "mem: PermissionError"]]
    assert finished(colony, waiting).output == ["released"]
