"""Helpers for tests that run real server replicas (``colonies server start``) as subprocesses.

A :class:`Replica` is one server process on a given database; several may share one database and
one server key. Its output goes to a log file (shown in assertion messages). Every replica a test
starts must be stopped by the test's fixture (:meth:`Replica.kill` is idempotent).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from pycolonies import Colonies, crypto
from pycolonies.retrying import DEFAULT_RETRY_FOR_S
from server.embedded import free_port
from tests.support import wait_until
from tests.support.balancer import Balancer

CLI = [sys.executable, "-m", "pycolonies.cli.main"]
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def cli_env(**overrides: str) -> dict[str, str]:
    """The current environment without any COLONIES_* variable, plus ``overrides`` (one server
    worker unless they say otherwise: the default depends on the machine's cores)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLONIES_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["COLONIES_SERVER_WORKERS"] = "1"
    env.update(overrides)
    return env


def http_status(url: str, timeout: float = 3.0) -> int | None:
    """The HTTP status of GET ``url`` (None if nothing answered)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


class Replica:
    """One ``colonies server start`` subprocess serving ``dsn`` on a loopback port."""

    def __init__(self, dsn: str, server_prvkey: str, workdir: Path, port: int, name: str = "replica",
                 env: dict[str, str] | None = None) -> None:
        self.dsn = dsn
        self.server_prvkey = server_prvkey
        self.host = HOST
        self.port = port
        self.name = name
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{name}-{port}.log"
        self._log = self.log_path.open("w")
        env = cli_env(
            COLONIES_DB_URL=dsn,
            COLONIES_SERVER_PRVKEY=server_prvkey,
            COLONIES_DATA_DIR=str(workdir / f"{name}-data"),
            **(env or {}),
        )
        self.proc = subprocess.Popen(
            [*CLI, "server", "start", "--port", str(port), "--host", HOST],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    @property
    def server_id(self) -> str:
        return crypto.derive_id(self.server_prvkey)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def output(self) -> str:
        self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def health(self) -> int | None:
        return http_status(f"{self.url}/health")

    def client(self, timeout: float | None = 30.0, retry_for: float = DEFAULT_RETRY_FOR_S) -> Colonies:
        return Colonies(self.host, self.port, timeout=timeout, retry_for=retry_for)

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        with contextlib.suppress(AssertionError):  # a timeout is reported below, with the output
            wait_until(lambda: not self.alive or self.health() == 200, timeout, f"{self.name} to be healthy",
                       interval=0.1)
        if not self.alive:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.output}")
        if self.health() != 200:
            raise AssertionError(f"{self.name} not healthy after {timeout:.0f} s:\n{self.output}")

    def kill(self) -> None:
        """SIGKILL (no clean shutdown) and reap; a no-op if already gone."""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(STOP_TIMEOUT)
        finally:
            self._log.close()

    def stop(self) -> None:
        """SIGTERM, falling back to SIGKILL; a no-op if already gone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.kill()

    def __repr__(self) -> str:
        return f"Replica({self.name!r}, port={self.port}, pid={self.proc.pid})"


def restart_in_place(replicas: list[Replica], index: int, server_prvkey: str,
                     workdir: Path) -> tuple[float, int]:
    """A step of a rolling restart: SIGTERM ``replicas[index]``, wait for it to exit, and put a
    successor on the same port in its place, healthy; how long the stop took, and its exit code."""
    old = replicas[index]
    started = time.monotonic()
    old.stop()
    stop_s = time.monotonic() - started
    successor = Replica(old.dsn, server_prvkey, workdir, old.port, f"{old.name}+")
    replicas[index] = successor
    successor.wait_healthy()
    return stop_s, old.proc.returncode


@contextlib.contextmanager
def balanced_replicas(dsn: str, workdir: Path,
                      count: int = 2) -> Iterator[tuple[list[Replica], Balancer, str]]:
    """``count`` healthy replicas on ``dsn`` with one new server key, behind a load balancer:
    ``(replicas, balancer, server_prvkey)``. The list holds the current replicas (a rolling
    restart replaces them in it); every one still running at the end is stopped."""
    server_prvkey = crypto.generate_private_key()
    replicas = [Replica(dsn, server_prvkey, workdir / "replicas", free_port(HOST), chr(ord("a") + i))
                for i in range(count)]
    try:
        for replica in replicas:
            replica.wait_healthy()
        with Balancer([r.port for r in replicas]) as balancer:
            yield replicas, balancer, server_prvkey
    finally:
        for replica in replicas:
            replica.stop()
