#!/usr/bin/env python3
"""Count the SQL statements (client/server round trips) the server sends PostgreSQL per RPC.

    python bench/roundtrips.py            # submit, assign (ready / woken from a long-poll), close, get

Starts a private embedded PostgreSQL in a temporary directory with ``log_statement = all``, a server
in-process (``server.testing.ServerThread``), and runs each RPC a few times after a warm-up. Between
RPCs it writes a marker statement from its own connection; every statement logged by another
backend between two markers belongs to that RPC. Statements of the deadline sweeper (its own
connection, recognised by ``pg_try_advisory_lock``) are left out.

With asyncpg every statement (extended protocol: Bind/Execute/Sync) and every simple query
(``BEGIN``, ``COMMIT``, the pool's reset query on release) is one round trip; a statement the
connection has not prepared yet costs one more (Parse/Describe), which the warm-up hides.

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from pycolonies import crypto, wire
from pycolonies.functions import func_spec

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from server.embedded import EmbeddedPostgres
    from server.testing import ServerThread

MARK = "roundtrip_marker"
_LINE = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] (?:LOG|STATEMENT):\s+(statement|execute [^:]*):\s?(.*)$")


class Rpc:
    def __init__(self, url: str, fresh: bool) -> None:
        self.url = url + "/api"
        self.fresh = fresh
        self.session = aiohttp.ClientSession()

    async def __call__(self, msg: dict[str, Any], prvkey: str) -> Any:
        if self.fresh:  # like the pycolonies SDK: unique, replay-protected requests
            msg = {**msg, "requestnonce": os.urandom(16).hex(), "requesttime": time.time_ns()}
        body = json.dumps(wire.signed_request(msg, prvkey))
        async with self.session.post(self.url, data=body) as response:
            envelope = json.loads(await response.read())
        payload = wire.decode_payload(envelope["payload"])
        if envelope.get("error"):
            raise RuntimeError(f"{msg['msgtype']}: {payload}")
        return payload


def parse_log(text: str) -> list[tuple[int, str]]:
    """(backend pid, statement) for every logged statement, continuation lines joined."""
    statements: list[tuple[int, str]] = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            statements.append((int(match.group(1)), match.group(3)))
        elif line.startswith(("\t", " ")) and statements:
            pid, sql = statements[-1]
            statements[-1] = (pid, sql + " " + line.strip())
    return statements


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    tempdir = Path(tempfile.mkdtemp(prefix="colonies-roundtrips-"))
    pg = EmbeddedPostgres(tempdir / "pgdata")
    pg.start()
    server = None
    try:
        admin = await asyncpg.connect(pg.dsn)
        await admin.execute("CREATE DATABASE colonies_rt")
        await admin.execute("ALTER SYSTEM SET log_statement = 'all'")
        await admin.execute("ALTER SYSTEM SET log_line_prefix = '%m [%p] '")
        await admin.execute("SELECT pg_reload_conf()")
        await admin.close()
        dsn = pg.dsn_for("colonies_rt")
        server = ServerThread(dsn).start()
        marker = await asyncpg.connect(dsn)
        marker_pid = await marker.fetchval("SELECT pg_backend_pid()")
        rpc = Rpc(server.url, args.client == "sdk")
        try:
            return await _run(args, pg, server, rpc, marker, marker_pid)
        finally:
            await rpc.session.close()
            await marker.close()
    finally:
        if server is not None:
            server.stop()
        pg.stop()
        shutil.rmtree(tempdir, ignore_errors=True)


async def _run(args, pg, server, rpc, marker, marker_pid) -> dict[str, Any]:
    colony_key, executor_key, user_key = (crypto.generate_private_key() for _ in range(3))
    colony = "rt"
    await rpc({"msgtype": "addcolonymsg",
               "colony": {"colonyid": crypto.derive_id(colony_key), "name": colony}}, server.server_prvkey)
    await rpc({"msgtype": "addexecutormsg", "executor": {"executorid": crypto.derive_id(executor_key),
               "executorname": "e1", "executortype": "rt", "colonyname": colony}}, colony_key)
    await rpc({"msgtype": "approveexecutormsg", "colonyname": colony, "executorname": "e1"}, colony_key)
    await rpc({"msgtype": "addfunctionmsg", "fun": {"executorname": "e1", "colonyname": colony,
                                                    "funcname": "f"}}, executor_key)
    await rpc({"msgtype": "addusermsg", "user": {"colonyname": colony, "userid": crypto.derive_id(user_key),
               "name": "u1", "email": "", "phone": ""}}, colony_key)
    submit = {"msgtype": "submitfuncspecmsg", "spec": func_spec("f", [1], colony, "rt").to_wire()}
    assign_now = {"msgtype": "assignprocessmsg", "colonyname": colony, "timeout": -1}
    assign_wait = {"msgtype": "assignprocessmsg", "colonyname": colony, "timeout": 10}

    windows: list[tuple[str, str]] = []  # (rpc name, marker text ending its window)
    counter = 0

    async def mark(name: str) -> None:
        nonlocal counter
        counter += 1
        text = f"{MARK}_{counter}"
        await marker.execute(f"SELECT '{text}'")
        windows.append((name, text))

    async def one_round(measured: bool) -> None:
        tag = (lambda n: n) if measured else (lambda n: "warmup")
        await mark("start")
        process = await rpc(submit, user_key)
        await mark(tag("submitfuncspecmsg"))
        await rpc(assign_now, executor_key)
        await mark(tag("assignprocessmsg (ready)"))
        close = {"msgtype": "closesuccessfulmsg", "processid": process["processid"], "out": [1]}
        await rpc(close, executor_key)
        await mark(tag("closesuccessfulmsg"))
        await rpc({"msgtype": "getprocessmsg", "processid": process["processid"]}, user_key)
        await mark(tag("getprocessmsg"))
        # An assign that waits in its long-poll and is woken by a submit.
        await mark("start")
        waiting = asyncio.create_task(rpc(assign_wait, executor_key))
        await asyncio.sleep(0.2)
        await mark(tag("assignprocessmsg (long-poll): until it waits"))
        woke = await rpc(submit, user_key)
        assigned = await waiting
        assert assigned["processid"] == woke["processid"]
        await mark(tag("submitfuncspecmsg + the woken assign's rest"))
        await rpc({"msgtype": "closesuccessfulmsg", "processid": woke["processid"], "out": []}, executor_key)
        await mark("start")

    for _ in range(args.warmup):
        await one_round(False)
    for _ in range(args.rounds):
        await one_round(True)
    await asyncio.sleep(0.5)  # let the log reach the file

    statements = parse_log((pg.data_dir / "postgres.log").read_text(errors="replace"))
    sweeper = {pid for pid, sql in statements if "pg_try_advisory_lock" in sql}
    per_rpc: dict[str, list[list[str]]] = collections.defaultdict(list)
    current: list[str] | None = None
    ends = {text: name for name, text in windows}
    for pid, sql in statements:
        if pid == marker_pid:
            found = re.search(rf"'({MARK}_\d+)'", sql)
            if found and found.group(1) in ends:
                name = ends[found.group(1)]
                if current is not None and name not in ("start", "warmup"):
                    per_rpc[name].append(current)
                current = []
            continue
        if pid in sweeper or current is None:
            continue
        current.append(sql)
    result: dict[str, Any] = {}
    for name, runs in per_rpc.items():
        counts = [len(r) for r in runs]
        example = min(runs, key=len)
        result[name] = {"round_trips": min(counts), "max": max(counts), "samples": len(runs),
                        "statements": [_short(s) for s in example]}
    return result


def _short(sql: str, width: int = 110) -> str:
    sql = re.sub(r"\s+", " ", sql).strip()
    return sql if len(sql) <= width else sql[: width - 3] + "..."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--client", choices=("sdk", "reference"), default="sdk",
                        help="sdk: messages carry requestnonce/requesttime like pycolonies; reference: bare")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args()
    started = time.perf_counter()
    result = asyncio.run(measure(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for name, info in result.items():
        spread = "" if info["max"] == info["round_trips"] else f" (up to {info['max']})"
        print(f"{name}: {info['round_trips']} round trips{spread}")
        for sql in info["statements"]:
            print(f"    {sql}")
    print(f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
