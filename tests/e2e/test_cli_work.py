"""The work commands of ``colonies`` (process, workflow, function, run) as real subprocesses against
a real server, with a real python executor where something must run."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pycolonies import func_spec, wire
from tests.conftest import ColonyEnv
from tests.e2e.test_server_cli import assert_clean_failure
from tests.executors.harness import ROOT, RunningExecutor, executor_env, wait_state

CLI = [sys.executable, "-m", "pycolonies.cli.main"]
PYTHON = "python-executor"
SAMPLES = "tests.executors.sample_functions"
CLI_TIMEOUT = 60.0

GEN = "def gen(n):\n    return n, n + 1\n"
ADD = "def add(*nums):\n    return sum(nums)\n"
DIVIDE = "def divide(a, b):\n    return a / b\n"
TALK = "def talk(n):\n    for i in range(n):\n        print(f'step {i}', flush=True)\n    return 'done', n\n"


def env_for(colony: ColonyEnv, **overrides: str) -> dict[str, str]:
    """The CLI's environment for the colony's user ``alice``; wide tables so nothing folds."""
    env = executor_env(colony.server.port, colony.colonyname, COLONIES_PRVKEY=colony.user_prvkey,
                       COLONIES_COLONY_PRVKEY=colony.colony_prvkey, COLUMNS="250")
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def run(colony: ColonyEnv, *args: str, stdin: str | None = None, **env: str
        ) -> subprocess.CompletedProcess[str]:
    """``colonies *args`` with ``stdin`` piped in (or nothing: /dev/null) and ``env`` overrides."""
    return subprocess.run([*CLI, *args], env=env_for(colony, **env), cwd=ROOT, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT, check=False, input=stdin,
                          stdin=subprocess.DEVNULL if stdin is None else None)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


def coded(name: str, source: str, *args: Any, deps: tuple[str, ...] = (), func: str = "") -> dict[str, Any]:
    """A function spec (JSON) shipping ``source`` for the python executor."""
    return {"nodename": name, "funcname": func or name, "args": list(args), "maxexectime": 30,
            "conditions": {"executortype": PYTHON, "dependencies": list(deps)},
            "env": {"code": base64.b64encode(source.encode()).decode()}}


def write_json(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def python_executor(colony: ColonyEnv, tmp_path: Path) -> Iterator[RunningExecutor]:
    """``colonies executor start --type python`` offering the sample functions (and shipped code)."""
    env = executor_env(colony.server.port, colony.colonyname, COLONIES_COLONY_PRVKEY=colony.colony_prvkey)
    command = [*CLI, "executor", "start", "--type", "python", "--allow", f"{SAMPLES}.*"]
    with RunningExecutor(command, env, tmp_path / "executor") as executor:
        yield executor.wait_ready()


# -- processes --------------------------------------------------------------------------------------


def test_process_lists_details_and_changes(colony: ColonyEnv) -> None:
    client, executor_key = colony.client, colony.executor_prvkey
    processid = ok(run(colony, "function", "exec", "--func", "echo", "--executortype", colony.executortype,
                       "--args", "1", "--args", '"a [/b]"', "--kwargs", '{"k": 2}', "--label", "lab")).strip()
    assert re.fullmatch(r"[0-9a-f]{64}", processid)

    table = ok(run(colony, "process", "psw", "-i"))
    assert "SUBMISSION TIME" in table and "KWARGS" in table
    row = next(line for line in table.splitlines() if processid in line)
    assert "echo" in row and '1 a [/b]' in row and "k:2" in row and "lab" in row and "alice" in row
    listed = json.loads(ok(run(colony, "process", "psw", "--json")))
    assert [p["processid"] for p in listed] == [processid]
    assert json.loads(ok(run(colony, "process", "psw", "--json", "--label", "other"))) == []
    filtered = ok(run(colony, "process", "psw", "--json", "--label", "lab", "--executortype",
                      colony.executortype))
    assert [p["processid"] for p in json.loads(filtered)] == [processid]

    assigned = json.loads(ok(run(colony, "process", "assign", "--timeout", "5", "--json",
                                 COLONIES_PRVKEY=executor_key)))
    assert assigned["processid"] == processid and assigned["state"] == wire.RUNNING
    running = ok(run(colony, "process", "ps"))
    assert "START TIME" in running and colony.executorname in running
    for i in range(12):
        client.add_log(processid, f"step {i}\n", executor_key)
    ok(run(colony, "process", "close", "-p", processid, "--out", "42", "--out", '{"x": [1]}', "--out", "done",
           COLONIES_PRVKEY=executor_key))

    details = ok(run(colony, "process", "get", "--processid", processid))
    for needle in ("Process", "successful", colony.executorname, '[42, {"x": [1]}, "done"]',
                   "Function Specification", '[1, "a [/b]"]', "lab", "Conditions", colony.executortype,
                   "Log (last 10 lines)", "step 11"):
        assert needle in details, needle
    assert "step 1\n" not in details  # only the last 10 lines
    got = json.loads(ok(run(colony, "process", "get", "-p", processid, "--json")))
    assert got["out"] == [42, {"x": [1]}, "done"] and got["state"] == wire.SUCCESS

    failing = client.submit_func_spec(func_spec("echo", [], colony.colonyname, colony.executortype),
                                      colony.user_prvkey)
    client.assign(colony.colonyname, 5, executor_key)
    ok(run(colony, "process", "fail", "-p", failing.processid, "--errors", "it broke",
           COLONIES_PRVKEY=executor_key))
    assert client.get_process(failing.processid, colony.user_prvkey).errors == ["it broke"]
    failed = ok(run(colony, "process", "psf", "--ids"))
    assert failing.processid in failed and "END TIME" in failed

    waiting = client.submit_func_spec(func_spec("echo", [], colony.colonyname, colony.executortype),
                                      colony.user_prvkey)
    ok(run(colony, "process", "cancel", "-p", waiting.processid))
    assert client.get_process(waiting.processid, colony.user_prvkey).state == wire.CANCELLED

    ok(run(colony, "process", "remove", "-p", processid))
    assert_clean_failure(run(colony, "process", "get", "-p", processid), "not found")

    empty = run(colony, "process", "ps")
    assert ok(empty) == "" and "No running processes found" in empty.stderr
    nothing = run(colony, "process", "assign", "--timeout", "1", COLONIES_PRVKEY=executor_key)
    assert nothing.returncode == 4
    assert_clean_failure(nothing, "no process was assigned within 1 s")


def test_removeall_asks_for_yes(colony: ColonyEnv) -> None:
    spec = func_spec("echo", [], colony.colonyname, colony.executortype)
    process = colony.client.submit_func_spec(spec, colony.user_prvkey)
    for answer in ("no\n", None):  # a wrong answer, and nothing piped at all
        refused = run(colony, "process", "removeall", "--waiting", stdin=answer)
        assert refused.returncode == 1 and "aborted: nothing was changed" in refused.stderr
    assert colony.client.get_process(process.processid, colony.user_prvkey).state == wire.WAITING
    assert "aborted" in run(colony, "workflow", "removeall", stdin="yes\n").stderr
    ok(run(colony, "process", "removeall", "--waiting", stdin="YES\n"))
    assert colony.client.list_processes(colony.colonyname, 10, wire.WAITING, colony.user_prvkey) == []


def test_clean_failures(colony: ColonyEnv, tmp_path: Path) -> None:
    missing = run(colony, "process", "ps", COLONIES_PRVKEY="")
    assert missing.returncode == 5
    assert_clean_failure(missing, "COLONIES_PRVKEY")
    unknown = run(colony, "workflow", "get", "--processgraphid", "0" * 64)
    assert unknown.returncode == 1
    assert_clean_failure(unknown)
    single = write_json(tmp_path / "one.json", coded("add", ADD, 1))
    wrong = run(colony, "workflow", "submit", "--spec", single)
    assert wrong.returncode == 1
    assert_clean_failure(wrong, "colonies function submit")


# -- functions and waiting ----------------------------------------------------------------------------


def test_functions_run_and_wait(colony: ColonyEnv, python_executor: RunningExecutor, tmp_path: Path) -> None:
    scale = f"{SAMPLES}.scale"
    table = ok(run(colony, "function", "ls"))
    row = next(line for line in table.splitlines() if scale in line)
    assert "*nums, factor" in row and PYTHON in row and python_executor.name in row
    listed = json.loads(ok(run(colony, "function", "ls", "--json")))
    assert scale in {f["funcname"] for f in listed}

    done = run(colony, "function", "exec", "--func", scale, "--executortype", PYTHON,
               "--args", "1", "--args", "2", "--kwargs", '{"factor": 3}', "--wait")
    assert json.loads(ok(done)) == [[3, 6]]

    code = tmp_path / "divide.py"
    code.write_text(DIVIDE)
    failed = run(colony, "function", "exec", "--func", "divide", "--code", str(code),
                 "--executortype", PYTHON, "--args", "1", "--args", "0", "--wait")
    assert failed.returncode == 1 and failed.stdout == ""
    assert_clean_failure(failed, "failed: ZeroDivisionError: division by zero")

    spec = write_json(tmp_path / "spec.json", {k: v for k, v in coded("divide", DIVIDE, 9, 3).items()
                                               if k != "nodename"})
    assert json.loads(ok(run(colony, "function", "submit", "--spec", spec, "--wait"))) == [3.0]
    assert ok(run(colony, "function", "submit", "--spec", spec, "--wait", "--out")) == "3.0\n"

    # --follow prints the log as it runs, then (--out) the output values space-joined.
    talk = tmp_path / "talk.py"
    talk.write_text(TALK)
    followed = ok(run(colony, "function", "exec", "--func", "talk", "--code", str(talk),
                      "--executortype", PYTHON, "--args", "3", "--follow", "--out"))
    assert followed.splitlines() == ["step 0", "step 1", "step 2", "done 3"]
    followed_failure = run(colony, "function", "exec", "--func", "divide", "--code", str(code),
                           "--executortype", PYTHON, "--args", "1", "--args", "0", "--follow")
    assert followed_failure.returncode == 1
    assert_clean_failure(followed_failure, "failed: ZeroDivisionError: division by zero")
    before = len(colony.client.list_processes(colony.colonyname, 100, wire.SUCCESS, colony.user_prvkey))
    needs_wait = run(colony, "function", "exec", "--func", "talk", "--executortype", PYTHON, "--out")
    assert needs_wait.returncode != 0 and "--out needs --wait or --follow" in needs_wait.stderr
    both = run(colony, "function", "exec", "--func", "talk", "--executortype", PYTHON, "--wait", "--follow")
    assert both.returncode != 0 and "not both" in both.stderr
    waiting = colony.client.list_processes(colony.colonyname, 100, wire.WAITING, colony.user_prvkey)
    assert waiting == [] and before  # refused before anything was submitted

    unserved = run(colony, "function", "exec", "--func", "divide", "--executortype", "nobody", "--wait",
                   "--timeout", "0.5")
    assert unserved.returncode == 4
    assert_clean_failure(unserved, "is still waiting after 0.5 s")

    answers = "scale\n[1, 2]\n3\n"
    interactive = run(colony, "run", stdin=answers)
    assert json.loads(ok(interactive)) == [[3, 6]]
    assert "Registered functions" in interactive.stderr and "Submitted process" in interactive.stderr

    inputs = write_json(tmp_path / "inputs.json", {"args": [5], "kwargs": {"factor": 2}})
    assert json.loads(ok(run(colony, "run", stdin=f"{scale}\n@{inputs}\n"))) == [[10]]

    no_answers = run(colony, "run")
    assert no_answers.returncode == 1
    assert_clean_failure(no_answers, "no answers were piped")


def test_function_registry_and_run_without_functions(colony: ColonyEnv) -> None:
    colony.client.add_function(colony.colonyname, colony.executorname, "echo", colony.executor_prvkey,
                               args=["text"])
    table = ok(run(colony, "function", "ls", "-i"))
    functionid = colony.client.get_functions_by_colony(colony.colonyname, colony.user_prvkey)[0]["functionid"]
    assert functionid in table and "echo" in table and "text" in table
    ok(run(colony, "function", "remove", "--functionid", functionid, COLONIES_PRVKEY=colony.executor_prvkey))
    empty = run(colony, "function", "ls")
    assert ok(empty) == "" and "No functions found" in empty.stderr
    nothing = run(colony, "run", stdin="1\n")
    assert nothing.returncode == 1
    assert_clean_failure(nothing, "no functions are registered")


# -- workflows --------------------------------------------------------------------------------------


def diamond() -> list[dict[str, Any]]:
    return [coded("gen_a", GEN, 1, func="gen"), coded("gen_b", GEN, 10, func="gen"),
            coded("merge", ADD, func="add", deps=("gen_a", "gen_b")),
            coded("final", ADD, func="add", deps=("merge",))]


def test_workflows_submit_wait_and_show(colony: ColonyEnv, python_executor: RunningExecutor,
                                       tmp_path: Path) -> None:
    spec = write_json(tmp_path / "wf.json", diamond())
    assert json.loads(ok(run(colony, "workflow", "submit", "--spec", spec, "--wait"))) == {"final": [24]}

    as_object = write_json(tmp_path / "wfspec.json", {"colonyname": "", "functionspecs": diamond()})
    graphid = ok(run(colony, "workflow", "submit", "--spec", as_object, "--no-wait")).strip()
    assert re.fullmatch(r"[0-9a-f]{64}", graphid)
    graph = colony.client.get_processgraph(graphid, colony.user_prvkey)
    final = colony.client.find_process("final", graph.processids, colony.user_prvkey)
    assert final is not None
    wait_state(colony.client, final, colony.user_prvkey)
    tree = ok(run(colony, "workflow", "get", "--processgraphid", graphid))
    assert f"Workflow {graphid}  successful" in tree
    timing = r"start \S+ \S+, end \S+ \S+ \(waited [\d.]+ s, ran [\d.]+ s\)"
    for node in ("gen_a", "gen_b", "merge", "final"):
        assert re.search(rf"{node}\s+successful\s+{timing}", tree), node
    assert "merge (shown under gen_a)" in tree and "4/4 processes done (4 successful)" in tree
    shown = json.loads(ok(run(colony, "workflow", "get", "--workflowid", graphid, "--json")))
    assert shown["processgraph"]["processgraphid"] == graphid
    assert {p["spec"]["nodename"]: p["out"] for p in shown["processes"]}["final"] == [24]
    listed = ok(run(colony, "workflow", "pss"))
    assert "WORKFLOWID" in listed and "END TIME" in listed and graphid in listed and "alice" in listed

    broken = write_json(tmp_path / "bad.json", [coded("gen_a", GEN, 1, func="gen"),
                                                coded("boom", DIVIDE, 1, 0, func="divide"),
                                                coded("after", ADD, func="add", deps=("boom", "gen_a"))])
    failed = run(colony, "workflow", "submit", "--spec", broken, "--wait")
    assert failed.returncode == 1 and failed.stdout == ""
    assert_clean_failure(failed, "failed: node boom", "ZeroDivisionError: division by zero")


def test_workflow_cancel_and_remove(colony: ColonyEnv, tmp_path: Path) -> None:
    spec = write_json(tmp_path / "wf.json", [coded("gen", GEN, 1), coded("add", ADD, deps=("gen",))])
    graphid = ok(run(colony, "workflow", "submit", "--spec", spec)).strip()
    waiting = json.loads(ok(run(colony, "workflow", "psw", "--json")))
    assert [g["processgraphid"] for g in waiting] == [graphid]
    ok(run(colony, "workflow", "cancel", "--processgraphid", graphid))
    cancelled = ok(run(colony, "workflow", "psc"))
    assert graphid in cancelled and "cancelled" in cancelled
    ok(run(colony, "workflow", "remove", "--workflowid", graphid))
    assert colony.client.get_processgraphs(colony.colonyname, 10, colony.user_prvkey, wire.CANCELLED) == []
