#!/usr/bin/env python3
"""Load benchmark for the colonies server: throughput, latency, history cost and the PostgreSQL ceiling.

Run from the repository root with the project installed (``pip install -e .``)::

    python bench/load.py                       # everything, on a private embedded PostgreSQL
    python bench/load.py --phases e2e,idle     # some phases only
    python bench/load.py --history 100000      # smaller history for the assign-cost phase
    python bench/load.py --url http://127.0.0.1:50080 --server-prvkey KEY --db-url postgresql://...

By default it starts its own embedded PostgreSQL in a temporary directory and the server as a
subprocess (``python -m pycolonies.cli.main server start``) on a free loopback port, against a fresh
database. Simulated clients speak the wire protocol directly: every request is a signed envelope
(``pycolonies.wire.signed_request``), each client keeps its own aiohttp session with keep-alive.

Phases (``--phases``, comma separated; default all, in this order):

  submit   M submitters submit ``--count`` processes as fast as they can (processes/s).
  drain    N executors drain the queue: assign (long-poll) + close (processes/s).
  e2e      submitters and executors together for ``--duration`` s; submitters keep at most
           ``--backlog`` processes outstanding; processes closed per second, submit->close latency.
  idle     one submitter, one executor already waiting in a long-poll; 500 sequential samples of
           submit -> executor receives -> close acknowledged (p50/p99 ms).
  history  assign latency for a ready process with 10^3 and with ``--history`` finished (SUCCESS)
           processes in the table (bulk-inserted with SQL); needs database access.
  pgbench  PostgreSQL's own pgbench write tps on the same PostgreSQL: the ceiling (tpcb-like, or
           ``--pgbench-mode simple-update``, which is ``-N``).

Everything it starts (server, PostgreSQL, pgbench) is stopped and its temporary directory removed
when it finishes, fails or is interrupted (Ctrl-C / SIGTERM). It only talks to 127.0.0.1 unless
``--allow-remote`` is given.

This file is not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import aiohttp
import asyncpg

from pycolonies import crypto, wire
from pycolonies.functions import func_spec

ALL_PHASES = ("submit", "drain", "e2e", "idle", "history", "pgbench")
PHASE_ALIASES = {"assign": "drain", "assign+close": "drain", "end-to-end": "e2e", "latency": "idle",
                 "ceiling": "pgbench"}
EXECUTOR_TYPE = "bench-worker"
FUNCNAME = "bench"
BENCH_DB = "colonies_bench"
PGBENCH_DB = "colonies_bench_pgbench"

# Targets for the optimised server (bench/README.md).
TARGET_E2E = 1000.0
TARGET_FRACTION = 0.2
TARGET_IDLE_P50_MS = 5.0
TARGET_IDLE_P99_MS = 20.0
TARGET_HISTORY_RATIO = 2.0


# -- small helpers ---------------------------------------------------------------------------------


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def latency_summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": ms(percentile(samples, 50)),
        "p90_ms": ms(percentile(samples, 90)),
        "p99_ms": ms(percentile(samples, 99)),
        "max_ms": ms(max(samples)) if samples else float("nan"),
    }


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def with_database(dsn: str, database: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


# -- CPU accounting (Linux /proc) ------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, cpu seconds of the process and of its children it has already reaped)."""
    table: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                raw = fh.read().decode(errors="replace")
        except OSError:
            continue
        rest = raw[raw.rfind(")") + 2:].split()
        # rest[1] = ppid; rest[11..14] = utime, stime, cutime, cstime (clock ticks). A child's time
        # moves into its parent's cutime/cstime when reaped (short-lived PostgreSQL backends).
        ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
        table[int(entry)] = (int(rest[1]), ticks / _CLK_TCK)
    return table


def tree_cpu_seconds(root_pid: int | None) -> float | None:
    """CPU seconds used so far by ``root_pid`` and all its descendants (live or reaped)."""
    if root_pid is None or not os.path.isdir("/proc"):
        return None
    table = _proc_table()
    if root_pid not in table:
        return None
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        total += table[pid][1]
        stack.extend(children.get(pid, ()))
    return total


def tree_runqueue_wait_seconds(root_pid: int | None) -> float | None:
    """Seconds the threads of ``root_pid`` (not its children) spent runnable but waiting for a CPU."""
    if root_pid is None:
        return None
    total = 0.0
    try:
        for task in os.listdir(f"/proc/{root_pid}/task"):
            with contextlib.suppress(OSError, ValueError, IndexError), \
                    open(f"/proc/{root_pid}/task/{task}/schedstat") as fh:
                total += int(fh.read().split()[1]) / 1e9
    except OSError:
        return None
    return total


def machine_busy_seconds() -> float | None:
    """CPU seconds all CPUs of the machine spent busy (not idle, not waiting for I/O) since boot."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / _CLK_TCK


def busy_percent(seconds: float = 1.0) -> float | None:
    """Percent of one core the whole machine is busy over ``seconds`` (before we start loading it)."""
    a = machine_busy_seconds()
    time.sleep(seconds)
    b = machine_busy_seconds()
    return None if a is None or b is None else round(100.0 * (b - a) / seconds, 1)


class CpuMeter:
    """CPU used during a phase by the load generator, the server (process tree), PostgreSQL, and the
    rest of the machine ("other": anything else running, which makes the figures unreliable)."""

    def __init__(self, server_pid: int | None, postgres_pid: int | None) -> None:
        self.server_pid = server_pid
        self.postgres_pid = postgres_pid

    def snapshot(self) -> dict[str, float | None]:
        own = os.times()
        return {
            "wall": time.perf_counter(),
            # this process plus reaped children of ours that are not the server (pgbench, py-spy)
            "client": own.user + own.system + own.children_user + own.children_system,
            "server": tree_cpu_seconds(self.server_pid),
            "postgres": tree_cpu_seconds(self.postgres_pid),
            "machine": machine_busy_seconds(),
            "server_runq": tree_runqueue_wait_seconds(self.server_pid),
        }

    @staticmethod
    def usage(start: dict[str, float | None], end: dict[str, float | None]) -> dict[str, float | None]:
        """Percent of one core used by each party between two snapshots (the machine has nproc*100)."""
        wall = end["wall"] - start["wall"]
        usage: dict[str, float | None] = {}
        for key in ("client", "server", "postgres", "machine", "server_runq"):
            a, b = start[key], end[key]
            usage[key] = None if a is None or b is None or wall <= 0 else round(100.0 * (b - a) / wall, 1)
        parts = [usage["client"], usage["server"], usage["postgres"]]
        if usage["machine"] is not None and all(v is not None for v in parts):
            usage["other"] = round(max(0.0, usage["machine"] - sum(parts)), 1)  # type: ignore[arg-type]
        return usage


# -- the wire client -------------------------------------------------------------------------------


class RpcFailed(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class WireClient:
    """One simulated client: its own key and its own keep-alive HTTP connection.

    ``fresh=True`` (``--client sdk``) makes every signed message unique the way the pycolonies SDK
    does, with a random ``requestnonce`` and ``requesttime`` (Unix ns); the server's replay
    protection then records each state-changing request once. ``fresh=False`` (``--client
    reference``) sends the bare messages of the reference ColonyOS clients.
    """

    def __init__(self, url: str, prvkey: str, name: str = "", fresh: bool = True) -> None:
        self.url = url.rstrip("/") + "/api"
        self.prvkey = prvkey
        self.id = crypto.derive_id(prvkey)
        self.name = name
        self.fresh = fresh
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> WireClient:
        connector = aiohttp.TCPConnector(limit=1, force_close=False, enable_cleanup_closed=True)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
        self.session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def sign(self, msg: dict[str, Any]) -> bytes:
        """The request body of ``msg`` signed with this client's key."""
        if self.fresh:
            msg = {**msg, "requestnonce": os.urandom(16).hex(), "requesttime": time.time_ns()}
        return json.dumps(wire.signed_request(msg, self.prvkey)).encode()

    async def send(self, body: bytes) -> Any:
        assert self.session is not None
        async with self.session.post(self.url, data=body) as response:
            raw = await response.read()
            status = response.status
        try:
            envelope = json.loads(raw)
        except ValueError as exc:
            raise RpcFailed(status, f"non-JSON reply: {raw[:200]!r}") from exc
        payload = wire.decode_payload(envelope.get("payload", ""))
        if envelope.get("error"):
            payload = payload or {}
            raise RpcFailed(payload.get("status", status), payload.get("message", ""))
        return payload

    async def call(self, msg: dict[str, Any]) -> Any:
        return await self.send(self.sign(msg))


# -- the environment: PostgreSQL, server, colony ---------------------------------------------------


@dataclass
class Environment:
    args: argparse.Namespace
    tempdir: Path | None = None
    embedded: Any = None
    server: subprocess.Popen | None = None
    server_log: Path | None = None
    url: str = ""
    server_prvkey: str = ""
    db_dsn: str = ""  # the database the server uses (None-able: "" when unknown)
    admin_dsn: str = ""  # a connection allowed to CREATE DATABASE (pgbench)
    postgres_pid: int | None = None

    def start(self) -> None:
        args = self.args
        if args.url:
            self.url = args.url.rstrip("/")
            self.server_prvkey = args.server_prvkey or os.environ.get("COLONIES_SERVER_PRVKEY", "")
            if not self.server_prvkey:
                raise SystemExit("--url needs the server owner key: --server-prvkey or "
                                 "COLONIES_SERVER_PRVKEY")
            self.db_dsn = args.db_url or ""
            self.admin_dsn = args.db_url or ""
            return
        self.tempdir = Path(tempfile.mkdtemp(prefix="colonies-bench-"))
        if args.db_url:
            self.db_dsn = self.admin_dsn = args.db_url
        else:
            self._start_embedded_postgres()
        self.server_prvkey = crypto.generate_private_key()
        self._start_server()

    def _start_embedded_postgres(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from server.embedded import EmbeddedPostgres
        assert self.tempdir is not None
        self.embedded = EmbeddedPostgres(self.tempdir / "pgdata",
                                         settings=getattr(self.args, "pg_settings", None))
        log(f"starting embedded PostgreSQL in {self.embedded.data_dir}")
        self.embedded.start()
        self.admin_dsn = self.embedded.dsn
        with contextlib.suppress(OSError, ValueError, IndexError):
            self.postgres_pid = int((self.embedded.data_dir / "postmaster.pid").read_text().split()[0])

        async def create() -> None:
            con = await asyncpg.connect(self.admin_dsn)
            try:
                await con.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
                await con.execute(f"CREATE DATABASE {BENCH_DB}")
            finally:
                await con.close()

        asyncio.run(create())
        self.db_dsn = with_database(self.admin_dsn, BENCH_DB)

    def _start_server(self) -> None:
        assert self.tempdir is not None
        port = free_port()
        env = dict(os.environ)
        for name in ("COLONIES_SERVER_ID", "COLONIES_SERVER_PORT", "COLONIES_SERVER_HTTP_PORT",
                     "COLONIES_SERVER_HTTP_HOST", "COLONIES_TLSCERT", "COLONIES_TLSKEY",
                     "COLONIES_SERVER_HTTP_TLS_CERT", "COLONIES_SERVER_HTTP_TLS_KEY"):
            env.pop(name, None)
        env.update({
            "COLONIES_DB_URL": self.db_dsn,
            "COLONIES_SERVER_PRVKEY": self.server_prvkey,
            "COLONIES_DATA_DIR": str(self.tempdir / "server-data"),
            "PYTHONUNBUFFERED": "1",
        })
        if self.args.workers:
            env["COLONIES_SERVER_WORKERS"] = str(self.args.workers)
        command = [sys.executable]
        if self.args.cprofile:
            command += ["-m", "cProfile", "-o", str(Path(self.args.cprofile).resolve())]
        command += ["-m", "pycolonies.cli.main", "server", "start", "--host", "127.0.0.1",
                    "--port", str(port)]
        self.server_log = self.tempdir / "server.log"
        log(f"starting the server on 127.0.0.1:{port}" + (f" (COLONIES_SERVER_WORKERS={self.args.workers})"
                                                          if self.args.workers else ""))
        with open(self.server_log, "wb") as out:
            self.server = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us only; we stop it in order
            )
        self.url = f"http://127.0.0.1:{port}"
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 90.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server is not None and self.server.poll() is not None:
                raise RuntimeError(f"the server exited with {self.server.returncode}:\n{self.server_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not become healthy in {timeout:.0f} s:\n{self.server_tail()}")

    def server_tail(self, chars: int = 3000) -> str:
        if self.server_log is None or not self.server_log.exists():
            return ""
        return self.server_log.read_text(errors="replace")[-chars:]

    @property
    def server_pid(self) -> int | None:
        return self.server.pid if self.server is not None else None

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            log("stopping the server")
            with contextlib.suppress(ProcessLookupError):
                self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait(10)
        if self.embedded is not None:
            log("stopping the embedded PostgreSQL")
            with contextlib.suppress(Exception):
                self.embedded.stop()
            self.embedded = None
        if self.tempdir is not None and not self.args.keep:
            shutil.rmtree(self.tempdir, ignore_errors=True)
        elif self.tempdir is not None:
            log(f"kept {self.tempdir}")


@dataclass
class Colony:
    name: str
    owner: WireClient
    executors: list[WireClient] = field(default_factory=list)
    submitters: list[WireClient] = field(default_factory=list)
    assign_bodies: dict[str, bytes] = field(default_factory=dict)  # per executor, per timeout
    seq: int = 0

    def spec(self, seq: int) -> dict[str, Any]:
        return func_spec(FUNCNAME, [seq, "payload"], self.name, EXECUTOR_TYPE,
                         kwargs={"size": 1}, maxexectime=-1).to_wire()

    def submit_msg(self) -> tuple[int, dict[str, Any]]:
        self.seq += 1
        return self.seq, {"msgtype": "submitfuncspecmsg", "spec": self.spec(self.seq)}

    def assign_body(self, executor: WireClient, timeout: int) -> bytes:
        """A signed assign request. Without request nonces (reference clients) the message never
        changes for an executor, so it is signed once and re-sent (the bytes would be identical)."""
        msg = {"msgtype": "assignprocessmsg", "colonyname": self.name, "timeout": timeout,
               "availablecpu": "", "availablemem": ""}
        if executor.fresh:
            return executor.sign(msg)
        key = f"{executor.id}/{timeout}"
        if key not in self.assign_bodies:
            self.assign_bodies[key] = executor.sign(msg)
        return self.assign_bodies[key]

    @staticmethod
    def close_msg(process: dict[str, Any]) -> dict[str, Any]:
        args = (process.get("spec") or {}).get("args") or []
        return {"msgtype": "closesuccessfulmsg", "processid": process["processid"],
                "out": ["done", *args[:1]]}

    async def aclose(self) -> None:
        for client in [self.owner, *self.executors, *self.submitters]:
            await client.aclose()


async def create_colony(url: str, server_prvkey: str, executors: int, submitters: int,
                        fresh: bool = True) -> Colony:
    admin = await WireClient(url, server_prvkey, fresh=fresh).open()
    colony_prvkey = crypto.generate_private_key()
    name = f"bench-{os.urandom(3).hex()}"
    try:
        await admin.call({"msgtype": "addcolonymsg",
                          "colony": {"colonyid": crypto.derive_id(colony_prvkey), "name": name}})
    finally:
        await admin.aclose()
    colony = Colony(name, await WireClient(url, colony_prvkey, "owner", fresh).open())
    for i in range(executors):
        executor = await WireClient(url, crypto.generate_private_key(), f"executor-{i}", fresh).open()
        await colony.owner.call({"msgtype": "addexecutormsg", "executor": {
            "executorid": executor.id, "executorname": executor.name, "executortype": EXECUTOR_TYPE,
            "colonyname": name}})
        await colony.owner.call({"msgtype": "approveexecutormsg", "colonyname": name,
                                 "executorname": executor.name})
        # Real executors register what they run; closes then update the function statistics.
        await executor.call({"msgtype": "addfunctionmsg", "fun": {
            "executorname": executor.name, "colonyname": name, "funcname": FUNCNAME}})
        colony.executors.append(executor)
    for i in range(submitters):
        user = await WireClient(url, crypto.generate_private_key(), f"user-{i}", fresh).open()
        await colony.owner.call({"msgtype": "addusermsg", "user": {
            "colonyname": name, "userid": user.id, "name": user.name, "email": f"{user.name}@bench",
            "phone": ""}})
        colony.submitters.append(user)
    return colony


# -- phases ----------------------------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    env: Environment
    colony: Colony
    meter: CpuMeter
    waiting: int = 0  # processes submitted by us and not yet closed
    busy: int = 0  # executors holding an assigned process (between assign reply and close ack)
    results: dict[str, Any] = field(default_factory=dict)
    db: asyncpg.Connection | None = None  # for PostgreSQL's own counters, when we may connect

    async def xacts(self) -> int | None:
        """Transactions committed or rolled back in the server's database so far (every autocommit
        statement is one). Busy backends publish their counters about once a second (idle ones
        up to 10 s late), so only differences taken under steady load are meaningful."""
        if self.db is None:
            return None
        with contextlib.suppress(Exception):
            await self.db.execute("SELECT pg_stat_clear_snapshot()")
            return await self.db.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")
        return None


def per_item(before: int | None, after: int | None, items: int) -> float | None:
    if before is None or after is None or items <= 0:
        return None
    return round((after - before) / items, 1)


SIGN_BATCH = 20_000  # signed ahead of sending, well inside the server's replay window


async def _submit_all(run: Run, count: int) -> tuple[float, list[float], dict[str, float | None]]:
    """Submit ``count`` processes from all submitters concurrently. Bodies are signed ahead, in
    batches, and only the sending is timed: the figure is the server's, not the signer's."""
    subs = run.colony.submitters
    latencies: list[float] = []
    elapsed = 0.0
    spent: dict[str, float | None] = {}  # CPU meter deltas summed over the timed windows

    async def submitter(client: WireClient, mine: list[bytes]) -> None:
        for body in mine:
            t0 = time.perf_counter()
            await client.send(body)
            latencies.append(time.perf_counter() - t0)
            run.waiting += 1

    for first in range(0, count, SIGN_BATCH):
        bodies: list[list[bytes]] = [[] for _ in subs]
        for i in range(first, min(count, first + SIGN_BATCH)):
            _, msg = run.colony.submit_msg()
            bodies[i % len(subs)].append(subs[i % len(subs)].sign(msg))
        cpu0 = run.meter.snapshot()
        start = time.perf_counter()
        await asyncio.gather(*(submitter(c, b) for c, b in zip(subs, bodies, strict=True)))
        elapsed += time.perf_counter() - start
        cpu1 = run.meter.snapshot()
        for key, value in cpu1.items():
            before = cpu0[key]
            if value is None or before is None or (key in spent and spent[key] is None):
                spent[key] = None
            else:
                spent[key] = (spent.get(key) or 0.0) + value - before
    zero = {key: 0.0 for key in spent}
    return elapsed, latencies, CpuMeter.usage(zero, spent) if spent else {}


async def phase_submit(run: Run) -> dict[str, Any]:
    count = run.args.count
    log(f"submit: {count} processes from {len(run.colony.submitters)} submitters")
    elapsed, latencies, cpu = await _submit_all(run, count)
    return {"count": count, "submitters": len(run.colony.submitters), "elapsed_s": round(elapsed, 3),
            "rate": round(count / elapsed, 1), "latency": latency_summary(latencies), "cpu": cpu}


async def _executor_loop(run: Run, executor: WireClient, timeout: int, on_closed, stop: asyncio.Event,
                         assign_lat: list[float] | None = None, close_lat: list[float] | None = None) -> None:
    while not stop.is_set():
        body = run.colony.assign_body(executor, timeout)
        t0 = time.perf_counter()
        try:
            process = await executor.send(body)
        except RpcFailed as exc:
            if exc.status in (404, 408):
                continue
            raise
        t1 = time.perf_counter()
        run.busy += 1
        try:
            await executor.call(run.colony.close_msg(process))
        finally:
            run.busy -= 1
        t2 = time.perf_counter()
        if assign_lat is not None:
            assign_lat.append(t1 - t0)
        if close_lat is not None:
            close_lat.append(t2 - t1)
        run.waiting -= 1
        on_closed(process, t2)


async def _cancel(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


async def phase_drain(run: Run) -> dict[str, Any]:
    if run.waiting <= 0:
        log(f"drain: filling the queue with {run.args.count} processes first (not timed)")
        await _submit_all(run, run.args.count)
    target = run.waiting
    log(f"drain: {len(run.colony.executors)} executors assign+close {target} processes")
    done = asyncio.Event()
    closed = 0
    assign_lat: list[float] = []
    close_lat: list[float] = []

    def on_closed(_process: dict[str, Any], _t: float) -> None:
        nonlocal closed
        closed += 1
        if closed >= target:
            done.set()

    cpu0 = run.meter.snapshot()
    start = time.perf_counter()
    tasks = [asyncio.create_task(_executor_loop(run, e, 2, on_closed, done, assign_lat, close_lat))
             for e in run.colony.executors]
    waiter = asyncio.create_task(done.wait())
    finished, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    elapsed = time.perf_counter() - start
    cpu1 = run.meter.snapshot()
    waiter.cancel()
    await _cancel(tasks)  # re-raises an executor's failure
    return {"count": closed, "executors": len(run.colony.executors), "elapsed_s": round(elapsed, 3),
            "rate": round(closed / elapsed, 1),
            "assign_latency": latency_summary(assign_lat),
            "close_latency": latency_summary(close_lat), "cpu": CpuMeter.usage(cpu0, cpu1)}


async def phase_e2e(run: Run) -> dict[str, Any]:
    duration = run.args.duration
    warmup = min(3.0, duration / 5)
    colony = run.colony
    log(f"e2e: {len(colony.submitters)} submitters + {len(colony.executors)} executors for "
        f"{duration:.0f} s (+{warmup:.0f} s warm-up), backlog <= {run.args.backlog}")
    backlog = asyncio.Semaphore(run.args.backlog)
    stop_submit = asyncio.Event()
    stop_exec = asyncio.Event()
    submitted_at: dict[int, float] = {}
    submit_times: list[float] = []
    close_times: list[float] = []
    e2e_lat: list[tuple[float, float]] = []  # (close time, latency)

    async def submitter(client: WireClient) -> None:
        while not stop_submit.is_set():
            await backlog.acquire()
            if stop_submit.is_set():
                backlog.release()
                return
            seq, msg = colony.submit_msg()
            t0 = time.perf_counter()
            submitted_at[seq] = t0
            await client.call(msg)
            submit_times.append(time.perf_counter())
            run.waiting += 1

    def on_closed(process: dict[str, Any], t: float) -> None:
        backlog.release()
        close_times.append(t)
        args = (process.get("spec") or {}).get("args") or []
        t0 = submitted_at.pop(args[0], None) if args else None
        if t0 is not None:
            e2e_lat.append((t, t - t0))

    py_spy = start_py_spy(run, duration + warmup)
    begin = time.perf_counter()
    executors = [asyncio.create_task(_executor_loop(run, e, 5, on_closed, stop_exec))
                 for e in colony.executors]
    submitters = [asyncio.create_task(submitter(s)) for s in colony.submitters]
    everything = [*executors, *submitters]

    async def sleep_or_fail(seconds: float) -> None:
        finished, _ = await asyncio.wait(everything, timeout=seconds, return_when=asyncio.FIRST_EXCEPTION)
        for task in finished:
            if task.exception() is not None:
                await _cancel(everything)

    queue_samples: list[int] = []

    async def sample_queue() -> None:
        while True:
            queue_samples.append(run.waiting - run.busy)  # submitted, not yet held by an executor
            await asyncio.sleep(0.02)

    await sleep_or_fail(warmup)
    x0 = await run.xacts()
    cpu0 = run.meter.snapshot()
    t_start = time.perf_counter()
    sampler = asyncio.create_task(sample_queue())
    await sleep_or_fail(duration)
    t_end = time.perf_counter()
    cpu1 = run.meter.snapshot()
    x1 = await run.xacts()
    await _cancel([sampler])
    stop_submit.set()
    stop_py_spy(py_spy)
    for _ in submitters:
        backlog.release()  # let blocked submitters see the stop flag
    await asyncio.gather(*submitters)
    drain_deadline = time.perf_counter() + 60
    while run.waiting > 0 and time.perf_counter() < drain_deadline:
        await asyncio.sleep(0.05)
    stop_exec.set()
    await _cancel(executors)
    window = t_end - t_start
    closed = sum(1 for t in close_times if t_start <= t < t_end)
    submitted = sum(1 for t in submit_times if t_start <= t < t_end)
    lat = [latency for t, latency in e2e_lat if t_start <= t < t_end]
    log(f"e2e: {closed} closed in {window:.1f} s (total {len(close_times)} since start "
        f"{time.perf_counter() - begin:.1f} s ago)")
    slices = max(1, int(window // 5))
    by_slice = [0] * slices
    for t in close_times:
        if t_start <= t < t_end:
            by_slice[min(slices - 1, int((t - t_start) / (window / slices)))] += 1
    rate_over_time = [round(n / (window / slices), 1) for n in by_slice]
    return {"duration_s": round(window, 2), "executors": len(colony.executors),
            "submitters": len(colony.submitters), "backlog": run.args.backlog, "closed": closed,
            "rate": round(closed / window, 1), "submit_rate": round(submitted / window, 1),
            "rate_over_time": rate_over_time,
            "db_xacts_per_process": per_item(x0, x1, closed),
            "queue_empty_pct": round(100.0 * sum(1 for q in queue_samples if q <= 0) / len(queue_samples), 1)
            if queue_samples else None,
            "queue_p50": percentile([float(q) for q in queue_samples], 50),
            "submit_to_close": latency_summary(lat), "cpu": CpuMeter.usage(cpu0, cpu1)}


async def phase_idle(run: Run) -> dict[str, Any]:
    samples = run.args.idle_samples
    colony = run.colony
    executor, submitter = colony.executors[0], colony.submitters[0]
    log(f"idle: {samples} sequential samples, one executor waiting in a long-poll")
    received: dict[int, float] = {}
    closed: dict[int, float] = {}
    events: dict[int, asyncio.Event] = {}
    stop = asyncio.Event()

    def on_closed(process: dict[str, Any], t: float) -> None:
        seq = process["spec"]["args"][0]
        closed[seq] = t
        if seq in events:
            events[seq].set()

    async def executor_loop() -> None:
        while not stop.is_set():
            try:
                process = await executor.send(colony.assign_body(executor, 10))
            except RpcFailed as exc:
                if exc.status in (404, 408):
                    continue
                raise
            received[process["spec"]["args"][0]] = time.perf_counter()
            await executor.call(colony.close_msg(process))
            run.waiting -= 1
            on_closed(process, time.perf_counter())

    task = asyncio.create_task(executor_loop())
    total: list[float] = []
    submit_rtt: list[float] = []
    to_executor: list[float] = []
    close_rtt: list[float] = []
    mismatches = 0
    cpu0 = run.meter.snapshot()
    try:
        await asyncio.sleep(0.3)  # the executor is in its long-poll
        for i in range(samples + 10):
            seq, msg = colony.submit_msg()
            body_submit = submitter.sign(msg)
            events[seq] = asyncio.Event()
            t0 = time.perf_counter()
            process = await submitter.send(body_submit)
            t1 = time.perf_counter()
            run.waiting += 1
            waiter = asyncio.create_task(events[seq].wait())
            await asyncio.wait([waiter, task], timeout=10, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # re-raises the executor's failure
            if not events[seq].is_set():
                raise RuntimeError("idle: the executor did not receive a submitted process within 10 s")
            del events[seq]
            observed = await submitter.call({"msgtype": "getprocessmsg", "processid": process["processid"]})
            if observed.get("state") != wire.SUCCESS:
                mismatches += 1
            if i >= 10:  # the first few warm up connections and caches
                total.append(closed[seq] - t0)
                submit_rtt.append(t1 - t0)
                to_executor.append(received[seq] - t0)
                close_rtt.append(closed[seq] - received[seq])
            await asyncio.sleep(run.args.idle_gap)  # let the executor re-enter its long-poll
    finally:
        stop.set()
        await _cancel([task])
    cpu1 = run.meter.snapshot()
    return {"samples": len(total), "cpu": CpuMeter.usage(cpu0, cpu1),
            "submit_to_close_ack": latency_summary(total),
            "submit_rtt": latency_summary(submit_rtt), "submit_to_executor": latency_summary(to_executor),
            "close_rtt": latency_summary(close_rtt), "not_success_on_read": mismatches}


_HISTORY_SQL = """
INSERT INTO processes (process_id, colony_name, executor_type, state, assigned_executor_id, initiator_id,
                       initiator_name, funcname, priority_time, submission_time, start_time, end_time,
                       spec, output)
SELECT encode(sha256(convert_to($1 || g::text, 'UTF8')), 'hex'), $2, $3, 2, $4, $5, $6, $7,
       (extract(epoch FROM t.submitted) * 1e9)::bigint, t.submitted,
       t.submitted + interval '2 ms', t.submitted + interval '5 ms',
       $8::jsonb, '["done"]'::jsonb
  FROM generate_series($9::bigint, $10::bigint) AS g,
       LATERAL (SELECT now() - interval '30 days' + g * interval '1 ms' AS submitted) AS t
"""


async def _top_up_history(con: asyncpg.Connection, run: Run, size: int) -> float:
    colony = run.colony
    have = await con.fetchval(
        "SELECT count(*) FROM processes WHERE colony_name = $1 AND state >= 2", colony.name)
    start = time.perf_counter()
    spec = json.dumps({**colony.spec(0), "env": {}})
    chunk = 250_000
    first = have + 1
    while first <= size:
        last = min(size, first + chunk - 1)
        await con.execute(_HISTORY_SQL, f"history-{colony.name}-", colony.name, EXECUTOR_TYPE,
                          colony.executors[0].id, colony.submitters[0].id, colony.submitters[0].name,
                          FUNCNAME, spec, first, last)
        if size - have > chunk:
            log(f"history: {last:,} / {size:,} finished processes")
        first = last + 1
    await con.execute("VACUUM ANALYZE processes")
    return time.perf_counter() - start


async def _measure_assign(run: Run, samples: int) -> dict[str, Any]:
    colony = run.colony
    executor, submitter = colony.executors[0], colony.submitters[0]
    latencies: list[float] = []
    for i in range(samples + 20):
        _, msg = colony.submit_msg()
        await submitter.call(msg)
        body = colony.assign_body(executor, -1)  # a single attempt: no long-poll in the figure
        t0 = time.perf_counter()
        process = await executor.send(body)
        latency = time.perf_counter() - t0
        await executor.call(colony.close_msg(process))
        if i >= 20:
            latencies.append(latency)
    return latency_summary(latencies)


async def phase_history(run: Run) -> dict[str, Any]:
    if not run.env.db_dsn:
        return {"skipped": "needs database access (--db-url) to bulk-insert the history"}
    if run.waiting > 0:
        return {"skipped": f"{run.waiting} processes of this run are still waiting"}
    sizes = sorted({1000, run.args.history})
    con = await asyncpg.connect(run.env.db_dsn)
    results: dict[str, Any] = {}
    try:
        # Only this run's colony: start from exactly 10^3 finished processes of ours.
        await con.execute("DELETE FROM processes WHERE colony_name = $1 AND state >= 2", run.colony.name)
        for size in sizes:
            log(f"history: {size:,} finished processes in the table")
            insert_s = await _top_up_history(con, run, size)
            total_rows = await con.fetchval("SELECT count(*) FROM processes")
            log(f"history: measuring assign latency ({run.args.history_samples} samples)")
            cpu0 = run.meter.snapshot()
            summary = await _measure_assign(run, run.args.history_samples)
            cpu1 = run.meter.snapshot()
            results[str(size)] = {"finished": size, "table_rows": total_rows,
                                  "insert_s": round(insert_s, 1), "assign": summary,
                                  "cpu": CpuMeter.usage(cpu0, cpu1)}
    finally:
        await con.close()
    small, large = results[str(sizes[0])]["assign"], results[str(sizes[-1])]["assign"]
    return {"sizes": results,
            "ratio_p50": round(large["p50_ms"] / small["p50_ms"], 2),
            "ratio_p99": round(large["p99_ms"] / small["p99_ms"], 2)}


async def phase_pgbench(run: Run) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres._commands import POSTGRES_BIN_PATH
        except ImportError:
            POSTGRES_BIN_PATH = None  # noqa: N806
    binary = POSTGRES_BIN_PATH / "pgbench" if POSTGRES_BIN_PATH is not None else None
    if binary is None or not binary.exists():
        log(f"pgbench: not found ({binary}); skipping the ceiling")
        return {"skipped": f"pgbench binary missing ({binary})"}
    if not run.env.admin_dsn:
        return {"skipped": "needs database access (--db-url) to create the pgbench database"}
    admin = await asyncpg.connect(run.env.admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {PGBENCH_DB}")
        await admin.execute(f"CREATE DATABASE {PGBENCH_DB}")
    finally:
        await admin.close()
    parts = urlsplit(run.env.admin_dsn)
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = parts.password
    query = parse_qs(parts.query)  # the embedded PostgreSQL is reached through its socket directory
    host = parts.hostname or query.get("host", ["127.0.0.1"])[0]
    port = parts.port or int(query.get("port", ["5432"])[0])
    conn = ["-h", host, "-p", str(port), "-U", parts.username or "postgres"]
    args = run.args
    try:
        log(f"pgbench: -i -s {args.pgbench_scale}")
        await _run_tool([str(binary), "-i", "-q", "-s", str(args.pgbench_scale), *conn, PGBENCH_DB], env)
        mode = getattr(args, "pgbench_mode", "tpcb-like")
        log(f"pgbench: -c {args.pgbench_clients} -j {args.pgbench_threads} -T {args.pgbench_time} "
            f"({mode})")
        cpu0 = run.meter.snapshot()
        output = await _run_tool([str(binary), "-b", mode, "-c", str(args.pgbench_clients),
                                  "-j", str(args.pgbench_threads), "-T", str(args.pgbench_time),
                                  *conn, PGBENCH_DB], env)
        cpu1 = run.meter.snapshot()
    finally:
        with contextlib.suppress(Exception):
            admin = await asyncpg.connect(run.env.admin_dsn)
            await admin.execute(f"DROP DATABASE IF EXISTS {PGBENCH_DB} WITH (FORCE)")
            await admin.close()
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", output) or \
        re.search(r"tps = ([0-9.]+)", output)
    if not match:
        return {"skipped": f"could not read tps from pgbench output:\n{output[-500:]}"}
    usage = CpuMeter.usage(cpu0, cpu1)  # "client" is pgbench itself here
    usage.pop("server", None)
    return {"tps": round(float(match.group(1)), 1), "mode": mode, "scale": args.pgbench_scale,
            "clients": args.pgbench_clients, "threads": args.pgbench_threads,
            "seconds": args.pgbench_time, "cpu": usage}


async def _run_tool(command: list[str], env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await process.communicate()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    text = out.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed ({process.returncode}):\n{text[-2000:]}")
    return text


# -- py-spy (optional profile of the server during e2e) --------------------------------------------


def start_py_spy(run: Run, seconds: float) -> subprocess.Popen | None:
    out = run.args.py_spy
    if not out or run.env.server_pid is None:
        return None
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(binary).exists():
        log("py-spy not found (pip install py-spy); not profiling")
        return None
    fmt = "raw" if out.endswith((".txt", ".folded", ".collapsed")) else \
        "speedscope" if out.endswith(".json") else "flamegraph"
    command = [binary, "record", "-o", out, "-f", fmt, "-r", str(run.args.py_spy_rate), "--subprocesses",
               "-d", str(int(seconds) + 1), "--pid", str(run.env.server_pid)]
    if run.args.py_spy_idle:
        command.append("--idle")
    if run.args.py_spy_gil:
        command.append("--gil")
    log(f"py-spy: recording the server to {out}")
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_py_spy(process: subprocess.Popen | None) -> None:
    if process is None:
        return
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    if process.returncode != 0:
        log(f"py-spy failed ({process.returncode}): {err.decode(errors='replace')[-500:]}")


# -- driver and report -----------------------------------------------------------------------------

PHASES = {"submit": phase_submit, "drain": phase_drain, "e2e": phase_e2e, "idle": phase_idle,
          "history": phase_history, "pgbench": phase_pgbench}


async def run_phases(args: argparse.Namespace, env: Environment) -> dict[str, Any]:
    log(f"creating a colony with {args.executors} executors and {args.submitters} submitters")
    colony = await create_colony(env.url, env.server_prvkey, args.executors, args.submitters,
                                 fresh=args.client == "sdk")
    run = Run(args, env, colony, CpuMeter(env.server_pid, env.postgres_pid))
    if env.db_dsn:
        with contextlib.suppress(Exception):
            run.db = await asyncpg.connect(env.db_dsn)
    idle_load = await asyncio.to_thread(busy_percent, 1.0)
    run.results["preflight_busy_pct"] = idle_load
    if idle_load is not None and idle_load > 20:
        log(f"WARNING: the machine is already {idle_load:.0f}% busy (of {os.cpu_count()} x 100%) before "
            "the benchmark starts; the figures will be lower than on a quiet machine")
    try:
        for name in args.phases:
            result = await PHASES[name](run)
            run.results[name] = result
            log(f"{name}: {json.dumps(result)}")
    finally:
        # On failure or Ctrl-C, stop the simulated clients of the interrupted phase first.
        current = asyncio.current_task()
        leftovers = [task for task in asyncio.all_tasks() if task is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        await colony.aclose()
        if run.db is not None:
            with contextlib.suppress(Exception):
                await run.db.close()
    return run.results


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        text = f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.2f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text}{unit}"


def _cpu(cpu: dict[str, Any] | None) -> str:
    if not cpu:
        return ""
    names = {"client": "client", "server": "server", "postgres": "pg", "other": "other"}
    parts = [f"{label} {cpu[key]:.0f}" for key, label in names.items() if cpu.get(key) is not None]
    text = "CPU% " + "/".join(parts) if parts else ""
    if cpu.get("server_runq") is not None:
        text += f", server runq {cpu['server_runq']:.0f}%"
    return text


def _xacts(r: dict[str, Any]) -> str:
    value = r.get("db_xacts_per_process")
    return "" if value is None else f"~{value:g} db xacts/process; "


def _check(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    rows: list[tuple[str, str, str, str]] = []
    r = results.get("submit")
    if r:
        rows.append(("submit", f"{r['submitters']} submitters, {r['count']:,} processes",
                     f"{_fmt(r['rate'])} processes/s",
                     f"p50 {_fmt(r['latency']['p50_ms'])} ms, p99 {_fmt(r['latency']['p99_ms'])} ms; "
                     f"{_xacts(r)}{_cpu(r['cpu'])}"))
    r = results.get("drain")
    if r:
        rows.append(("assign+close", f"{r['executors']} executors drain {r['count']:,}",
                     f"{_fmt(r['rate'])} processes/s",
                     f"assign p50 {_fmt(r['assign_latency']['p50_ms'])} ms, close p50 "
                     f"{_fmt(r['close_latency']['p50_ms'])} ms; {_xacts(r)}{_cpu(r['cpu'])}"))
    r = results.get("e2e")
    e2e_rate = r["rate"] if r else None
    if r:
        rows.append(("end-to-end", f"{r['submitters']} sub + {r['executors']} exec, {r['duration_s']:.0f} s",
                     f"{_fmt(r['rate'])} processes/s",
                     f"submit->close p50 {_fmt(r['submit_to_close']['p50_ms'])} ms, p99 "
                     f"{_fmt(r['submit_to_close']['p99_ms'])} ms; {_xacts(r)}{_cpu(r['cpu'])}; target >= "
                     f"{TARGET_E2E:,.0f}/s: {_check(r['rate'] >= TARGET_E2E)}"))
    r = results.get("idle")
    if r:
        t = r["submit_to_close_ack"]
        rows.append(("idle latency", f"{r['samples']} sequential samples",
                     f"p50 {_fmt(t['p50_ms'])} ms, p99 {_fmt(t['p99_ms'])} ms",
                     f"submit rtt p50 {_fmt(r['submit_rtt']['p50_ms'])} ms, to executor p50 "
                     f"{_fmt(r['submit_to_executor']['p50_ms'])} ms, close rtt p50 "
                     f"{_fmt(r['close_rtt']['p50_ms'])} ms; {_cpu(r.get('cpu'))}; target p50 <= "
                     f"{TARGET_IDLE_P50_MS:g} / p99 <= "
                     f"{TARGET_IDLE_P99_MS:g}: "
                     f"{_check(t['p50_ms'] <= TARGET_IDLE_P50_MS and t['p99_ms'] <= TARGET_IDLE_P99_MS)}"))
    r = results.get("history")
    if r and "skipped" not in r:
        for size, s in r["sizes"].items():
            rows.append((f"assign @ {int(size):,}", f"{s['finished']:,} finished ({s['table_rows']:,} rows)",
                         f"p50 {_fmt(s['assign']['p50_ms'])} ms, p99 {_fmt(s['assign']['p99_ms'])} ms",
                         f"history inserted in {s['insert_s']} s; {_cpu(s.get('cpu'))}"))
        rows.append(("history ratio", "largest / 10^3", f"p50 x{r['ratio_p50']}, p99 x{r['ratio_p99']}",
                     f"target <= x{TARGET_HISTORY_RATIO:g}: "
                     f"{_check(r['ratio_p50'] <= TARGET_HISTORY_RATIO)}"))
    elif r:
        rows.append(("history", "", "skipped", r["skipped"]))
    r = results.get("pgbench")
    if r and "skipped" not in r:
        rows.append(("pgbench ceiling", f"{r.get('mode', 'tpcb-like')} -s {r['scale']} -c {r['clients']} "
                     f"-j {r['threads']} -T {r['seconds']}", f"{_fmt(r['tps'])} tps", _cpu(r.get("cpu"))))
        if e2e_rate is not None:
            fraction = e2e_rate / r["tps"] if r["tps"] else float("nan")
            results["e2e_fraction_of_pgbench"] = round(fraction, 3)
            rows.append(("e2e / pgbench", "end-to-end processes/s / pgbench tps", f"{fraction:.3f}",
                         f"target >= {TARGET_FRACTION:g}: {_check(fraction >= TARGET_FRACTION)}"))
    elif r:
        rows.append(("pgbench", "", "skipped", r["skipped"]))
    headers = ("phase", "setup", "result", "notes")
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    widths[3] = len(headers[3])  # notes run free
    lines = [
        f"colonies load benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"{args.client} clients"
        + (f", COLONIES_SERVER_WORKERS={args.workers}" if args.workers else ""),
        " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
        "-+-".join("-" * w for w in widths),
    ]
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.append(f"CPU% = percent of one core (the machine has {os.cpu_count()} x 100%) used during the "
                 "phase by "
                 "client (this load generator, pgbench), server (process tree), pg (PostgreSQL), "
                 "other (everything else on the machine); server runq = percent of the time the server "
                 "was ready to run but waiting for a CPU.")
    busy = results.get("preflight_busy_pct")
    noisy = [name for name, r in results.items() if isinstance(r, dict)
             and ((r.get("cpu") or {}).get("other") or 0) > 15]
    noisy += [f"history@{size}" for size, s in (results.get("history") or {}).get("sizes", {}).items()
              if ((s.get("cpu") or {}).get("other") or 0) > 15]
    if (busy is not None and busy > 20) or noisy:
        lines.append(f"WARNING: other processes were using the CPU (before start: {_fmt(busy, '%')}; during: "
                     f"{', '.join(noisy) or '-'}); rerun on a quiet machine for reliable figures.")
    return "\n".join(lines)


def add_environment_options(parser: argparse.ArgumentParser) -> None:
    """The options of the other benchmarks (workflows, files) that choose their environment."""
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument("--server-prvkey", help="the server owner key (with --url)")
    parser.add_argument("--db-url", help="PostgreSQL for the server this starts (default: embedded)")
    parser.add_argument("--workers", type=int, default=0, help="server worker processes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load benchmark for the colonies server (see the module docstring).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--executors", type=int, default=8, help="approved executors")
    parser.add_argument("--submitters", type=int, default=4, help="submitting users")
    parser.add_argument("--count", type=int, default=5000, help="processes in the submit and drain phases")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the end-to-end phase")
    parser.add_argument("--backlog", type=int, default=64,
                        help="end-to-end: most processes submitted and not yet closed")
    parser.add_argument("--idle-samples", type=int, default=500, help="samples of the idle-latency phase")
    parser.add_argument("--idle-gap", type=float, default=0.02,
                        help="idle phase: pause (s) between samples so the executor is back in its long-poll")
    parser.add_argument("--history", type=int, default=1_000_000,
                        help="finished processes for the second assign-cost measurement")
    parser.add_argument("--history-samples", type=int, default=300, help="assign samples per history size")
    parser.add_argument("--phases", default=",".join(ALL_PHASES),
                        help=f"comma list of phases: {', '.join(ALL_PHASES)}")
    parser.add_argument("--client", choices=("sdk", "reference"), default="sdk",
                        help="sdk: every signed message carries requestnonce + requesttime like the "
                             "pycolonies SDK (replay-protected, never re-sent); reference: bare messages "
                             "like the reference ColonyOS clients (assign requests signed once, re-sent)")
    parser.add_argument("--workers", type=int, default=0,
                        help="set COLONIES_SERVER_WORKERS for the server subprocess (0: leave unset)")
    parser.add_argument("--pgbench-scale", type=int, default=1, help="pgbench -i scale factor")
    parser.add_argument("--pgbench-clients", type=int, default=8, help="pgbench -c")
    parser.add_argument("--pgbench-threads", type=int, default=2, help="pgbench -j")
    parser.add_argument("--pgbench-time", type=int, default=10, help="pgbench -T (seconds)")
    parser.add_argument("--pgbench-mode", default="tpcb-like", choices=("tpcb-like", "simple-update"),
                        help="pgbench -b: simple-update is -N (no branch/teller updates)")
    parser.add_argument("--url", help="benchmark a running server (e.g. http://127.0.0.1:50080) instead")
    parser.add_argument("--server-prvkey",
                        help="with --url: the server owner key (or COLONIES_SERVER_PRVKEY)")
    parser.add_argument("--db-url", help="PostgreSQL URL: the server's database (history, pgbench phases); "
                                         "without --url the started server uses it instead of an "
                                         "embedded one")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow --url/--db-url hosts other than loopback")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the results as JSON to FILE ('-' for stdout)")
    parser.add_argument("--py-spy", metavar="FILE",
                        help="profile the server with py-spy during the e2e phase (.svg flamegraph, "
                             ".txt collapsed stacks, .json speedscope)")
    parser.add_argument("--py-spy-rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--py-spy-idle", action="store_true", help="py-spy: include idle (waiting) samples")
    parser.add_argument("--py-spy-gil", action="store_true",
                        help="py-spy: only samples holding the GIL (Python work; leaves out syscalls such as "
                             "socket send() and time spent preempted inside them)")
    parser.add_argument("--cprofile", metavar="FILE", help="run the server under cProfile, stats to FILE")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (server log, data)")
    args = parser.parse_args(argv)
    phases = []
    for name in (p.strip().lower() for p in args.phases.split(",") if p.strip()):
        name = PHASE_ALIASES.get(name, name)
        if name not in PHASES:
            parser.error(f"unknown phase {name!r}; choose from {', '.join(ALL_PHASES)}")
        if name not in phases:
            phases.append(name)
    args.phases = [p for p in ALL_PHASES if p in phases]  # always in the documented order
    if args.executors < 1 or args.submitters < 1:
        parser.error("--executors and --submitters must be at least 1")
    if args.history < 1000:
        parser.error("--history must be at least 1000")
    if not args.allow_remote:
        for option in ("url", "db_url"):
            value = getattr(args, option)
            if value and not is_loopback(urlsplit(value).hostname or ""):
                parser.error(f"--{option.replace('_', '-')} is not a loopback address; pass --allow-remote")
    return args


def sigterm_interrupts() -> None:
    """SIGTERM stops a benchmark as Ctrl-C does, so that it cleans up what it started."""

    def terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = Environment(args)
    sigterm_interrupts()
    status = 0
    try:
        env.start()
        results = asyncio.run(run_phases(args, env))
        text = report(results, args)
        print(text, flush=True)
        results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
        results["options"] = {k: v for k, v in vars(args).items() if k not in ("server_prvkey",)}
        if args.json == "-":
            print(json.dumps(results, indent=2))
        elif args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
            log(f"results written to {args.json}")
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    except Exception as exc:
        log(f"failed: {type(exc).__name__}: {exc}")
        tail = env.server_tail(2000)
        if tail:
            log(f"server log (tail):\n{tail}")
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # finish cleaning up even on a second Ctrl-C
        env.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return status


if __name__ == "__main__":
    sys.exit(main())
