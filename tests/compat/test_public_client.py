"""The public ColonyOS Python client, ``pycolonies==1.0.25`` from PyPI, unchanged, against our server.

Its top-level modules (``pycolonies``, ``model``, ``crypto``, ``cfs``) clash with ours, so it lives in
a separate virtual environment, ``<repo>/.compat-venv`` (or ``$COLONIES_COMPAT_VENV``), built on
first use with pip and reused while it holds that version. A script run by that environment's
Python (isolated mode, so nothing of this repository is importable) drives a real server and prints
JSON results, which the tests below check.

Without network access the environment cannot be built: the tests are then skipped, unless the
``CI`` environment variable is set, in which case they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.testing import ServerThread
from tests.conftest import _admin, _with_database

# The first test also builds the environment (pip), hence the longer timeout.
pytestmark = [pytest.mark.compat, pytest.mark.timeout(900)]

CLIENT_VERSION = "1.0.25"
REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("COLONIES_COMPAT_VENV") or REPO / ".compat-venv")
VENV_CREATE_TIMEOUT = 120
PIP_TIMEOUT = 300
SCRIPT_TIMEOUT = 120
ZERO_TIME = "0001-01-01T00:00:00Z"


class CompatVenvUnavailable(Exception):
    pass


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _installed_version(python: Path) -> str | None:
    """The pycolonies version importable (together with its top-level modules) by ``python``."""
    if not python.exists():
        return None
    probe = "import importlib.metadata as m, pycolonies, model, crypto; print(m.version('pycolonies'))"
    try:
        result = subprocess.run(
            [str(python), "-I", "-c", probe], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _run_step(command: list[str], timeout: float, what: str) -> None:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise CompatVenvUnavailable(f"{what} took longer than {timeout:.0f} s") from None
    except OSError as exc:
        raise CompatVenvUnavailable(f"{what} failed: {exc}") from None
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise CompatVenvUnavailable(f"{what} failed ({result.returncode}): {tail}")


@contextlib.contextmanager
def _build_lock(venv: Path) -> Iterator[None]:
    """Serialise builds between concurrent test runs."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.with_name(venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_compat_venv(venv: Path = VENV) -> Path:
    """The Python of a virtual environment holding ``pycolonies==CLIENT_VERSION``; built if needed."""
    python = _venv_python(venv)
    with _build_lock(venv):
        if _installed_version(python) == CLIENT_VERSION:
            return python
        shutil.rmtree(venv, ignore_errors=True)
        _run_step([sys.executable, "-m", "venv", str(venv)], VENV_CREATE_TIMEOUT, "python -m venv")
        _run_step(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
                "--timeout",
                "20",
                "--retries",
                "2",
                f"pycolonies=={CLIENT_VERSION}",
            ],
            PIP_TIMEOUT,
            f"pip install pycolonies=={CLIENT_VERSION}",
        )
        installed = _installed_version(python)
        if installed != CLIENT_VERSION:
            raise CompatVenvUnavailable(f"after pip install, {venv} has pycolonies {installed!r}")
        return python


@pytest.fixture(scope="session")
def compat_python() -> Path:
    try:
        return ensure_compat_venv()
    except CompatVenvUnavailable as exc:
        reason = f"cannot build the pycolonies=={CLIENT_VERSION} environment in {VENV}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason + " (set CI to turn this into a failure)")


# The script the public client runs. Only the public client's own API is used.
SCRIPT = r"""
import json, os, sys, time

import crypto as crypto_module
import model
import pycolonies
from pycolonies import (Colonies, ColoniesConnectionError, Conditions, Crypto, FuncSpec,
                        colonies_client, func_spec)

out = {"files": [pycolonies.__file__, model.__file__, crypto_module.__file__]}
server_prvkey = os.environ["COLONIES_SERVER_PRVKEY"]
client, _, _, _, _ = colonies_client()
c = Crypto()
dump = lambda process: process.model_dump(mode="json", by_alias=True)

def error_of(call):
    try:
        call()
    except ColoniesConnectionError as exc:
        return str(exc)
    return None

colonyname, executorname, executortype = "compat", "compat-executor", "compat-type"
colony_prvkey = c.prvkey()
out["colonyid"] = c.id(colony_prvkey)
out["add_colony"] = client.add_colony({"colonyid": out["colonyid"], "name": colonyname}, server_prvkey)
out["list_colonies"] = client.list_colonies(server_prvkey)

executor_prvkey = c.prvkey()
out["executorid"] = c.id(executor_prvkey)
out["add_executor"] = client.add_executor(
    {"executorname": executorname, "executorid": out["executorid"], "colonyname": colonyname,
     "executortype": executortype}, colony_prvkey)
out["approve_executor"] = client.approve_executor(colonyname, executorname, colony_prvkey)

user_prvkey = c.prvkey()
out["userid"] = c.id(user_prvkey)
out["add_user"] = client.add_user({"colonyname": colonyname, "userid": out["userid"], "name": "bob",
                                   "email": "bob@example.com", "phone": "123"}, colony_prvkey)
out["get_users"] = client.get_users(colonyname, user_prvkey)

# 1. A bare pydantic FuncSpec: maxexectime (and maxwaittime, maxretries) default to 0.
plain = FuncSpec(funcname="plain", conditions=Conditions(colonyname=colonyname, executortype=executortype))
out["plain_spec"] = plain.model_dump(by_alias=True)
out["plain_submitted"] = dump(client.submit_func_spec(plain, user_prvkey))
plain_assigned = client.assign(colonyname, 5, executor_prvkey)
assigned_at = time.monotonic()
out["plain_assigned"] = dump(plain_assigned)

# 2. The func_spec() helper: the success path with log, attribute and output.
spec = func_spec("echo", ["hello", 42], colonyname, executortype, kwargs={"greeting": "hi"})
out["echo_spec"] = spec.model_dump(by_alias=True)
out["echo_submitted"] = dump(client.submit_func_spec(spec, user_prvkey))
echo = client.assign(colonyname, 5, executor_prvkey)
out["echo_assigned"] = dump(echo)
out["add_log"] = client.add_log(echo.processid, "compat log line", executor_prvkey)
out["add_attribute"] = client.add_attribute(echo.processid, "result", "ok", executor_prvkey)
out["get_attribute"] = client.get_attribute(out["add_attribute"]["attributeid"], user_prvkey)
out["set_output"] = client.set_output(echo.processid, ["partial"], executor_prvkey)
out["after_set_output"] = dump(client.get_process(echo.processid, user_prvkey))
out["close"] = client.close(echo.processid, ["done", 7], executor_prvkey)
out["echo_closed"] = dump(client.get_process(echo.processid, user_prvkey))
out["process_log"] = client.get_process_log(colonyname, echo.processid, 10, 0, user_prvkey)
out["executor_log"] = client.get_executor_log(colonyname, executorname, 10, 0, user_prvkey)

# 3. The failure path.
broken = client.submit_func_spec(func_spec("broken", [], colonyname, executortype), user_prvkey)
assert client.assign(colonyname, 5, executor_prvkey).processid == broken.processid
out["fail"] = client.fail(broken.processid, ["it broke"], executor_prvkey)
out["broken_failed"] = dump(client.get_process(broken.processid, user_prvkey))

# Nothing left to assign: the long poll ends with an error after its timeout.
out["empty_assign_error"] = error_of(lambda: client.assign(colonyname, 1, executor_prvkey))

# The bare FuncSpec process must still be running well after any 1 s timeout sweep.
time.sleep(max(0.0, 2.0 - (time.monotonic() - assigned_at)))
out["plain_later"] = dump(client.get_process(plain_assigned.processid, user_prvkey))

out["list_running"] = client.list_processes(colonyname, 10, Colonies.RUNNING, user_prvkey)
out["list_successful"] = client.list_processes(colonyname, 10, Colonies.SUCCESSFUL, user_prvkey)
out["list_failed"] = client.list_processes(colonyname, 10, Colonies.FAILED, user_prvkey)
out["list_waiting"] = client.list_processes(colonyname, 10, Colonies.WAITING, user_prvkey)
out["stats"] = client.stats(colonyname, user_prvkey)
out["list_executors"] = client.list_executors(colonyname, user_prvkey)

out["remove_running_error"] = error_of(lambda: client.remove_process(plain_assigned.processid, user_prvkey))
out["close_plain"] = client.close(plain_assigned.processid, [], executor_prvkey)
out["remove_process"] = client.remove_process(echo.processid, user_prvkey)
out["get_removed_error"] = error_of(lambda: client.get_process(echo.processid, user_prvkey))
out["stats_after_remove"] = client.stats(colonyname, user_prvkey)

out["del_colony"] = client.del_colony(colonyname, server_prvkey)
out["list_colonies_after"] = client.list_colonies(server_prvkey)
out["get_colony_after_error"] = error_of(lambda: client.get_colony(colonyname, user_prvkey))
print(json.dumps(out))
"""


def run_public_script(compat_python: Path, tmp_path_factory: pytest.TempPathFactory, admin_dsn: str,
                      script_text: str, label: str) -> dict[str, Any]:
    """Run ``script_text`` with the public client's interpreter against a real server on a fresh
    database; the JSON object on its last line of output."""
    workdir = tmp_path_factory.mktemp(label)
    script = workdir / f"{label.replace('-', '_')}.py"
    script.write_text(script_text)
    name = f"colonies_compat_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin_dsn, f"CREATE DATABASE {name}"))
    try:
        with ServerThread(_with_database(admin_dsn, name)) as server:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("COLONIES_", "PYTHON"))}
            env.update(
                COLONIES_SERVER_HOST=server.host,
                COLONIES_SERVER_PORT=str(server.port),
                COLONIES_SERVER_TLS="false",
                COLONIES_SERVER_PRVKEY=server.server_prvkey,
            )
            proc = subprocess.run(
                [str(compat_python), "-I", str(script)],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=SCRIPT_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
    finally:
        asyncio.run(_admin(admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    assert proc.returncode == 0, f"public client script failed:\n{proc.stderr}\n{proc.stdout}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def results(compat_python: Path, tmp_path_factory: pytest.TempPathFactory, admin_dsn: str) -> dict[str, Any]:
    """Run the script once against a real server on a fresh database; its decoded JSON output."""
    return run_public_script(compat_python, tmp_path_factory, admin_dsn, SCRIPT, "compat-script")


def test_runs_the_public_client_not_ours(results: dict[str, Any], compat_python: Path) -> None:
    venv = compat_python.parent.parent.resolve()
    for file in results["files"]:
        assert Path(file).resolve().is_relative_to(venv / "lib"), file


def test_colony_executor_user(results: dict[str, Any]) -> None:
    colony = {"colonyid": results["colonyid"], "name": "compat"}
    assert results["add_colony"] == colony
    assert colony in results["list_colonies"]
    executor = results["add_executor"]
    assert executor["executorid"] == results["executorid"]
    assert executor["executorname"] == "compat-executor"
    assert executor["state"] == 0  # pending until approved
    user = results["add_user"]
    assert (user["name"], user["userid"], user["colonyname"]) == ("bob", results["userid"], "compat")
    assert [u["name"] for u in results["get_users"]] == ["bob"]
    [listed] = results["list_executors"]
    assert listed["executorname"] == "compat-executor"
    assert listed["state"] == 1  # approved


def test_bare_funcspec_with_zero_maxexectime_is_not_timed_out(results: dict[str, Any]) -> None:
    assert results["plain_spec"]["maxexectime"] == 0
    submitted, assigned, later = (results[k] for k in ("plain_submitted", "plain_assigned", "plain_later"))
    assert submitted["state"] == 0
    assert submitted["initiatorname"] == "bob"
    assert assigned["processid"] == submitted["processid"]
    assert assigned["state"] == 1
    assert assigned["execdeadline"] == ZERO_TIME, "maxexectime 0 means no limit"
    assert later["state"] == 1, later
    assert later["assignedexecutorid"] == results["executorid"]
    assert later["retries"] == 0
    assert later["errors"] == []


def test_func_spec_helper_success_path(results: dict[str, Any]) -> None:
    spec = results["echo_spec"]
    assert spec["maxexectime"] == -1
    submitted, assigned = results["echo_submitted"], results["echo_assigned"]
    assert submitted["spec"]["args"] == ["hello", 42]
    assert submitted["spec"]["kwargs"] == {"greeting": "hi"}
    assert submitted["spec"]["funcname"] == "echo"
    assert submitted["spec"]["priority"] == 1
    assert assigned["processid"] == submitted["processid"]
    assert assigned["isassigned"] is True
    assert assigned["assignedexecutorid"] == results["executorid"]

    attribute = results["add_attribute"]
    assert (attribute["targetid"], attribute["key"], attribute["value"]) == (
        submitted["processid"],
        "result",
        "ok",
    )
    assert results["get_attribute"]["attributeid"] == attribute["attributeid"]
    assert results["after_set_output"]["out"] == ["partial"]
    assert results["after_set_output"]["state"] == 1

    closed = results["echo_closed"]
    assert closed["state"] == 2
    assert closed["out"] == ["done", 7]
    assert closed["endtime"] != ZERO_TIME
    assert [(a["key"], a["value"]) for a in closed["attributes"]] == [("result", "ok")]
    for key in ("set_output", "close", "add_log", "fail", "remove_process", "del_colony", "close_plain"):
        assert results[key] == {}, key

    [log] = results["process_log"]
    assert log["message"] == "compat log line"
    assert log["processid"] == submitted["processid"]
    assert log["executorname"] == "compat-executor"
    assert isinstance(log["timestamp"], int) and log["timestamp"] > 10**18  # unix nanoseconds
    assert [entry["message"] for entry in results["executor_log"]] == ["compat log line"]


def test_fail_path_and_listing(results: dict[str, Any]) -> None:
    failed = results["broken_failed"]
    assert failed["state"] == 3
    assert failed["errors"] == ["it broke"]
    assert results["empty_assign_error"] and "No process available" in results["empty_assign_error"]

    def ids(key: str) -> list[str]:
        return [p["processid"] for p in results[key] or []]

    assert ids("list_running") == [results["plain_assigned"]["processid"]]
    assert ids("list_successful") == [results["echo_closed"]["processid"]]
    assert ids("list_failed") == [failed["processid"]]
    assert ids("list_waiting") == []

    stats = results["stats"]
    assert (stats["runningprocesses"], stats["successfulprocesses"], stats["failedprocesses"]) == (1, 1, 1)
    assert stats["waitingprocesses"] == 0
    assert stats["executors"] == 1
    after = results["stats_after_remove"]
    assert (after["runningprocesses"], after["successfulprocesses"], after["failedprocesses"]) == (0, 1, 1)


def test_remove_process_and_colony(results: dict[str, Any]) -> None:
    assert results["remove_running_error"], "a running process must not be removable"
    assert results["get_removed_error"], "a removed process must be gone"
    assert results["colonyid"] not in [c["colonyid"] for c in results["list_colonies_after"] or []]
    assert results["get_colony_after_error"]


def test_compat_venv_is_reused(compat_python: Path) -> None:
    """A second ensure finds the existing environment instead of rebuilding it."""
    marker = compat_python.parent.parent / "pyvenv.cfg"
    before = marker.stat().st_mtime_ns
    assert ensure_compat_venv(compat_python.parent.parent) == compat_python
    assert marker.stat().st_mtime_ns == before
