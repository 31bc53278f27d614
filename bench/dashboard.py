#!/usr/bin/env python3
"""Dashboard benchmark: what the page asks the server for in a large colony, and how long the
page itself takes to draw, in Debian's Chromium.

Run from the repository root with the project and its test extra installed
(``pip install -e '.[test]'``; the browser part needs ``chromium`` and ``playwright``)::

    python bench/dashboard.py                         # 100,000 processes, a 5,000-node workflow
    python bench/dashboard.py --processes 1000000 --samples 10 --no-browser

Setup: a colony with ``--processes`` processes written straight into its table (4 % waiting, 1 %
running, 5 % failed, 90 % successful over the last two hours, three executor types), then one
workflow of ``--layers`` x ``--width`` nodes submitted over the wire.

Measured, each ``--samples`` times over the signed protocol (median and range, in ms):
overview (``getcolonyoverviewmsg``), the reference ``getcolonystatsmsg``, the first page of
successful processes (``findprocessesmsg``, 50), the page ``--deep`` pages further on, a filtered
page of waiting processes, a ``getprocessgraphmsg`` of the big workflow, and a ``/metrics``
scrape. In the browser: from opening the workflow's page to its drawing having every node, and
from opening the processes list to its first page shown. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Environment, add_environment_options, create_colony, log  # noqa: E402
from workflows import layered_dag  # noqa: E402

TYPES = ("cpu", "gpu", "hpc")

_SEED_SQL = """
INSERT INTO processes (process_id, colony_name, executor_type, state, assigned_executor_id, initiator_id,
                       initiator_name, funcname, label, priority_time, submission_time, start_time,
                       end_time, spec)
SELECT encode(sha256(convert_to($1 || g::text, 'UTF8')), 'hex'), $2, ($9::text[])[1 + g % 3], s.state,
       CASE WHEN s.state = 0 THEN '' ELSE $3 END, $4, $5, 'work', 'label-' || (g % 10),
       (extract(epoch FROM t.submitted) * 1e9)::bigint, t.submitted,
       CASE WHEN s.state = 0 THEN NULL ELSE t.submitted + interval '20 ms' END,
       CASE WHEN s.state >= 2 THEN t.submitted + interval '50 ms' END,
       $6::jsonb
  FROM generate_series($7::bigint, $8::bigint) AS g,
       LATERAL (SELECT now() - interval '2 hours' + g * (interval '7200 s' / $8) AS submitted) AS t,
       LATERAL (SELECT CASE WHEN g % 100 < 4 THEN 0 WHEN g % 100 < 5 THEN 1
                            WHEN g % 100 < 10 THEN 3 ELSE 2 END::smallint AS state) AS s
"""


def summary(samples: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(samples) * 1000, 1),
            "min_ms": round(min(samples) * 1000, 1), "max_ms": round(max(samples) * 1000, 1)}


async def timed(samples: int, work) -> dict[str, float]:
    taken = []
    for _ in range(samples):
        started = time.perf_counter()
        await work()
        taken.append(time.perf_counter() - started)
    return summary(taken)


async def seed(env: Environment, colony: Any, count: int) -> float:
    spec = json.dumps({"funcname": "work", "args": [1], "kwargs": {}, "env": {},
                       "conditions": {"colonyname": colony.name, "executortype": "cpu"}})
    started = time.perf_counter()
    con = await asyncpg.connect(env.db_dsn)
    try:
        chunk = 100_000
        for first in range(1, count + 1, chunk):
            last = min(count, first + chunk - 1)
            await con.execute(_SEED_SQL, f"dash-{colony.name}-", colony.name, colony.executors[0].id,
                              colony.submitters[0].id, colony.submitters[0].name, spec, first, last,
                              list(TYPES))
            log(f"seeded {last:,} / {count:,} processes")
        await con.execute("VACUUM ANALYZE processes")
    finally:
        await con.close()
    return time.perf_counter() - started


async def measure_wire(env: Environment, colony: Any, graph_id: str, args: argparse.Namespace) -> dict:
    user = colony.submitters[0]
    name = colony.name
    results: dict[str, Any] = {}
    results["overview"] = await timed(args.samples, lambda: user.call(
        {"msgtype": "getcolonyoverviewmsg", "colonyname": name}))
    results["colony_stats"] = await timed(args.samples, lambda: user.call(
        {"msgtype": "getcolonystatsmsg", "colonyname": name}))
    first_page = {"msgtype": "findprocessesmsg", "colonyname": name, "state": 2, "count": 50}
    results["first_page"] = await timed(args.samples, lambda: user.call(first_page))
    after = ""
    for _ in range(args.deep):
        after = (await user.call({**first_page, "after": after}))["next"]
    deep_page = {**first_page, "after": after}
    results[f"page_{args.deep}"] = await timed(args.samples, lambda: user.call(deep_page))
    results["filtered_waiting_page"] = await timed(args.samples, lambda: user.call(
        {"msgtype": "findprocessesmsg", "colonyname": name, "state": 0, "count": 50,
         "executortype": "gpu", "label": "label-3"}))
    results["workflow_graph"] = await timed(args.samples, lambda: user.call(
        {"msgtype": "getprocessgraphmsg", "processgraphid": graph_id}))

    async with aiohttp.ClientSession() as http:
        async def scrape() -> None:
            async with http.get(env.url + "/metrics") as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"/metrics answered {response.status}")
        await scrape()
        # the metrics read the database at most once a second; sample across that cache
        samples = []
        for _ in range(args.samples):
            await asyncio.sleep(1.05)
            started = time.perf_counter()
            await scrape()
            samples.append(time.perf_counter() - started)
        results["metrics_scrape"] = summary(samples)
    return results


async def measure_browser(env: Environment, colony: Any, graph_id: str, nodes: int,
                          samples: int) -> dict[str, Any]:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    try:
        from playwright.async_api import async_playwright, expect
    except ImportError:
        return {"skipped": "playwright is not installed"}
    if not chromium:
        return {"skipped": "chromium is not installed"}
    user_key = colony.submitters[0].prvkey
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    dag, processes = [], []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=flags, headless=True)
        try:
            page = await browser.new_page()
            page.set_default_timeout(120_000)
            await page.goto(env.url + "/")
            await page.fill("input[name=prvkey]", user_key)
            await page.fill("input[name=colony]", colony.name)
            await page.click("form.signin button[type=submit]")
            await page.wait_for_selector(".who")
            for _ in range(samples):
                await page.goto(env.url + "/#/overview")
                await page.wait_for_selector("[data-total]")
                started = time.perf_counter()
                await page.goto(env.url + f"/#/workflow/{graph_id}")
                await expect(page.locator("svg.dag g.node")).to_have_count(nodes, timeout=120_000)
                dag.append(time.perf_counter() - started)
                await page.goto(env.url + "/#/overview")
                await page.wait_for_selector("[data-total]")
                started = time.perf_counter()
                await page.goto(env.url + "/#/processes?state=2")
                await expect(page.locator("section.view tbody tr")).to_have_count(50)
                processes.append(time.perf_counter() - started)
        finally:
            await browser.close()
    return {"workflow_page_all_nodes": summary(dag), "processes_first_page": summary(processes)}


async def run(args: argparse.Namespace, env: Environment) -> dict[str, Any]:
    colony = await create_colony(env.url, env.server_prvkey, 1, 1)
    try:
        seeded_s = await seed(env, colony, args.processes)
        specs = layered_dag(colony, args.layers, args.width)
        started = time.perf_counter()
        graph = await colony.submitters[0].call(
            {"msgtype": "submitworkflowspecmsg", "spec": {"colonyname": colony.name, "functionspecs": specs}})
        submit_s = time.perf_counter() - started
        log(f"workflow of {len(specs)} nodes submitted in {submit_s:.2f} s")
        results: dict[str, Any] = {"processes": args.processes, "seed_s": round(seeded_s, 1),
                                   "workflow_nodes": len(specs), "workflow_submit_s": round(submit_s, 2)}
        results["wire"] = await measure_wire(env, colony, graph["processgraphid"], args)
        if not args.no_browser:
            results["browser"] = await measure_browser(env, colony, graph["processgraphid"], len(specs),
                                                       args.browser_samples)
        return results
    finally:
        await colony.aclose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=100_000, help="processes in the colony")
    parser.add_argument("--layers", type=int, default=50, help="workflow layers")
    parser.add_argument("--width", type=int, default=100, help="workflow nodes per layer")
    parser.add_argument("--samples", type=int, default=20, help="timed requests of each kind")
    parser.add_argument("--deep", type=int, default=100, help="pages to skip for the deep page")
    parser.add_argument("--browser-samples", type=int, default=3, help="timed page loads of each kind")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium part")
    add_environment_options(parser)
    args = parser.parse_args(argv)
    args.cprofile = os.environ.get("BENCH_CPROFILE")  # as the other benchmarks (bench/load.py)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = Environment(args)
    try:
        env.start()
        results = asyncio.run(run(args, env))
    finally:
        env.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
