"""The ``colonies`` command line, run as a real subprocess.

``colonies server start`` on an embedded PostgreSQL (first start, clean SIGTERM shutdown, restart on
the same data directory), with a given server key, ``colonies database migrate`` and the
``colonies security`` helpers, and clean one-line failures for bad input.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pycolonies import Colonies, crypto
from pycolonies.errors import AccessDeniedError
from server.embedded import EmbeddedPostgres, free_port
from tests.conftest import _admin, _with_database
from tests.integration.replicas import http_status
from tests.support import wait_until
from tests.support.processes import pid_gone

CLI = [sys.executable, "-m", "pycolonies.cli.main"]
HOST = "127.0.0.1"
START_TIMEOUT = 120.0  # first start runs initdb
STOP_TIMEOUT = 60.0
CLI_TIMEOUT = 60.0


def cli_env(**overrides: str) -> dict[str, str]:
    """The current environment without any COLONIES_* variable, plus ``overrides`` (one server
    worker unless they say otherwise: the default depends on the machine's cores)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLONIES_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["COLONIES_SERVER_WORKERS"] = "1"
    env.update(overrides)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )


_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


def assert_clean_failure(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Non-zero exit, a single ``Error: ...`` line on stderr (besides the server's log lines), no
    traceback."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not _LOG_LINE.match(line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines
    for needle in needles:
        assert needle in lines[0], lines[0]


class ServerProcess:
    """``colonies server start`` in a subprocess; its merged stdout/stderr collected by a thread."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [*CLI, "server", "start", "--port", str(port), "--host", HOST],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def health(self) -> int | None:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.port}/health", timeout=2) as reply:
                return reply.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        with contextlib.suppress(AssertionError):  # a timeout is reported below, with the output
            wait_until(lambda: self.proc.poll() is not None or self.health() == 200, timeout,
                       "the server to be healthy", interval=0.1)
        if self.proc.poll() is not None:
            self._reader.join(5)
            raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output}")
        if self.health() != 200:
            raise AssertionError(f"server not healthy after {timeout:.0f} s:\n{self.output}")

    def wait_for_line(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def seen() -> bool:
            found.extend(m for m in (regex.search(line) for line in list(self.lines)) if m)
            return bool(found)

        try:
            wait_until(seen, timeout, f"output matching {pattern!r}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; output so far:\n{self.output}") from None
        return found[0]

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"server did not stop within {timeout:.0f} s:\n{self.output}") from None
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerProcess]]:
    """Start servers; any still running at the end are killed and their embedded PostgreSQL stopped."""
    started: list[tuple[ServerProcess, Path]] = []

    def start(env: dict[str, str], data_dir: Path) -> ServerProcess:
        server = ServerProcess(env, free_port(HOST))
        started.append((server, data_dir))
        return server

    yield start
    for server, data_dir in started:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                server.kill()
        if (data_dir / "postgres" / "postmaster.pid").exists():
            EmbeddedPostgres(data_dir / "postgres").stop()


@pytest.fixture
def fresh_database(admin_dsn: str) -> Iterator[str]:
    """An empty database (no schema) on the test PostgreSQL; dropped afterwards."""
    name = f"colonies_cli_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin_dsn, f"CREATE DATABASE {name}"))
    try:
        yield _with_database(admin_dsn, name)
    finally:
        asyncio.run(_admin(admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


# -- colonies server start --------------------------------------------------------------------------


def test_server_start_embedded_generates_key_stops_cleanly_and_restarts(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    data_dir = tmp_path / "data"
    env = cli_env(COLONIES_DATA_DIR=str(data_dir))
    key_path = data_dir / "server.prvkey"
    pidfile = data_dir / "postgres" / "postmaster.pid"

    # First start: initdb, migrate, generate the server key and tell the user about it.
    server = start_server(env, data_dir)
    server.wait_healthy()
    told = server.wait_for_line(r"export COLONIES_SERVER_PRVKEY=\$\(cat (\S+)\)")
    assert Path(told.group(1)) == key_path
    assert any(str(key_path) in line and "Generated" in line for line in server.lines), server.output
    assert key_path.stat().st_mode & 0o077 == 0, "the server key must be private to its owner"
    server_prvkey = key_path.read_text().strip()
    server_id = crypto.derive_id(server_prvkey)
    assert server.wait_for_line(r"Server id: (\w+)").group(1) == server_id
    server.wait_for_line(r"Embedded PostgreSQL: postgresql://")

    # The generated key is the server owner: it can add a colony.
    colony_prvkey = crypto.generate_private_key()
    colony = {"colonyid": crypto.derive_id(colony_prvkey), "name": "persisted"}
    with Colonies(HOST, server.port, timeout=30) as sdk:
        assert sdk.add_colony(colony, server_prvkey)["name"] == "persisted"
        with pytest.raises(AccessDeniedError):
            sdk.list_colonies(crypto.generate_private_key())

    assert pidfile.exists()
    postmaster_pid = int(pidfile.read_text().splitlines()[0])
    assert not pid_gone(postmaster_pid)

    # SIGTERM: exit 0, embedded PostgreSQL stopped.
    assert server.terminate() == 0, server.output
    assert "Shutting down" in server.output
    assert "Traceback" not in server.output, server.output
    assert not pidfile.exists(), "embedded PostgreSQL left its postmaster.pid behind"
    wait_until(lambda: pid_gone(postmaster_pid), 10, "the embedded PostgreSQL to exit")

    # Second start on the same data dir: same key, same data.
    again = start_server(env, data_dir)
    again.wait_healthy()
    assert again.wait_for_line(r"Server id: (\w+)").group(1) == server_id
    assert key_path.read_text().strip() == server_prvkey
    assert "Generated" not in again.output
    assert "initialising embedded PostgreSQL" not in again.output
    with Colonies(HOST, again.port, timeout=30) as sdk:
        assert colony in sdk.list_colonies(server_prvkey)
    assert again.terminate() == 0, again.output
    assert not pidfile.exists()


def test_server_start_with_given_prvkey_derives_server_id(
    tmp_path: Path, fresh_database: str, start_server: Callable[..., ServerProcess]
) -> None:
    data_dir = tmp_path / "data"
    server_prvkey = crypto.generate_private_key()
    env = cli_env(
        COLONIES_DATA_DIR=str(data_dir),
        COLONIES_DB_URL=fresh_database,
        COLONIES_SERVER_PRVKEY=server_prvkey,
    )
    server = start_server(env, data_dir)
    server.wait_healthy()
    assert server.wait_for_line(r"Server id: (\w+)").group(1) == crypto.derive_id(server_prvkey)
    with Colonies(HOST, server.port, timeout=30) as sdk:
        stats = sdk.server_statistics(server_prvkey)
        assert stats["colonies"] == 0
        with pytest.raises(AccessDeniedError):
            sdk.server_statistics(crypto.generate_private_key())
    assert not (data_dir / "server.prvkey").exists(), "no key may be generated when one is given"
    assert "Embedded PostgreSQL" not in server.output
    assert "Generated" not in server.output
    assert server.terminate() == 0, server.output


def test_server_start_with_corrupt_key_file_fails_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "server.prvkey").write_text("not-a-key\n")
    result = run_cli(
        "server",
        "start",
        "--port",
        str(free_port(HOST)),
        "--host",
        HOST,
        env=cli_env(COLONIES_DATA_DIR=str(data_dir)),
    )
    assert_clean_failure(result, "server.prvkey")
    assert (data_dir / "server.prvkey").read_text() == "not-a-key\n", "the key file must not be replaced"
    assert not (data_dir / "postgres").exists()


def test_server_start_on_a_busy_port_fails_cleanly_and_stops_postgres(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(
            "server",
            "start",
            "--port",
            str(port),
            "--host",
            HOST,
            env=cli_env(COLONIES_DATA_DIR=str(data_dir)),
        )
    try:
        assert_clean_failure(result, "cannot start the server")
        assert not (data_dir / "postgres" / "postmaster.pid").exists(), "embedded PostgreSQL left running"
    finally:
        if (data_dir / "postgres" / "postmaster.pid").exists():
            EmbeddedPostgres(data_dir / "postgres").stop()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--tls-cert", "x"], "--tls-key"),
        (["--tls-key", "x"], "--tls-cert"),
        (["--tls-cert", "missing-cert.pem", "--tls-key", "missing-key.pem"], "missing-cert.pem"),
    ],
)
def test_server_start_bad_tls_options_fail_cleanly(tmp_path: Path, args: list[str], needle: str) -> None:
    data_dir = tmp_path / "data"
    result = run_cli(
        "server",
        "start",
        "--port",
        str(free_port(HOST)),
        "--host",
        HOST,
        *args,
        env=cli_env(COLONIES_DATA_DIR=str(data_dir)),
    )
    assert_clean_failure(result, needle)
    assert not data_dir.exists(), "nothing may be started or created when the options are invalid"


# -- colonies database migrate ----------------------------------------------------------------------


def test_database_migrate_applies_then_reports_up_to_date(fresh_database: str) -> None:
    env = cli_env(COLONIES_DB_URL=fresh_database)
    first = run_cli("database", "migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "Applied migrations: 0001, 0002, 0003, 0004" in first.stdout
    second = run_cli("database", "migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout
    assert "Applied" not in second.stdout
    by_option = run_cli("database", "migrate", "--db-url", fresh_database, env=cli_env())
    assert by_option.returncode == 0, by_option.stderr
    assert "up to date" in by_option.stdout


def test_database_migrate_without_url_fails_cleanly() -> None:
    result = run_cli("database", "migrate", env=cli_env())
    assert_clean_failure(result, "COLONIES_DB_URL")


def test_database_migrate_unreachable_database_fails_cleanly() -> None:
    url = f"postgresql://postgres@{HOST}:{free_port(HOST)}/nothing"
    result = run_cli("database", "migrate", env=cli_env(COLONIES_DB_URL=url))
    assert_clean_failure(result, "migration failed")


# -- colonies security ------------------------------------------------------------------------------


def test_security_generate_prints_matching_id_and_key() -> None:
    result = run_cli("security", "generate")
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert set(fields) == {"Id", "PrvKey"}, result.stdout
    assert re.fullmatch(r"[0-9a-f]{64}", fields["PrvKey"])
    assert crypto.derive_id(fields["PrvKey"]) == fields["Id"]
    again = run_cli("security", "id", "--prvkey", fields["PrvKey"])
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == fields["Id"]


@pytest.mark.parametrize("prvkey", ["bad", "zz" * 32, "00" * 32, "ab" * 31])
def test_security_id_rejects_a_bad_key_cleanly(prvkey: str) -> None:
    assert_clean_failure(run_cli("security", "id", "--prvkey", prvkey))


def test_server_start_with_workers_serves_from_several_processes(
    tmp_path: Path, fresh_database: str, start_server: Callable[..., ServerProcess]
) -> None:
    data_dir = tmp_path / "data"
    server_prvkey = crypto.generate_private_key()
    env = cli_env(COLONIES_DATA_DIR=str(data_dir), COLONIES_DB_URL=fresh_database,
                  COLONIES_SERVER_PRVKEY=server_prvkey, COLONIES_SERVER_WORKERS="3")
    server = start_server(env, data_dir)
    server.wait_healthy()
    server.wait_for_line(r"\(3 worker processes\)")
    wait_until(lambda: len(_child_pids(server.proc.pid)) >= 2, 30, "two worker processes")
    children = _child_pids(server.proc.pid)
    # Many fresh connections: the kernel spreads them over the processes; all must answer alike.
    for _ in range(30):
        with Colonies(HOST, server.port, timeout=30) as sdk:
            assert sdk.server_statistics(server_prvkey)["colonies"] == 0
    assert server.terminate() == 0, server.output
    for pid in children:
        wait_until(lambda pid=pid: pid_gone(pid), 10, f"worker {pid} to exit")


def test_server_start_rejects_zero_workers(tmp_path: Path) -> None:
    result = run_cli("server", "start", "--workers", "0", env=cli_env(COLONIES_DATA_DIR=str(tmp_path)))
    assert_clean_failure(result, "at least 1")


def _child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc), excluding multiprocessing's resource tracker."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"resource_tracker" not in cmdline:
            children.append(int(entry.name))
    return children


def test_server_start_applies_the_limits_in_every_worker_process(
    tmp_path: Path, fresh_database: str, start_server: Callable[..., ServerProcess]
) -> None:
    """Each of the 2 processes admits 2 connections from this peer: 4 in all, the rest get 429."""
    data_dir = tmp_path / "data"
    env = cli_env(COLONIES_DATA_DIR=str(data_dir), COLONIES_DB_URL=fresh_database,
                  COLONIES_SERVER_PRVKEY=crypto.generate_private_key(), COLONIES_SERVER_WORKERS="2",
                  COLONIES_MAX_CONNECTIONS_PER_PEER="2", COLONIES_HEADER_TIMEOUT="60")
    server = start_server(env, data_dir)
    server.wait_healthy()
    wait_until(lambda: _listening_sockets(server.port) == 2, 60, "both processes to listen")
    # 20 connections held open at once; the kernel spreads them over the two processes.
    socks = [socket.create_connection((HOST, server.port), timeout=30) for _ in range(20)]
    statuses = []
    for sock in socks:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            assert chunk, "the server closed a connection without a reply"
            reply += chunk
        statuses.append(int(reply.split(b" ", 2)[1]))
    for sock in socks:
        sock.close()
    assert sorted(statuses) == [200] * 4 + [429] * 16, statuses
    assert server.terminate() == 0, server.output


def _listening_sockets(port: int) -> int:
    """How many sockets listen on ``port`` (IPv4, from /proc/net/tcp)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines
               if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A")  # 0A: LISTEN


def test_server_start_rejects_a_limit_that_cannot_work(tmp_path: Path) -> None:
    env = cli_env(COLONIES_DATA_DIR=str(tmp_path), COLONIES_HEADER_TIMEOUT="-1")
    result = run_cli("server", "start", env=env)
    assert_clean_failure(result, "COLONIES_HEADER_TIMEOUT", "at least")


def test_server_start_rejects_an_empty_pool(tmp_path: Path) -> None:
    env = cli_env(COLONIES_DATA_DIR=str(tmp_path), COLONIES_DB_POOL_SIZE="0")
    result = run_cli("server", "start", env=env)
    assert_clean_failure(result, "COLONIES_DB_POOL_SIZE")


def test_server_start_rejects_a_non_numeric_setting(tmp_path: Path) -> None:
    env = cli_env(COLONIES_DATA_DIR=str(tmp_path), COLONIES_SERVER_PORT="http")
    result = run_cli("server", "start", env=env)
    assert_clean_failure(result, "COLONIES_SERVER_PORT")


def test_sigterm_while_postgres_initialises_leaves_nothing_running(tmp_path: Path) -> None:
    """A stop requested during the first start (PostgreSQL just started, the schema being
    migrated) lets that step end, then stops the embedded PostgreSQL too, instead of dying and
    leaving it running."""
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        [*CLI, "server", "start", "--port", "0", "--host", HOST],
        env=cli_env(COLONIES_DATA_DIR=str(data_dir)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, stdin=subprocess.DEVNULL,
    )
    try:
        # PostgreSQL has just started; the server is now connecting and migrating: stop it there
        wait_until(lambda: (data_dir / "postgres" / "postmaster.pid").exists() or proc.poll() is not None,
                   60, "the embedded PostgreSQL to start")
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=CLI_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in output, output
    pidfile = data_dir / "postgres" / "postmaster.pid"
    leftover = pidfile.read_text().split()[0] if pidfile.exists() else None
    if leftover is not None:
        EmbeddedPostgres(data_dir / "postgres").stop()
    assert leftover is None, f"embedded PostgreSQL {leftover} left running after SIGTERM:\n{output}"


# -- a database that is not up yet ------------------------------------------------------------------


def _server_waiting_for(dsn: str, tmp_path: Path, wait_s: str) -> tuple[subprocess.Popen[str], int, Path]:
    port = free_port(HOST)
    tmp_path.mkdir(parents=True, exist_ok=True)
    log_path = tmp_path / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pycolonies.cli.main", "server", "start", "--port", str(port), "--host", HOST],
        env=cli_env(COLONIES_DB_URL=dsn, COLONIES_DB_WAIT=wait_s, COLONIES_DATA_DIR=str(tmp_path / "data"),
                    COLONIES_SERVER_PRVKEY=crypto.generate_private_key()),
        stdout=log_path.open("w"), stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )
    return proc, port, log_path


def test_server_start_waits_for_a_database_that_comes_up_later(tmp_path: Path) -> None:
    """A replica started beside its database, or during a failover, waits for it
    (COLONIES_DB_WAIT) instead of exiting, and serves once it answers."""
    postgres = EmbeddedPostgres(tmp_path / "pg")  # its address is known before it starts
    proc, port, log_path = _server_waiting_for(postgres.dsn, tmp_path, "120")
    try:
        wait_until(lambda: "waiting up to" in log_path.read_text(), 60, "the server to wait for the database")
        assert proc.poll() is None, log_path.read_text()
        postgres.start()
        healthy = f"http://{HOST}:{port}/health"
        wait_until(lambda: http_status(healthy) == 200 or proc.poll() is not None, 120, "the server to serve")
        assert proc.poll() is None, log_path.read_text()
        assert "the database answers" in log_path.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        postgres.stop()


def test_server_start_gives_up_on_an_unreachable_database_and_a_signal_ends_the_wait(tmp_path: Path) -> None:
    nowhere = f"postgresql://postgres@{HOST}:{free_port(HOST)}/postgres"
    no_wait, _, log_path = _server_waiting_for(nowhere, tmp_path / "a", "0")
    assert no_wait.wait(60) != 0
    assert "cannot start the server" in log_path.read_text() or "Connect call failed" in log_path.read_text()
    waiting, _, log_path = _server_waiting_for(nowhere, tmp_path / "b", "600")
    try:
        wait_until(lambda: "waiting up to" in log_path.read_text(), 60, "the server to wait for the database")
        waiting.send_signal(signal.SIGTERM)
        assert waiting.wait(30) == 0, log_path.read_text()
    finally:
        if waiting.poll() is None:
            waiting.kill()
