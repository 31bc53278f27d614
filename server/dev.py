"""``colonies dev``: PostgreSQL, the server, a python executor and a dev colony in one command.

The server contributes it to ``colonies`` (entry-point group ``colonies.commands``, with the
``server`` extra): it starts the server and its PostgreSQL. It starts the executor through the
command line, as any user would, and never imports ``executors``.

This process supervises two children, each started as ``python -m pycolonies.cli.main ...`` in its
own session (so a Ctrl-C in the terminal reaches only the supervisor, which stops them in order)
with its output in ``<data dir>/logs``:

1. ``server start`` on an embedded PostgreSQL in the data directory; then, once ``/health``
   answers, the dev identities are created or reused (:mod:`pycolonies.devmode`);
2. ``executor start --type python`` as the approved executor ``dev-python-executor``.

Ctrl-C, SIGTERM or SIGHUP stops the executor (it gives running work back to the queue), then the
server (which stops its PostgreSQL), and exits 0. If a child dies on its own, the rest is stopped
and the exit code is 1, with the end of that child's log. On Linux the children also get SIGTERM
if the supervisor itself is killed, so nothing is left running.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from pycolonies import devmode
from pycolonies.cli.common import fail
from pycolonies.client import Colonies
from pycolonies.devmode import EXECUTOR, EXECUTOR_TYPE, DevDir, DevError, DevKeys

DEFAULT_PORT = 50080
HEALTH_TIMEOUT = 180.0  # the first start runs initdb
READY_TIMEOUT = 60.0
EXECUTOR_GRACE = 5.0  # seconds running processes may finish after Ctrl-C before they are given back
SERVER_STOP_TIMEOUT = 60.0
TAIL_LINES = 15
# A function every python executor can run without shipped code, for `colonies function exec`.
DEMO_FUNCTION = "platform.node"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """A stop signal arrived while starting up."""


class Signals:
    """Counts stop signals; the supervisor's loops look at the count (a handler does nothing else)."""

    def __init__(self) -> None:
        self.count = 0

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1

    def install(self) -> Callable[[], None]:
        """Handle the stop signals; returns the function that puts the previous handlers back."""
        previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore


class Child:
    """A supervised child process: its own session, its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as output:
            self.proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with_parent())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def died(self) -> DevError:
        code = self.proc.returncode
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        return DevError(f"the {self.name} (pid {self.pid}) {how}; its log is {shown(self.log)}", self.log)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float, signals: Signals) -> None:
        """SIGTERM, again on each new stop signal (the executor then skips its grace period), and
        SIGKILL after ``timeout`` seconds."""
        seen = signals.count
        deadline = time.monotonic() + timeout
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
        while self.running():
            if time.monotonic() > deadline:
                self.proc.kill()
                break
            if signals.count != seen:
                seen = signals.count
                self.proc.send_signal(signal.SIGTERM)
            time.sleep(0.05)
        self.proc.wait()


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when this process dies (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def in_child() -> None:
        prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the supervisor died before that
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


class Supervisor:
    """The children of one ``colonies dev`` and the stop signals it got."""

    def __init__(self, paths: DevDir, signals: Signals) -> None:
        self.paths = paths
        self.signals = signals
        self.server: Child | None = None
        self.executor: Child | None = None

    def children(self) -> list[Child]:
        return [child for child in (self.executor, self.server) if child is not None]

    def check(self) -> None:
        """Stopped if asked to stop; the DevError of a child that died."""
        if self.signals.count:
            raise Stopped
        for child in self.children():
            if not child.running():
                raise child.died()

    def wait_for(self, what: str, ready: Callable[[], bool], timeout: float, log: Path) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            self.check()
            if time.monotonic() > deadline:
                raise DevError(f"{what} within {timeout:g} s; its log is {shown(log)}", log)
            time.sleep(0.1)
        self.check()

    def watch(self) -> None:
        """Block until a stop signal (return) or the death of a child (its DevError)."""
        try:
            while True:
                self.check()
                time.sleep(0.2)
        except Stopped:
            return

    def shutdown(self) -> None:
        if self.executor is not None and self.executor.running():
            typer.echo(f"Stopping the executor (running processes get {EXECUTOR_GRACE:g} s to finish, "
                       "then go back to the queue; Ctrl-C again to skip)")
            self.executor.stop(EXECUTOR_GRACE + 30, self.signals)
        if self.server is not None:
            if self.server.running():
                typer.echo("Stopping the server and its PostgreSQL")
            self.server.stop(SERVER_STOP_TIMEOUT, self.signals)
            if (self.paths.postgres / "postmaster.pid").exists():  # the server was killed
                from server.embedded import EmbeddedPostgres

                try:
                    EmbeddedPostgres(self.paths.postgres).stop_stale()
                except (OSError, RuntimeError) as exc:
                    typer.echo(f"Warning: could not stop the PostgreSQL in {self.paths.postgres}: {exc}",
                               err=True)


def dev(
    data_dir: Annotated[Path | None, typer.Option(
        help="Keys, database and logs (default COLONIES_DATA_DIR or ~/.colonies/dev)")] = None,
    port: Annotated[int | None, typer.Option(
        help="Server port (default COLONIES_SERVER_PORT or 50080)")] = None,
    host: Annotated[str, typer.Option(help="Interface the server listens on")] = "127.0.0.1",
    concurrency: Annotated[int, typer.Option(help="Processes the python executor runs at the same time")] = 1,
    no_executor: Annotated[bool, typer.Option(
        "--no-executor", help="Do not start the python executor")] = False,
) -> None:
    """Start everything a newcomer needs: an embedded PostgreSQL, the server, a python executor
    (type python-executor) and a colony 'dev' with a user, all keys kept in the data directory.
    Prints the export lines for the CLI and the SDK (also written to <data dir>/env). Ctrl-C stops
    everything; the next 'colonies dev' on the same data directory resumes with the same keys and data."""
    if port is None:
        text = os.environ.get("COLONIES_SERVER_PORT") or str(DEFAULT_PORT)
        if not text.isdigit():
            fail(f"COLONIES_SERVER_PORT must be a port number, not {text!r}")
        port = int(text)
    if not 1 <= port <= 65535:
        fail(f"--port must be a port number (1-65535), not {port}")
    if concurrency < 1:
        fail(f"--concurrency must be at least 1, not {concurrency}")
    paths = DevDir((data_dir or devmode.default_data_dir()).expanduser().absolute())
    try:
        paths.prepare()
        lock = paths.lock()
    except DevError as exc:
        fail(exc.message)
    with lock:
        _check_port(host, port)
        try:
            keys = paths.keys()
        except DevError as exc:
            fail(exc.message)
        signals = Signals()
        restore = signals.install()
        supervisor = Supervisor(paths, signals)
        error: DevError | None = None
        try:
            _run(supervisor, keys, host, port, concurrency, not no_executor)
        except Stopped:
            pass
        except DevError as exc:
            error = exc
        finally:
            supervisor.shutdown()
            restore()
    if error is not None:
        _report(error)
    typer.echo(f"Stopped. Keys, colony and processes stay in {shown(paths.root)}: "
               "'colonies dev' again picks them up.")


def _run(supervisor: Supervisor, keys: DevKeys, host: str, port: int, concurrency: int,
         with_executor: bool) -> None:
    paths = supervisor.paths
    client_host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLONIES_")}
    env["PYTHONUNBUFFERED"] = "1"
    cli = [sys.executable, "-m", "pycolonies.cli.main"]
    first = not (paths.postgres / "PG_VERSION").exists()
    typer.echo(f"Starting the server on {host}:{port} with an embedded PostgreSQL in {shown(paths.postgres)}"
               + (" (first start: creating the database, this takes a few seconds)" if first else ""))
    supervisor.server = Child("server", [*cli, "server", "start", "--host", host, "--port", str(port),
                                         "--data-dir", str(paths.root)], env, paths.log("server"))
    url = f"http://{_url_host(client_host)}:{port}/health"
    supervisor.wait_for("the server was not healthy", lambda: _healthy(url), HEALTH_TIMEOUT,
                        supervisor.server.log)
    with Colonies(client_host, port, timeout=30) as client:
        created = devmode.ensure_identities(client, keys)
    lines = devmode.exports(client_host, port, keys)
    paths.write_env(lines)
    if with_executor:
        supervisor.executor = Child(
            "executor",
            [*cli, "executor", "start", "--type", "python", "--concurrency", str(concurrency),
             "--grace", f"{EXECUTOR_GRACE:g}", "--allow", DEMO_FUNCTION],
            {**env, "COLONIES_SERVER_HOST": client_host, "COLONIES_SERVER_PORT": str(port),
             "COLONIES_TLS": "false", "COLONIES_COLONY_NAME": devmode.COLONY,
             "COLONIES_PRVKEY": keys.executor,
             # The executor hides this from the code it runs (keys, database socket, logs).
             "COLONIES_DATA_DIR": str(paths.root)},
            paths.log("executor"),
        )
        executor = supervisor.executor
        supervisor.wait_for("the executor was not ready",
                            lambda: f"Executor {EXECUTOR} ready" in executor.output(), READY_TIMEOUT,
                            executor.log)
    _banner(supervisor, client_host, port, concurrency, created, lines)
    supervisor.watch()


def _banner(supervisor: Supervisor, host: str, port: int, concurrency: int, created: list[str],
            lines: list[str]) -> None:
    paths, server, executor = supervisor.paths, supervisor.server, supervisor.executor
    assert server is not None
    echo = typer.echo
    echo("")
    echo(f"Colonies dev is running (Ctrl-C stops it). Data, keys and logs: {shown(paths.root)}")
    echo(f"  server    http://{_url_host(host)}:{port} on an embedded PostgreSQL "
         f"(pid {server.pid}, log {shown(server.log)})")
    if executor is not None:
        echo(f"  executor  {EXECUTOR}, type {EXECUTOR_TYPE}, {concurrency} at a time "
             f"(pid {executor.pid}, log {shown(executor.log)})")
    else:
        echo("  executor  none (--no-executor)")
    echo(f"  colony    {devmode.COLONY} with user {devmode.USER}: "
         + (f"created {', '.join(created)}" if created else "reused"))
    echo(f"  dashboard http://{_url_host(host)}:{port}/ (sign in with colony {devmode.COLONY} and the "
         "key in COLONIES_PRVKEY below)")
    echo("")
    echo(f"For the CLI and the SDK, export these (or: source {shown(paths.env_file)}):")
    for line in lines:
        echo(line)
    echo("")
    echo(f"Try it in another terminal, after: source {shown(paths.env_file)}")
    echo(f"  colonies function exec --func {DEMO_FUNCTION} --targettype {EXECUTOR_TYPE} --wait")
    echo("  python examples/workflow_gen_sum.py   # the tutorial's workflow, submitted with the SDK")


def _report(error: DevError) -> None:
    """The end of the relevant log (indented), then the one-line error; exit 1."""
    if error.log is not None:
        try:
            tail = error.log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        except OSError:
            tail = []
        for line in tail:
            typer.echo(f"  | {line}", err=True)
    fail(error.message)


def _check_port(host: str, port: int) -> None:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except OSError as exc:
        fail(f"cannot listen on {host!r}: {exc}")
    try:
        with socket.create_server((host, port), family=family):
            pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is already in use (another colonies server?): stop what uses it, "
                 "or choose another with --port or COLONIES_SERVER_PORT")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def shown(path: Path) -> str:
    """``path`` for people: under the home directory as ``~/...``."""
    home = Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) and path != home else str(path)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False

