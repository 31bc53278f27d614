"""``colonies dev`` as a real subprocess: it starts an embedded PostgreSQL, the server and the python
executor, prints the export lines that let the SDK run a function on that executor, stops
everything on Ctrl-C, resumes with the same colony, keys and data, reports a child that dies, and
refuses a busy port or a data directory already in use with one line."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pycolonies import Colonies, crypto, func_spec, wire
from tests.support import wait_until
from tests.support.processes import pid_gone

CLI = [sys.executable, "-m", "pycolonies.cli.main"]
HOST = "127.0.0.1"
START_TIMEOUT = 120.0  # the first start runs initdb
STOP_TIMEOUT = 60.0
BANNER_END = "python examples/workflow_gen_sum.py"  # in the banner's last line, after the exports
EXPORT = re.compile(r"^export (COLONIES_\w+)=(\S+)$", re.MULTILINE)


def greet(name):
    import platform

    print(f"greeting {name}")
    return f"hello {name} from {platform.node()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLONIES_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_until_gone(pids: dict[str, int], timeout: float = 10.0) -> None:
    try:
        wait_until(lambda: all(pid_gone(pid) for pid in pids.values()), timeout, f"{sorted(pids)} to exit")
    except AssertionError as exc:
        left = {name: pid for name, pid in pids.items() if not pid_gone(pid)}
        raise AssertionError(f"{exc}; still running: {left}") from None


class Dev:
    """One ``colonies dev`` subprocess; its stdout and stderr go to files."""

    def __init__(self, data_dir: Path, port: int, workdir: Path) -> None:
        self.data_dir = data_dir
        self.port = port
        workdir.mkdir(parents=True)
        self._out, self._err = workdir / "stdout", workdir / "stderr"
        with self._out.open("wb") as out, self._err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*CLI, "dev", "--data-dir", str(data_dir), "--port", str(port), "--host", HOST],
                env=cli_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            )

    @property
    def stdout(self) -> str:
        return self._out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self._err.read_text(errors="replace")

    def wait_banner(self) -> dict[str, str]:
        """The exported variables, once the whole banner is printed (up to its last line)."""
        with contextlib.suppress(AssertionError):  # a timeout is reported below, with the output
            wait_until(lambda: BANNER_END in self.stdout or self.proc.poll() is not None, START_TIMEOUT,
                       "the banner")
        if BANNER_END not in self.stdout:
            raise AssertionError(f"no banner (exit {self.proc.poll()}):\n{self.stdout}\n{self.stderr}")
        return dict(EXPORT.findall(self.stdout))

    def pids(self) -> dict[str, int]:
        """The server's and executor's pids from the banner, and the embedded PostgreSQL's."""
        found = {name: int(pid) for name, pid in re.findall(r"^  (server|executor) .*\(pid (\d+),",
                                                            self.stdout, re.MULTILINE)}
        pidfile = self.data_dir / "postgres" / "postmaster.pid"
        found["postgres"] = int(pidfile.read_text().splitlines()[0])
        return found

    def signal_and_wait(self, sig: signal.Signals = signal.SIGINT) -> int:
        self.proc.send_signal(sig)
        return self.wait()

    def wait(self) -> int:
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"colonies dev did not exit:\n{self.stdout}\n{self.stderr}") from None


StartDev = Callable[[Path, int], Dev]


@pytest.fixture
def start_dev(tmp_path: Path) -> Iterator[StartDev]:
    started: list[Dev] = []

    def start(data_dir: Path, port: int) -> Dev:
        dev = Dev(data_dir, port, tmp_path / f"run{len(started)}")
        started.append(dev)
        return dev

    yield start
    for dev in started:
        if dev.proc.poll() is None:
            dev.proc.send_signal(signal.SIGTERM)
            try:
                dev.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                dev.proc.kill()  # its children get SIGTERM (PR_SET_PDEATHSIG) and stop themselves


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=cli_env(), capture_output=True, text=True, timeout=60,
                          check=False, stdin=subprocess.DEVNULL)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error: ")]


def test_dev_runs_a_function_stops_cleanly_and_resumes(tmp_path: Path, start_dev: StartDev) -> None:
    data_dir, port = tmp_path / "dev", free_port()

    # First run: everything is created and the printed variables are all a client needs.
    first = start_dev(data_dir, port)
    env = first.wait_banner()
    assert env["COLONIES_SERVER_HOST"] == HOST and env["COLONIES_SERVER_PORT"] == str(port)
    assert env["COLONIES_TLS"] == "false" and env["COLONIES_COLONY_NAME"] == "dev"
    assert "created colony dev, user dev-user, executor dev-python-executor" in first.stdout
    assert dict(EXPORT.findall((data_dir / "env").read_text())) == env
    for name in ("env", "server.prvkey", "colony.prvkey", "user.prvkey", "executor.prvkey"):
        assert (data_dir / name).stat().st_mode & 0o077 == 0, f"{name} must be private to its owner"
    assert (data_dir / "executor.prvkey").read_text().strip() not in first.stdout
    assert f"dashboard http://{HOST}:{port}/" in first.stdout
    with urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=30) as page:
        assert "js/app.js" in page.read().decode()
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]

    user_prvkey = env["COLONIES_PRVKEY"]
    with Colonies(env["COLONIES_SERVER_HOST"], int(env["COLONIES_SERVER_PORT"]), timeout=30) as sdk:
        colonies = sdk.list_colonies(env["COLONIES_SERVER_PRVKEY"])
        assert {"colonyid": crypto.derive_id(env["COLONIES_COLONY_PRVKEY"]), "name": "dev"} in colonies
        spec = func_spec(func=greet, args=["dev"], colonyname=env["COLONIES_COLONY_NAME"],
                         executortype="python-executor", maxexectime=30)
        submitted = sdk.submit_func_spec(spec, user_prvkey)
        done = sdk.wait(submitted, 30, user_prvkey)
        assert done.state == wire.SUCCESS, done.errors
        assert done.output == [f"hello dev from {os.uname().nodename}"]
        executor = sdk.get_executor("dev", "dev-python-executor", user_prvkey)
        assert executor["executorid"] == done.assignedexecutorid

    # The data directory is in use: a second `colonies dev` on it refuses with one line.
    busy = run_cli("dev", "--data-dir", str(data_dir), "--port", str(free_port()))
    assert busy.returncode == 1, busy
    assert error_lines(busy.stderr) == [line for line in busy.stderr.splitlines() if line.strip()]
    assert "already running" in busy.stderr and str(data_dir) in busy.stderr

    # Ctrl-C stops the executor, the server and its PostgreSQL, and exits 0.
    pids = first.pids()
    assert set(pids) == {"server", "executor", "postgres"} and not any(pid_gone(p) for p in pids.values())
    assert first.signal_and_wait(signal.SIGINT) == 0, first.stderr
    wait_until_gone(pids)
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert "Traceback" not in first.stdout + first.stderr, first.stderr
    assert "Stopped." in first.stdout

    # Second run on the same data directory: same colony, keys and processes.
    second = start_dev(data_dir, port)
    assert second.wait_banner() == env
    assert "dev with user dev-user: reused" in second.stdout
    with Colonies(HOST, port, timeout=30) as sdk:
        again = sdk.get_process(submitted.processid, user_prvkey)
        assert again.state == wire.SUCCESS and again.output == done.output

    # A child that dies takes the rest down: exit 1, one error naming it and its log.
    pids = second.pids()
    os.kill(pids["executor"], signal.SIGKILL)
    assert second.wait() == 1
    wait_until_gone(pids)
    log = data_dir / "logs" / "executor.log"
    assert error_lines(second.stderr) == [
        f"Error: the executor (pid {pids['executor']}) was killed by SIGKILL; its log is {log}"
    ], second.stderr
    assert "Executor dev-python-executor ready" in second.stderr  # the end of its log
    assert "Traceback" not in second.stdout + second.stderr


def test_dev_on_a_busy_port_fails_cleanly(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("dev", "--data-dir", str(tmp_path / "dev"), "--port", str(port), "--host", HOST)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stdout + result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"Error: port {port} on {HOST} is already in use (another colonies server?): stop what uses it, "
        "or choose another with --port or COLONIES_SERVER_PORT"
    ]
    assert not (tmp_path / "dev" / "postgres").exists(), "nothing may be started"
