"""The python executor's worker isolation (executors.isolation, executors.sandbox) with real
subprocesses: what an isolated worker sees and may do, how its end is passed on, and what the
settings decide when isolation is impossible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from executors.config import ConfigError
from executors.isolation import IsolationError, IsolationSettings, resolve
from executors.python_runner import worker_env
from tests.executors.harness import shared_dir
from tests.support import wait_until

LOOK = """
import json, os, sys
secret = sys.argv[1]
try:
    visible = os.listdir(os.path.dirname(secret))
except OSError as exc:
    visible = exc.strerror
import executors
writable = []
for target in (sys.executable, os.path.join(executors.__path__[0], "planted.py")):
    try:
        open(target, "ab").close()
        writable.append(target)
    except OSError:
        pass
print(json.dumps({"uid": os.getuid(), "pid": os.getpid(), "ppid": os.getppid(), "visible": visible,
                  "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
                  "home": os.environ["HOME"], "home_files": os.listdir(os.environ["HOME"]),
                  "writable": writable}))
"""


@pytest.fixture
def secret_dir() -> Iterator[Path]:
    """A directory every user could read, holding a key file: only isolation hides it."""
    with shared_dir() as directory:
        (directory / "colony.prvkey").write_text("ab" * 32)
        (directory / "colony.prvkey").chmod(0o644)
        yield directory


@pytest.fixture
def launcher(secret_dir: Path) -> list[str]:
    settings = IsolationSettings(hide=None, data_dir=str(secret_dir))
    isolation = resolve(settings, sys.executable, worker_env(), runs_code=True)
    if not isolation.launcher or "namespaces" not in isolation.summary:
        pytest.skip(f"this machine cannot isolate workers: {isolation.summary}")
    return list(isolation.launcher)


def run(launcher: list[str], code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*launcher, sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=worker_env(), timeout=60, check=False)


def test_an_isolated_worker_sees_only_itself_and_no_hidden_path(
    launcher: list[str], secret_dir: Path
) -> None:
    result = run(launcher, LOOK, str(secret_dir / "colony.prvkey"))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["pid"] == 2 and seen["ppid"] == 1 and set(seen["pids"]) <= {1, 2}, seen
    assert seen["visible"] == [], "the hidden directory must look empty"
    assert ".colonies" not in seen["home_files"]
    assert seen["home"] == os.path.realpath(os.environ.get("HOME") or Path.home())
    assert seen["writable"] == [], "the code workers and the executor run must be read-only"
    if os.geteuid() == 0:
        assert seen["uid"] != 0


@pytest.mark.parametrize(("code", "returncode"), [
    ("raise SystemExit(7)", 7),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", -9),
    ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", -15),
])
def test_the_worker_s_end_is_passed_on(launcher: list[str], code: str, returncode: int) -> None:
    assert run(launcher, code).returncode == returncode


def test_nothing_the_worker_started_outlives_it(launcher: list[str]) -> None:
    code = "import subprocess; subprocess.Popen(['sleep', '61.234'], start_new_session=True)"
    assert run(launcher, code).returncode == 0

    def sleepers() -> list[str]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and (entry / "cmdline").read_bytes() == b"sleep\x0061.234\x00":
                    found.append(entry.name)
            except OSError:
                continue
        return found

    wait_until(lambda: not sleepers(), 10, "the left-behind process to be killed")


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="COLONIES_WORKER_ISOLATION"):
        IsolationSettings.from_env({"COLONIES_WORKER_ISOLATION": "sometimes"})
    with pytest.raises(ConfigError, match="must not be root"):
        resolve(IsolationSettings(user="root"), sys.executable, worker_env(), runs_code=True)
    with pytest.raises(ConfigError, match="no user"):
        resolve(IsolationSettings(user="no-such-user-here"), sys.executable, worker_env(), runs_code=True)


def test_off_runs_unisolated_and_warns_only_when_code_is_shipped() -> None:
    off = IsolationSettings(mode="off")
    assert resolve(off, sys.executable, worker_env(), runs_code=False).launcher == ()
    warned = resolve(off, sys.executable, worker_env(), runs_code=True)
    assert warned.launcher == () and warned.warning and "UNISOLATED" in warned.warning


def test_without_isolation_required_refuses_and_auto_refuses_only_for_root() -> None:
    broken = "/nonexistent/python"  # no worker can start, so no isolation works either
    with pytest.raises(IsolationError, match="cannot isolate"):
        resolve(IsolationSettings(mode="required"), broken, worker_env(), runs_code=False)
    if os.geteuid() == 0:
        with pytest.raises(IsolationError, match="root"):
            resolve(IsolationSettings(), broken, worker_env(), runs_code=True)
    else:
        assert resolve(IsolationSettings(), broken, worker_env(), runs_code=True).warning
    assert resolve(IsolationSettings(), broken, worker_env(), runs_code=False).launcher == ()
