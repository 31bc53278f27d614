"""Executors as real subprocesses for the tests: start one, wait until it is ready, read what it
printed, signal it, and wait on conditions instead of sleeping."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycolonies import Colonies, wire
from pycolonies.models import Process
from tests.support import wait_until
from tests.support.processes import below, parents

ROOT = Path(__file__).resolve().parents[2]
TOY = [sys.executable, "-m", "tests.executors.toy_executor"]
CLI = [sys.executable, "-m", "pycolonies.cli.main"]
READY = re.compile(r"^Executor (\S+) ready", re.MULTILINE)
START_TIMEOUT = 60.0
FINAL = (wire.SUCCESS, wire.FAILED, wire.CANCELLED)


def executor_env(server_port: int, colonyname: str, **variables: str) -> dict[str, str]:
    """The environment without any COLONIES_* variable, pointed at the test server and colony."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLONIES_")}
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), COLONIES_SERVER_HOST="127.0.0.1",
               COLONIES_SERVER_PORT=str(server_port), COLONIES_COLONY_NAME=colonyname)
    env.update(variables)
    return env


@dataclass
class RunningExecutor:
    """An executor subprocess whose stdout and stderr go to files (no pipe can fill up)."""

    command: Sequence[str]
    env: dict[str, str]
    workdir: Path
    popen: subprocess.Popen[bytes] = field(init=False)
    name: str = ""

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._out = (self.workdir / "stdout.txt").open("wb")
        self._err = (self.workdir / "stderr.txt").open("wb")
        self.popen = subprocess.Popen(list(self.command), env=self.env, cwd=ROOT, stdout=self._out,
                                      stderr=self._err, stdin=subprocess.DEVNULL)

    @property
    def stdout(self) -> str:
        return (self.workdir / "stdout.txt").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.workdir / "stderr.txt").read_text(errors="replace")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> RunningExecutor:
        def ready() -> str | None:
            if self.popen.poll() is not None:
                raise AssertionError(f"the executor exited with {self.popen.returncode} before it was "
                                     f"ready:\n{self.stdout}\n{self.stderr}")
            match = READY.search(self.stdout)
            return match.group(1) if match else None

        self.name = wait_until(ready, timeout, "the executor to be ready")
        return self

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.popen.send_signal(signum)

    def wait_exit(self, timeout: float = 60.0) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the executor did not exit within {timeout} s:\n{self.stderr}") from None

    def stop(self) -> None:
        """Make sure it is gone (used in teardown)."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(30)
        self._out.close()
        self._err.close()

    def __enter__(self) -> RunningExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def starting(kind: str, server_port: int, colonyname: str, colony_prvkey: str, workdir: Path,
             **defaults: str) -> Iterator[Callable[..., RunningExecutor]]:
    """``start(*options, ready=True, **env)`` runs ``colonies executor start --type KIND`` (registered
    with the colony key unless ``env`` has ``COLONIES_PRVKEY``; ``defaults`` are more variables);
    every executor started is stopped at the end."""
    started: list[RunningExecutor] = []

    def start(*options: str, ready: bool = True, **variables: str) -> RunningExecutor:
        variables = {"COLONIES_COLONY_PRVKEY": colony_prvkey, **defaults, **variables}
        env = executor_env(server_port, colonyname, **variables)
        command = [*CLI, "executor", "start", "--type", kind, *options]
        executor = RunningExecutor(command, env, workdir / f"{kind}{len(started)}")
        started.append(executor)
        return executor.wait_ready() if ready else executor

    try:
        yield start
    finally:
        for executor in started:
            executor.stop()


def submit(client: Colonies, colonyname: str, prvkey: str, funcname: str, *args: Any,
           executortype: str = "toy", maxexectime: int = -1, **kwargs: Any) -> Process:
    spec = {"funcname": funcname, "args": list(args), "kwargs": kwargs, "maxexectime": maxexectime,
            "maxretries": 0, "conditions": {"colonyname": colonyname, "executortype": executortype}}
    return client.submit_func_spec(spec, prvkey)


def wait_state(client: Colonies, process: Process | str, prvkey: str, states: Sequence[int] = FINAL,
               timeout: float = 30.0) -> Process:
    processid = process if isinstance(process, str) else process.processid

    def reached() -> Process | None:
        current = client.get_process(processid, prvkey)
        return current if current.state in states else None

    return wait_until(reached, timeout, f"process {processid[:8]} to reach state {list(states)}")


def log_text(client: Colonies, colonyname: str, processid: str, prvkey: str) -> tuple[str, int]:
    """All log messages of a process joined, and how many log entries there were."""
    entries = client.get_process_log(colonyname, processid, wire.MAX_LOG_COUNT, 0, prvkey)
    return "".join(entry["message"] for entry in entries), len(entries)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _zygote_below(pid: int) -> tuple[set[int], set[int], set[int]]:
    """Below executor ``pid``: (all its descendants, the warm workers' zygote processes, their
    sandbox launchers). The zygote's forked children carry its command line too; they are told
    apart by their parent, the zygote itself."""
    parent_of = parents()
    found = below(pid, parent_of)
    zygote = {p for p in found if "executors.python_zygote" in _cmdline(p)}
    launchers = {p for p in zygote if "sandbox.py" in _cmdline(p)}
    proper = {p for p in zygote - launchers if parent_of.get(p) in launchers | {pid}}
    return found, proper, launchers


def zygote_of(pid: int) -> set[int]:
    """The warm workers' zygote of executor ``pid`` (empty until it runs)."""
    return _zygote_below(pid)[1]


def workers_of(pid: int) -> set[int]:
    """The processes below executor ``pid`` that run processes: its descendants but the warm
    workers' zygote (and its sandbox launcher), which stays for the executor's lifetime."""
    found, zygote, launchers = _zygote_below(pid)
    return found - zygote - launchers


@contextmanager
def shared_dir() -> Iterator[Path]:
    """A fresh directory that every user may write in: functions the tests ship write their
    markers there (an executor run as root runs them as an unprivileged user, for whom a
    pytest ``tmp_path`` is out of reach)."""
    path = Path(tempfile.mkdtemp(prefix="colonies-test-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
