#!/usr/bin/env python3
"""Server throughput with the load spread over several processes, and what each process costs.

    python bench/throughput.py                     # 2 load processes, 8 executors, 4 submitters
    python bench/throughput.py --load-procs 3 --duration 30 --workers 2 --py-spy /tmp/server.txt

Unlike ``load.py``'s end-to-end phase (one asyncio process drives every simulated client, and at
~300 processes/s it is itself a third of a core), this splits the submitters and the executors
round robin over ``--load-procs`` processes, so the load generator is not what limits the rate.
It speaks the reference protocol by default (``--client reference``: submitfuncspecmsg,
assignprocessmsg with a long-poll, closesuccessfulmsg, bare messages as the Go and Python
reference clients send them); ``--client sdk`` adds the SDK's requestnonce/requesttime.

It starts its own embedded PostgreSQL with ``pg_stat_statements`` (or uses ``--db-url``, where the
extension must be loadable for the statement figures), the server as a subprocess, and reports for
the measured window:

- processes closed per second, the rate per 5 s slice, and submit -> close latency;
- CPU seconds per 1,000 processes of the server (process tree), PostgreSQL (all backends), the
  load processes, and the rest of the machine;
- statements (= client/server round trips: asyncpg sends one Bind/Execute/Sync per statement,
  ``BEGIN``/``COMMIT`` count as statements) and transactions per process, and the statements
  that make them up, with their execution time in PostgreSQL;
- the server's own time per request type (from its ``/metrics`` histograms) beside the time the
  load processes saw, so an assign+close cycle splits into network/queueing, server Python and
  PostgreSQL;
- then PostgreSQL's ``pgbench -N`` (simple-update: ``--pgbench-mode``) on the same PostgreSQL,
  and the end-to-end rate as a fraction of its tps.

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import (  # noqa: E402
    EXECUTOR_TYPE,
    FUNCNAME,
    CpuMeter,
    Environment,
    RpcFailed,
    WireClient,
    busy_percent,
    create_colony,
    latency_summary,
    log,
    machine_busy_seconds,
    phase_pgbench,
    sigterm_interrupts,
    start_py_spy,
    stop_py_spy,
    tree_cpu_seconds,
)

from pycolonies.functions import func_spec  # noqa: E402

PG_SETTINGS = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all",
               "pg_stat_statements.max": "2000"}
EXECUTOR_TIMEOUT_S = 5  # the executors' long-poll


# -- one load process ------------------------------------------------------------------------------


@dataclass
class Share:
    """What one load process runs: its clients' keys, and the run's clock (monotonic, shared by
    every process of the machine)."""

    url: str
    colony: str
    fresh: bool
    executors: list[tuple[str, str]]  # (prvkey, name)
    submitters: list[tuple[str, str]]
    submit_until: float
    drain_until: float
    backlog: int


def load_process(share: Share, outstanding: Any, out: Any) -> None:
    """Entry point of a load process: run its clients, then send its results down ``out``."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    try:
        result = asyncio.run(_run_share(share, outstanding))
    except Exception as exc:  # reported to the parent, which fails the run with it
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result["cpu_s"] = sum(os.times()[:2])
    out.send(result)
    out.close()


async def _run_share(share: Share, outstanding: Any) -> dict[str, Any]:
    executors = [await WireClient(share.url, k, n, share.fresh).open() for k, n in share.executors]
    submitters = [await WireClient(share.url, k, n, share.fresh).open() for k, n in share.submitters]
    closes: list[float] = []  # monotonic time of each close acknowledged
    latency: list[tuple[float, float]] = []  # (close time, submit -> close seconds)
    assign_s: list[tuple[float, float]] = []
    close_s: list[tuple[float, float]] = []
    submit_s: list[tuple[float, float]] = []
    seq = 0

    async def submitter(client: WireClient) -> None:
        nonlocal seq
        while time.monotonic() < share.submit_until:
            if outstanding.value >= share.backlog:  # closes happen in every load process: poll
                await asyncio.sleep(0.002)
                continue
            with outstanding.get_lock():
                outstanding.value += 1
            seq += 1
            t0 = time.monotonic()
            spec = func_spec(FUNCNAME, [seq, t0], share.colony, EXECUTOR_TYPE, kwargs={"size": 1},
                             maxexectime=-1).to_wire()
            await client.call({"msgtype": "submitfuncspecmsg", "spec": spec})
            submit_s.append((time.monotonic(), time.monotonic() - t0))

    async def executor(client: WireClient) -> None:
        msg = {"msgtype": "assignprocessmsg", "colonyname": share.colony, "timeout": EXECUTOR_TIMEOUT_S,
               "availablecpu": "", "availablemem": ""}
        fixed = None if client.fresh else client.sign(msg)  # the reference clients re-send the same bytes
        while True:
            now = time.monotonic()
            if now >= share.drain_until or (now >= share.submit_until and outstanding.value <= 0):
                return
            t0 = time.monotonic()
            try:
                process = await client.send(fixed if fixed is not None else client.sign(msg))
            except RpcFailed as exc:
                if exc.status in (404, 408):
                    continue
                raise
            t1 = time.monotonic()
            args = (process.get("spec") or {}).get("args") or [0, t1]
            await client.call({"msgtype": "closesuccessfulmsg", "processid": process["processid"],
                               "out": ["done", args[0]]})
            t2 = time.monotonic()
            with outstanding.get_lock():
                outstanding.value -= 1
            closes.append(t2)
            latency.append((t2, t2 - float(args[1])))
            assign_s.append((t2, t1 - t0))
            close_s.append((t2, t2 - t1))

    try:
        tasks = [asyncio.create_task(executor(c)) for c in executors]
        tasks += [asyncio.create_task(submitter(c)) for c in submitters]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for client in [*executors, *submitters]:
            await client.aclose()
    return {"closes": closes, "latency": latency, "assign": assign_s, "close": close_s, "submit": submit_s}


# -- the parent: environment, window, measurements -------------------------------------------------


async def statement_stats(con: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await con.fetch(
        """SELECT s.query, s.calls, s.total_exec_time, s.total_plan_time, s.rows, s.wal_bytes, s.toplevel
             FROM pg_stat_statements s
            WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND s.query NOT LIKE '%pg_stat_statements%' AND s.query NOT LIKE '%pg_stat_database%'""")
    return [dict(r) for r in rows]


_SERIES = re.compile(r'^colonies_request_duration_seconds_(sum|count)\{payloadtype="([^"]+)"\} (\S+)$')


async def server_times(url: str) -> dict[str, dict[str, float]]:
    """payloadtype -> {sum, count} of the server's request-duration histogram (this worker's)."""
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        text = await response.text()
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = _SERIES.match(line)
        if match:
            out.setdefault(match.group(2), {})[match.group(1)] = float(match.group(3))
    return out


def _short(sql: str, width: int = 90) -> str:
    lines = [line.strip() for line in sql.splitlines() if line.strip() and not line.strip().startswith("--")]
    text = " ".join(lines) or sql.strip().splitlines()[0]
    return text if len(text) <= width else text[: width - 3] + "..."


def _window(samples: list[tuple[float, float]], start: float, end: float) -> list[float]:
    return [value for t, value in samples if start <= t < end]


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


def _cpu(pids: list[int]) -> float | None:
    values = [tree_cpu_seconds(pid) for pid in pids]
    return None if any(v is None for v in values) else sum(values)  # type: ignore[arg-type]


async def measure(args: argparse.Namespace, env: Environment) -> dict[str, Any]:
    colony = await create_colony(env.url, env.server_prvkey, args.executors, args.submitters,
                                 fresh=args.client == "sdk")
    await colony.aclose()
    db = await asyncpg.connect(env.db_dsn) if env.db_dsn else None
    statements_ok = False
    if db is not None:
        try:
            await db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await db.fetchval("SELECT count(*) FROM pg_stat_statements")
            statements_ok = True
        except asyncpg.PostgresError as exc:
            log(f"pg_stat_statements unavailable ({exc}); no statement figures")
    preflight = await asyncio.to_thread(busy_percent, 1.0)
    if preflight is not None and preflight > 20:
        log(f"WARNING: the machine is already {preflight:.0f}% busy before the run")
    start_at = time.monotonic() + 1.5  # the load processes are up by then
    window_start = start_at + args.warmup
    submit_until = window_start + args.duration
    share_args = dict(url=env.url, colony=colony.name, fresh=args.client == "sdk",
                      submit_until=submit_until, drain_until=submit_until + 60,
                      backlog=args.backlog)
    ctx = multiprocessing.get_context("spawn")
    outstanding = ctx.Value("i", 0)
    keys = [[(c.prvkey, c.name) for c in clients] for clients in (colony.executors, colony.submitters)]
    shares = [Share(executors=e, submitters=s, **share_args)
              for e, s in zip(_split(keys[0], args.load_procs), _split(keys[1], args.load_procs),
                              strict=True)]
    pipes, procs = [], []
    for share in shares:
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=load_process, args=(share, outstanding, send), daemon=True)
        proc.start()
        send.close()
        pipes.append(receive)
        procs.append(proc)
    log(f"{args.load_procs} load processes: {args.executors} executors and {args.submitters} submitters, "
        f"{args.warmup:.0f} s warm-up, {args.duration:.0f} s measured, backlog <= {args.backlog}")
    await asyncio.sleep(max(0.0, window_start - time.monotonic()))
    py_spy = start_py_spy(_PySpyRun(args, env), args.duration)
    pids = [p.pid for p in procs if p.pid is not None]
    meter = CpuMeter(env.server_pid, env.postgres_pid)
    if statements_ok:
        await db.execute("SELECT pg_stat_statements_reset()")
    times0 = await server_times(env.url)
    cpu0, load0 = meter.snapshot(), _cpu(pids)
    await asyncio.sleep(max(0.0, submit_until - time.monotonic()))
    cpu1, load1 = meter.snapshot(), _cpu(pids)
    window_end = time.monotonic()
    times1 = await server_times(env.url)
    stats = await statement_stats(db) if statements_ok else []
    stop_py_spy(py_spy)
    results = [await asyncio.to_thread(pipe.recv) for pipe in pipes]
    for proc in procs:
        proc.join(30)
    failures = [r["error"] for r in results if "error" in r]
    if failures:
        raise RuntimeError(f"a load process failed: {failures[0]}")
    if db is not None:
        await db.close()
    return summarise(args, results, (window_start, window_end), (cpu0, cpu1), (load0, load1),
                     stats, (times0, times1))


@dataclass
class _PySpyRun:  # what load.start_py_spy reads
    args: argparse.Namespace
    env: Environment


def summarise(args: argparse.Namespace, results: list[dict[str, Any]], window: tuple[float, float],
              cpu: tuple[dict, dict], load: tuple[float | None, float | None],
              stats: list[dict[str, Any]],
              times: tuple[dict, dict]) -> dict[str, Any]:
    start, end = window
    seconds = end - start
    closes = sorted(t for r in results for t in r["closes"] if start <= t < end)
    closed = len(closes)
    out: dict[str, Any] = {"closed": closed, "seconds": round(seconds, 2),
                           "rate": round(closed / seconds, 1) if seconds > 0 else None}
    slices = max(1, int(seconds // 5))
    counts = [0] * slices
    for t in closes:
        counts[min(slices - 1, int((t - start) / (seconds / slices)))] += 1
    out["rate_per_slice"] = [round(n / (seconds / slices), 1) for n in counts]
    for key in ("latency", "assign", "close", "submit"):
        out[f"{key}_client"] = latency_summary(_window([s for r in results for s in r[key]], start, end))
    usage = CpuMeter.usage(*cpu)
    load_cpu = None if None in load else round(100.0 * (load[1] - load[0]) / seconds, 1)  # type: ignore[operator]
    usage["client"] = load_cpu
    if None not in (usage.get("machine"), load_cpu, usage.get("server"), usage.get("postgres")):
        usage["other"] = round(max(0.0, usage["machine"] - load_cpu - usage["server"] - usage["postgres"]), 1)
    out["cpu_pct"] = usage
    per_1000 = 1000.0 / closed if closed else 0.0
    out["cpu_s_per_1000"] = {
        key: round(usage[key] / 100.0 * seconds * per_1000, 2) if usage.get(key) is not None else None
        for key in ("server", "postgres", "client", "other")}
    if stats and closed:
        top_level = [s for s in stats if s["toplevel"]]
        out["statements_per_process"] = round(sum(s["calls"] for s in top_level) / closed, 2)
        out["nested_statements_per_process"] = round(
            sum(s["calls"] for s in stats if not s["toplevel"]) / closed, 2)
        out["pg_exec_ms_per_process"] = round(sum(s["total_exec_time"] for s in top_level) / closed, 3)
        out["wal_bytes_per_process"] = round(sum(int(s["wal_bytes"]) for s in top_level) / closed)
        top = sorted(stats, key=lambda s: (not s["toplevel"], -s["calls"]))[: args.top_statements]
        out["pg_plan_ms_per_process"] = round(sum(s["total_plan_time"] for s in top_level) / closed, 3)
        out["statements"] = [{"per_process": round(s["calls"] / closed, 3),
                              "mean_ms": round(s["total_exec_time"] / s["calls"], 3) if s["calls"] else None,
                              "plan_mean_ms": round(s["total_plan_time"] / s["calls"], 3)
                              if s["calls"] else None,
                              "toplevel": s["toplevel"], "query": _short(s["query"])} for s in top]
    before, after = times
    server: dict[str, Any] = {}
    for kind, now in after.items():
        then = before.get(kind, {})
        count = now.get("count", 0) - then.get("count", 0)
        if count > 0:
            server[kind] = {"requests": int(count),
                            "per_process": round(count / closed, 2) if closed else None,
                            "mean_ms": round(1000.0 * (now.get("sum", 0) - then.get("sum", 0)) / count, 3)}
    out["server_time"] = server
    return out


def report(r: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [f"throughput: {r['rate']} processes/s end to end ({r['closed']} in {r['seconds']} s; "
             f"per 5 s: {r['rate_per_slice']}); {args.load_procs} load processes, "
             f"{args.executors} executors, {args.submitters} submitters, {args.client} clients, "
             f"server workers {args.workers or 'default'}"]
    lat = r["latency_client"]
    lines.append(f"  submit -> close: p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms")
    cpu = r["cpu_pct"]
    lines.append("  CPU % of one core: " + ", ".join(f"{k} {cpu.get(k)}" for k in
                                                     ("server", "postgres", "client", "other", "machine",
                                                      "server_runq")))
    lines.append("  CPU s per 1,000 processes: "
                 + ", ".join(f"{k} {v}" for k, v in r["cpu_s_per_1000"].items()))
    if "statements_per_process" in r:
        lines.append(f"  per process: {r['statements_per_process']} statements (round trips; and "
                     f"{r['nested_statements_per_process']} run inside them by functions and triggers), "
                     f"{r['pg_exec_ms_per_process']} ms executing (+{r['pg_plan_ms_per_process']} planning) "
                     f"in PostgreSQL, {r['wal_bytes_per_process']} WAL bytes")
        for s in r["statements"]:
            where = "" if s["toplevel"] else "(nested) "
            plan = f" (+{s['plan_mean_ms']:.3f} planning)" if args.track_planning else ""
            lines.append(f"    {s['per_process']:6.3f} x {s['mean_ms']:.3f} ms{plan}  {where}{s['query']}")
    lines.append("  the server's time per request (its /metrics; clients' view in brackets):")
    client_view = {"submitfuncspecmsg": r["submit_client"], "assignprocessmsg": r["assign_client"],
                   "closesuccessfulmsg": r["close_client"]}
    for kind, t in sorted(r["server_time"].items(), key=lambda kv: -kv[1]["requests"]):
        seen = client_view.get(kind)
        extra = f" [client p50 {seen.get('p50_ms')} ms]" if seen else ""
        lines.append(f"    {kind}: {t['per_process']} per process, mean {t['mean_ms']} ms{extra}")
    pg = r.get("pgbench")
    if pg and "tps" in pg:
        lines.append(f"pgbench {pg['mode']} -c {pg['clients']} -j {pg['threads']} -T {pg['seconds']}: "
                     f"{pg['tps']} tps; end to end / pgbench = {r.get('fraction_of_pgbench')}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--load-procs", type=int, default=2, help="load-generator processes")
    parser.add_argument("--executors", type=int, default=8)
    parser.add_argument("--submitters", type=int, default=4)
    parser.add_argument("--backlog", type=int, default=64, help="most processes submitted and not yet closed")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--client", choices=("reference", "sdk"), default="reference")
    parser.add_argument("--workers", type=int, default=0,
                        help="COLONIES_SERVER_WORKERS (0: the server's default)")
    parser.add_argument("--top-statements", type=int, default=14)
    parser.add_argument("--track-planning", action="store_true",
                        help="pg_stat_statements.track_planning: planning time per statement")
    parser.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra setting of the embedded PostgreSQL (repeatable), e.g. "
                             "auto_explain.log_min_duration=0 with --keep to read the plans in its log")
    parser.add_argument("--no-pgbench", action="store_true", help="skip the pgbench ceiling")
    parser.add_argument("--pgbench-mode", default="simple-update", choices=("simple-update", "tpcb-like"))
    parser.add_argument("--pgbench-scale", type=int, default=1)
    parser.add_argument("--pgbench-clients", type=int, default=8)
    parser.add_argument("--pgbench-threads", type=int, default=2)
    parser.add_argument("--pgbench-time", type=int, default=10)
    parser.add_argument("--py-spy", metavar="FILE", help="profile the server during the window (.txt: "
                                                          "collapsed stacks for bench/profile_summary.py)")
    parser.add_argument("--py-spy-rate", type=int, default=250)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--db-url", help="PostgreSQL for the server (default: embedded)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.load_procs < 1 or args.executors < args.load_procs or args.submitters < args.load_procs:
        parser.error("every load process needs an executor and a submitter: "
                     "--executors and --submitters must be at least --load-procs")
    # what load.Environment and load.start_py_spy read
    args.url = args.server_prvkey = args.cprofile = None
    args.py_spy_idle = args.py_spy_gil = False
    extra = dict(item.split("=", 1) for item in args.pg_setting if "=" in item)
    if len(extra) != len(args.pg_setting):
        parser.error("--pg-setting takes NAME=VALUE")
    args.pg_settings = {**PG_SETTINGS,
                        "pg_stat_statements.track_planning": "on" if args.track_planning else "off", **extra}
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = Environment(args)
    sigterm_interrupts()
    try:
        env.start()
        results = asyncio.run(measure(args, env))
        if not args.no_pgbench:
            results["pgbench"] = asyncio.run(_pgbench(args, env))
            tps = results["pgbench"].get("tps")
            if tps:
                results["fraction_of_pgbench"] = round(results["rate"] / tps, 3)
        print(report(results, args), flush=True)
        results["options"] = {k: v for k, v in vars(args).items() if k not in ("server_prvkey",)}
        results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                              "busy_s_since_boot": machine_busy_seconds()}
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
            log(f"results written to {args.json}")
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception as exc:
        log(f"failed: {type(exc).__name__}: {exc}")
        tail = env.server_tail(2000)
        if tail:
            log(f"server log (tail):\n{tail}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        env.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)


async def _pgbench(args: argparse.Namespace, env: Environment) -> dict[str, Any]:
    run = _PgbenchRun(args, env, CpuMeter(env.server_pid, env.postgres_pid))
    return await phase_pgbench(run)  # type: ignore[arg-type]


@dataclass
class _PgbenchRun:  # what load.phase_pgbench reads
    args: argparse.Namespace
    env: Environment
    meter: CpuMeter


if __name__ == "__main__":
    sys.exit(main())
