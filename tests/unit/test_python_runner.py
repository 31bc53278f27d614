"""The python runner: each process's function in a real worker subprocess (no server needed),
every test twice: a fresh interpreter per process (cold) and a child forked by a warm zygote."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from executors import python_runner
from executors.python_runner import (
    ClientInfo,
    ProcessFailure,
    RunnerSettings,
    offered_functions,
    worker_env,
)
from executors.python_worker import Refused, to_output
from executors.warm_workers import WarmWorkers
from pycolonies import func_spec
from pycolonies.models import FuncSpec, Process
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = "tests.executors.sample_functions"
CLIENT = ClientInfo(
    host="colonies.example", port=50123, tls=True, colonyname="dev", executorid="e" * 64,
    executor_prvkey="k" * 64,
)
CODE = RunnerSettings()
NO_CODE = RunnerSettings(allow_code=False)


@pytest.fixture(autouse=True)
def _importable_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker imports ``tests.executors...`` whatever directory pytest runs from."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


_pools: dict[tuple[str, ...], WarmWorkers] = {}  # this test's zygotes, by command (warm only)
_warm = False


@pytest.fixture(autouse=True, params=["cold", "warm"])
async def worker_start(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """Run the test with cold workers, then with warm ones; a zygote lives until the test ends
    (so a test that checks a kill sees the child's kill, not the zygote's end)."""
    global _warm
    _warm = request.param == "warm"
    try:
        yield request.param
    finally:
        _warm = False
        for pool in _pools.values():
            await pool.close()
        _pools.clear()


async def run_process(process: Process, settings: RunnerSettings, client: ClientInfo, on_line: Any,
                      timeout: float | None = None, fsdir: Path | None = None) -> list[Any]:
    warm = None
    if _warm:
        command = tuple(settings.zygote_command())
        warm = _pools.setdefault(command, WarmWorkers(command, worker_env()))
    return await python_runner.run_process(process, settings, client, on_line, timeout, fsdir=fsdir,
                                           warm=warm)


class Lines:
    """An ``on_output_line`` that records what it gets."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)


def process_of(spec: FuncSpec, input: list[Any] | None = None) -> Process:  # noqa: A002
    return Process(processid="p" * 64, processgraphid="g" * 64, spec=spec, input=input or [])


def shipped(source: str, funcname: str, args: list[Any] | None = None, **kwargs: Any) -> Process:
    return process_of(func_spec(funcname, args or [], "dev", "python-executor", code=source, kwargs=kwargs))


def named(funcname: str, args: list[Any] | None = None, **kwargs: Any) -> Process:
    return process_of(func_spec(funcname, args or [], "dev", "python-executor", kwargs=kwargs))


async def run(process: Process, settings: RunnerSettings = CODE, timeout: float | None = None) -> list[Any]:
    return await run_process(process, settings, CLIENT, Lines(), timeout)


async def failure(process: Process, settings: RunnerSettings = CODE) -> list[str]:
    with pytest.raises(ProcessFailure) as caught:
        await run(process, settings)
    assert caught.value.errors[0] == caught.value.message == str(caught.value)
    return caught.value.errors


def alive(pid: int) -> bool:
    """Running (a zombie counts as gone: nothing is left but its exit status)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone, possibly between the open and the read
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_gone(*pids: int) -> None:
    """Wait until every one of ``pids`` has exited (polled in a thread: the event loop runs on)."""
    await asyncio.to_thread(wait_until, lambda: not any(alive(pid) for pid in pids), 5,
                            f"processes {pids} to exit")


# --- the tutorial's functions, shipped as func_spec ships them (their source) ------------------


def gen_nums(ctx={}):  # noqa: B006 - the tutorial's convention
    return 1, 2


def reduce(*nums, ctx={}):  # noqa: B006, A001
    total = 0
    for n in nums:
        total += n
    return total


def fetch_a(ctx={}):  # noqa: B006
    return {"source": "A", "value": 10}


def nothing():
    print("side effects only")


def describe(a, b, *, scale=1, ctx={}):  # noqa: B006
    process = ctx["process"]
    return {
        "sum": (a + b) * scale,
        "process": [type(process).__name__, process.processid, process.processgraphid, process.spec.funcname],
        "colonyname": ctx["colonyname"],
        "executorid": ctx["executorid"],
        "executor_prvkey": ctx["executor_prvkey"],
    }


def spec_of(func: Any, args: list[Any] | None = None, **kwargs: Any) -> FuncSpec:
    return func_spec(func, args or [], "dev", "python-executor", kwargs=kwargs)


# --- success ------------------------------------------------------------------------------------


async def test_args_kwargs_and_ctx() -> None:
    output = await run(process_of(spec_of(describe, [1, 2], scale=10)))
    assert output == [{
        "sum": 30,
        "process": ["Process", "p" * 64, "g" * 64, "describe"],
        "colonyname": "dev",
        "executorid": "e" * 64,
        "executor_prvkey": "k" * 64,
    }]


async def test_parent_input_replaces_args() -> None:
    assert await run(process_of(spec_of(reduce, [100]), input=[1, 2, 1, 2])) == [6]
    assert await run(process_of(spec_of(reduce, [100]))) == [100]


@pytest.mark.parametrize(
    ("func", "output"), [(gen_nums, [1, 2]), (fetch_a, [{"source": "A", "value": 10}]), (nothing, [])]
)
async def test_return_value_becomes_output_list(func: Any, output: list[Any]) -> None:
    assert await run(process_of(spec_of(func))) == output


async def test_function_without_ctx_parameter_gets_none() -> None:
    source = "def add(a, b):\n    return a + b\n"
    assert await run(shipped(source, "add", [2, 3])) == [5]
    source = "def kw(**extra):\n    return sorted(extra)\n"
    assert await run(shipped(source, "kw", flag=True)) == [["ctx", "flag"]]


async def test_async_function_runs_and_generators_are_refused() -> None:
    source = "import asyncio\nasync def later(x, ctx={}):\n    await asyncio.sleep(0)\n    return [x, x]\n"
    assert await run(shipped(source, "later", ["a"])) == [["a", "a"]]
    errors = await failure(shipped("def numbers():\n    yield 1\n", "numbers"))
    assert "generator" in errors[0] and "list or a tuple" in errors[0]


async def test_output_lines_stream_in_order_before_the_result(tmp_path: Path) -> None:
    flag = tmp_path / "seen"
    source = (
        "import os, sys, time\n"
        "def chatty(flag):\n"
        "    print('one')\n"
        "    print('two', file=sys.stderr)\n"
        "    print('waiting for the runner')\n"
        "    deadline = time.monotonic() + 10\n"
        "    while not os.path.exists(flag) and time.monotonic() < deadline:\n"
        "        time.sleep(0.01)\n"
        "    os.system('echo from a subprocess')\n"
        "    sys.stdout.write('no newline at the end')\n"
        "    return os.path.exists(flag)\n"
    )
    lines: list[str] = []

    async def on_line(line: str) -> None:
        lines.append(line)
        if line == "waiting for the runner":  # only possible if lines arrive while it runs
            flag.touch()

    output = await run_process(shipped(source, "chatty", [str(flag)]), CODE, CLIENT, on_line)
    assert output == [True]
    assert lines == ["one", "two", "waiting for the runner", "from a subprocess", "no newline at the end"]


async def test_a_slow_callback_still_gets_every_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(python_runner, "_STALL", 0.2)  # far less than the callback's backlog
    source = "def many():\n    for i in range(30):\n        print(i)\n    return 'done'\n"
    lines: list[str] = []

    async def slow(line: str) -> None:
        await asyncio.sleep(0.02)
        lines.append(line)

    assert await run_process(shipped(source, "many"), CODE, CLIENT, slow) == ["done"]
    assert lines == [str(i) for i in range(30)]


async def test_a_process_that_left_the_group_does_not_hold_up_the_result(
    monkeypatch: pytest.MonkeyPatch, worker_start: str
) -> None:
    monkeypatch.setattr(python_runner, "_STALL", 0.2)
    source = (
        "import subprocess\n"
        "def daemon():\n"
        "    return subprocess.Popen(['sleep', '30'], start_new_session=True).pid\n"  # keeps the pipes
    )
    started = time.monotonic()
    output = await run(shipped(source, "daemon"))
    try:
        assert time.monotonic() - started < 3
    finally:
        if worker_start == "warm":  # a warm child is a subreaper: it killed what escaped its group
            await wait_gone(output[0])
        else:
            os.kill(output[0], signal.SIGKILL)  # out of a cold worker's reach: the test ends it


async def test_printing_to_stdout_cannot_corrupt_the_result() -> None:
    source = "import os\ndef f():\n    print('{\"output\": [666]}')\n    os.write(1, b'{}')\n    return 1\n"
    assert await run(shipped(source, "f")) == [1]


# --- failures -----------------------------------------------------------------------------------


async def test_exception_gives_message_and_traceback_of_the_function() -> None:
    source = "def boom(x):\n    helper = int\n    raise ValueError(f'bad input {x}')\n"
    errors = await failure(shipped(source, "boom", [7]))
    assert errors[0] == "ValueError: bad input 7"
    assert errors[1].startswith("Traceback (most recent call last):")
    assert "in boom" in errors[1] and "raise ValueError(f'bad input {x}')" in errors[1]
    assert "python_worker" not in errors[1]


async def test_bad_arguments_fail_like_an_exception() -> None:
    errors = await failure(process_of(spec_of(gen_nums, [1, 2, 3])))
    assert errors[0] == "TypeError: gen_nums() got multiple values for argument 'ctx'"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("import sys\n    sys.exit(3)", "sys.exit(3) (exit code 3)"),
        ("import os\n    print('bye')\n    os._exit(1)", "exited with code 1"),
        ("import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)", "killed by SIGKILL"),
    ],
)
async def test_exits_and_crashes_are_reported(body: str, expected: str) -> None:
    errors = await failure(shipped(f"def quit():\n    {body}\n", "quit"))
    assert expected in errors[0]
    if "os._exit" in body:
        assert "os._exit(1)" in errors[0]
        assert errors[1] == "bye"  # the last output lines, for context


async def test_non_json_result_is_refused_not_converted() -> None:
    errors = await failure(shipped("def f():\n    return 1, {'a': {3}}\n", "f"))
    assert errors[0] == "output[1]['a'] is a set, which JSON cannot carry unchanged (return a list instead)"


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({1, 2}, "output[0] is a set"),
        ([1, (2, 3)], "output[0][1] is a tuple"),
        (b"x", "output[0] is a bytes"),
        (float("nan"), "output[0] is nan"),
        ((1, float("inf")), "output[1] is inf"),
        ({1: "a"}, "output[0] has a int key 1; JSON keys are str"),
        (object(), "output[0] is a object"),
    ],
)
def test_to_output_refuses_what_json_cannot_carry(result: Any, message: str) -> None:
    with pytest.raises(Refused, match="^" + message.replace("[", r"\[").replace("(", r"\(")):
        to_output(result)


def test_to_output_refuses_cycles_and_accepts_json() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(Refused, match="cycle"):
        to_output(cyclic)
    shared = [1]  # the same object twice is not a cycle
    value = {"a": [1.5, None, True, "s"]}
    assert to_output((value, shared, shared)) == [value, [1], [1]]
    assert to_output(None) == [] and to_output([1]) == [[1]] and to_output(()) == []


async def test_timeout_kills_the_worker_and_its_children() -> None:
    source = (
        "import os, subprocess, time\n"
        "def slow():\n"
        "    child = subprocess.Popen(['sleep', '60'])\n"
        "    print(os.getpid(), child.pid)\n"
        "    time.sleep(60)\n"
    )
    lines = Lines()
    started = time.monotonic()
    with pytest.raises(ProcessFailure, match="maxexectime of 1 s") as caught:
        await run_process(shipped(source, "slow"), CODE, CLIENT, lines, timeout=1)
    assert time.monotonic() - started < 5
    assert "killed" in caught.value.message
    pids = [int(pid) for pid in lines.lines[0].split()]
    await wait_gone(*pids)


async def test_cancellation_kills_the_worker_and_reraises() -> None:
    source = (
        "import os, subprocess, time\n"
        "def forever():\n"
        "    child = subprocess.Popen(['sleep', '60'])\n"
        "    print(os.getpid(), child.pid)\n"
        "    time.sleep(60)\n"
    )
    first = asyncio.get_running_loop().create_future()

    async def on_line(line: str) -> None:
        if not first.done():
            first.set_result(line)

    task = asyncio.create_task(run_process(shipped(source, "forever"), CODE, CLIENT, on_line))
    pids = [int(pid) for pid in (await asyncio.wait_for(first, 10)).split()]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_gone(*pids)


async def test_a_failing_output_callback_kills_the_worker_and_propagates() -> None:
    source = "import os, time\ndef f():\n    print(os.getpid())\n    time.sleep(60)\n"
    pids: list[int] = []

    async def on_line(line: str) -> None:
        pids.append(int(line))
        raise RuntimeError("log forwarding broke")

    with pytest.raises(RuntimeError, match="log forwarding broke"):
        await asyncio.wait_for(run_process(shipped(source, "f"), CODE, CLIENT, on_line), 10)
    await wait_gone(*pids)


async def test_finished_worker_leaves_no_zombie_or_orphan() -> None:
    source = (
        "import os, subprocess\n"
        "def leave_behind():\n"
        "    child = subprocess.Popen(['sleep', '60'])\n"
        "    return [os.getpid(), child.pid]\n"
    )
    output = await run(shipped(source, "leave_behind"))
    await wait_gone(*output[0])


async def test_worker_interpreter_that_cannot_start() -> None:
    errors = await failure(process_of(spec_of(gen_nums)), RunnerSettings(python="/nonexistent/python3"))
    assert errors[0].startswith(("cannot start the python worker '/nonexistent/python3'",
                                 "cannot start the python workers' zygote '/nonexistent/python3'"))


# --- what may run -------------------------------------------------------------------------------


async def test_missing_or_undecodable_code() -> None:
    errors = await failure(named("gen_nums"))
    assert "no code to run" in errors[0] and "env['code']" in errors[0]
    spec = func_spec("gen_nums", [], "dev", "python-executor")
    spec.env["code"] = "%%% not base64"
    assert "cannot be decoded" in (await failure(process_of(spec)))[0]
    spec.env["code"] = base64.b64encode(b"\xff\xfe").decode()
    assert "cannot be decoded" in (await failure(process_of(spec)))[0]
    errors = await failure(shipped("def other():\n    pass\n", "gen_nums"))
    assert "does not define a function named 'gen_nums'" in errors[0]


async def test_code_shipping_off_refuses_shipped_functions() -> None:
    errors = await failure(process_of(spec_of(gen_nums)), NO_CODE)
    assert "'gen_nums' is not allowed on this executor" in errors[0]
    assert "allowed functions (none)" in errors[0] and "turn code shipping on" in errors[0]
    errors = await failure(process_of(spec_of(lambda: 1)), NO_CODE)
    assert "'lambda' is not allowed" in errors[0]


async def test_allow_list_exact_entry_gets_colonies_and_func_spec_globals() -> None:
    settings = RunnerSettings(allow_code=False, allowed=(f"{SAMPLES}.client_info",))
    assert await run(named(f"{SAMPLES}.client_info"), settings) == [{
        "type": "pycolonies.client.Colonies",
        "host": "colonies.example",
        "port": 50123,
        "tls": True,
        "func_spec": "pycolonies.functions",
    }]
    errors = await failure(named(f"{SAMPLES}.scale", [1]), settings)
    assert f"'{SAMPLES}.scale' is not allowed" in errors[0] and f"({SAMPLES}.client_info)" in errors[0]


async def test_allow_list_wildcard_admits_public_functions_defined_in_the_module() -> None:
    settings = RunnerSettings(allow_code=False, allowed=(f"{SAMPLES}.*",))
    assert await run(named(f"{SAMPLES}.scale", [1, 2], factor=3), settings) == [[3, 6]]
    assert await run(named(f"{SAMPLES}.later", [{"x": 1}]), settings) == [{"x": 1}]
    assert "is not allowed" in (await failure(named(f"{SAMPLES}._private"), settings))[0]
    assert "is not allowed" in (await failure(named("tests.executors.other.f"), settings))[0]
    errors = await failure(named(f"{SAMPLES}.getcwd"), settings)
    assert errors[0] == f"'{SAMPLES}.getcwd' is not a public function defined in module '{SAMPLES}'"


async def test_allow_listed_function_wins_over_shipped_code_and_keeps_module_globals() -> None:
    name = "tests.executors.sample_own_globals.which_colonies"
    process = shipped("def which_colonies():\n    return 'shipped'\n", name)
    assert await run(process, RunnerSettings(allowed=(name,))) == ["the module's own colonies", True]
    errors = await failure(process, CODE)  # not allow-listed: the shipped code, looked up by funcname
    assert errors[0] == f"the shipped code does not define a function named {name!r}"


async def test_allow_listed_module_that_cannot_be_imported() -> None:
    settings = RunnerSettings(allowed=("tests.executors.no_such_module.f",))
    errors = await failure(named("tests.executors.no_such_module.f"), settings)
    assert errors[0].startswith("cannot import module 'tests.executors.no_such_module'")
    assert "ModuleNotFoundError" in errors[0]


# --- cloudpickled callables ---------------------------------------------------------------------


async def test_cloudpickled_closure_runs_with_the_colonies_global() -> None:
    offset = 1000

    def shifted(n, ctx={}):  # noqa: B006
        return n + offset, colonies.port, ctx["colonyname"]  # noqa: F821 - injected by the worker

    spec = spec_of(shifted, [5])
    assert "pickle" in spec.env and "code" not in spec.env
    assert await run(process_of(spec)) == [1005, 50123, "dev"]


async def test_cloudpickled_lambda() -> None:
    spec = spec_of(lambda x, y: x * y, [6, 7])
    assert spec.funcname == spec.nodename == "lambda"
    assert await run(process_of(spec)) == [42]


async def test_undecodable_pickle_is_refused() -> None:
    spec = spec_of(lambda: 1)
    spec.env["pickle"] = base64.b64encode(b"not a pickle").decode()
    assert "cannot unpickle function 'lambda'" in (await failure(process_of(spec)))[0]


# --- offered_functions --------------------------------------------------------------------------


def test_offered_functions_expands_wildcards_and_lists_arguments() -> None:
    settings = RunnerSettings(allowed=(f"{SAMPLES}.*", "tests.executors.sample_own_globals.which_colonies"))
    assert offered_functions(settings) == [
        (f"{SAMPLES}.client_info", []),
        (f"{SAMPLES}.scale", ["*nums", "factor"]),
        (f"{SAMPLES}.later", ["value"]),
        ("tests.executors.sample_own_globals.which_colonies", []),
    ]
    assert offered_functions(RunnerSettings()) == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("tests.executors.no_such_module.*", "cannot import module 'tests.executors.no_such_module'"),
        (f"{SAMPLES}.missing", f"module '{SAMPLES}' has no function 'missing'"),
        ("nodots", "is not 'pkg.module.function' or 'pkg.module.*'"),
    ],
)
def test_offered_functions_fails_clearly(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("*", r"\*").replace(".", r"\.")):
        offered_functions(RunnerSettings(allowed=(entry,)))


def test_which_functions_take_ctx() -> None:
    import functools

    from executors.python_worker import _accepts_ctx

    def plain(a, ctx={}):  # noqa: B006
        return a

    def keyword_only(a, *, ctx):
        return a

    def any_keywords(a, **extra):
        return a

    def positional_only(ctx, /):
        return ctx

    def none(a, b):
        return a

    @functools.wraps(plain)
    def wrapped(*args, **kwargs):
        return plain(*args, **kwargs)

    class Callable:
        def __call__(self, ctx):
            return ctx

    taking = [plain, keyword_only, any_keywords, functools.partial(plain, 1), Callable()]
    assert [_accepts_ctx(f) for f in taking] == [True] * 5
    assert [_accepts_ctx(f) for f in (positional_only, none, print)] == [False] * 3
    assert _accepts_ctx(wrapped)  # a decorator's **kwargs, as inspect.signature sees it too


async def test_a_working_directory_out_of_reach_fails_the_process_clearly(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    with pytest.raises(ProcessFailure) as caught:
        await run_process(process_of(spec_of(gen_nums)), CODE, CLIENT, Lines(), 10, fsdir=missing)
    assert caught.value.message.startswith(("the worker could not start: FileNotFoundError",
                                            "cannot start the python worker")), caught.value.message
