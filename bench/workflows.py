#!/usr/bin/env python3
"""Workflow benchmark: a MapReduce that fans out at run time, and the submit of a large DAG.

Run from the repository root with the project installed (``pip install -e .``)::

    python bench/workflows.py                        # both, on a private embedded PostgreSQL
    python bench/workflows.py --children 1000 --layers 100 --width 100
    python bench/workflows.py --url http://127.0.0.1:50080 --server-prvkey KEY

Phases:

  mapreduce  a two-node workflow ``map -> reduce``; the executor that gets ``map`` adds
             ``--children`` children with ``addchildmsg`` (the first with insert=true, the rest
             beside it, all feeding ``reduce``), then closes; ``--executors`` executors run the
             children (each returns 1) and ``reduce`` (sums its input). Reports the time from
             the submit to ``reduce`` closed, and checks the sum.
  dag        the submit of a ``--layers`` x ``--width`` layered DAG (every node below the first
             layer depends on two nodes of the layer above): one ``submitworkflowspecmsg``,
             timed from signing to the reply (median of ``--repeat``).

Targets (issue 4, 2-core machine): MapReduce with 1,000 children done in < 5 s; a 10,000-node DAG
submitted in < 2 s. The server, PostgreSQL and this load generator share the machine. Uses the
same environment handling as ``bench/load.py`` (it starts and stops everything it needs). This
file is not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import (  # noqa: E402
    EXECUTOR_TYPE,
    Colony,
    Environment,
    RpcFailed,
    WireClient,
    add_environment_options,
    create_colony,
    log,
)

from pycolonies.functions import func_spec  # noqa: E402

TARGET_MAPREDUCE_S = 5.0
TARGET_DAG_SUBMIT_S = 2.0


def node(colony: Colony, name: str, *deps: str) -> dict[str, Any]:
    spec = func_spec(name, [], colony.name, EXECUTOR_TYPE, maxexectime=-1).to_wire()
    spec["conditions"]["dependencies"] = list(deps)
    return spec


# -- MapReduce -------------------------------------------------------------------------------------


async def _add_children(colony: Colony, executor: WireClient, process: dict[str, Any], children: int,
                        fan: int) -> None:
    """The map step: the first child is inserted between map and reduce, the rest added beside it
    (also feeding reduce), over ``fan`` connections of the map's executor."""
    graph = await executor.call({"msgtype": "getprocessgraphmsg",
                                 "processgraphid": process["processgraphid"]})
    reduce_id = next(pid for pid in graph["processids"] if pid != process["processid"])

    def msg(i: int) -> dict[str, Any]:
        return {"msgtype": "addchildmsg", "processgraphid": process["processgraphid"],
                "parentprocessid": process["processid"], "childprocessid": reduce_id, "insert": i == 0,
                "spec": node(colony, f"gen_{i}")}

    await executor.call(msg(0))
    lanes = [await WireClient(executor.url.removesuffix("/api"), executor.prvkey, fresh=True).open()
             for _ in range(fan)]
    try:
        async def lane(k: int) -> None:
            for i in range(1 + k, children, fan):
                await lanes[k].call(msg(i))

        await asyncio.gather(*(lane(k) for k in range(fan)))
    finally:
        for client in lanes:
            await client.aclose()


async def _executor(colony: Colony, executor: WireClient, children: int, fan: int, done: asyncio.Future,
                    marks: dict[str, float]) -> None:
    body = colony.assign_body(executor, 5)
    while not done.done():
        try:
            process = await executor.send(body if not executor.fresh else colony.assign_body(executor, 5))
        except RpcFailed as exc:
            if exc.status == 404:
                continue
            raise
        name = process["spec"]["nodename"]
        if name == "map":
            await _add_children(colony, executor, process, children, fan)
            output: list[Any] = []
        elif name == "reduce":
            output = [sum(process["in"])]
        else:
            output = [1]
        await executor.call({"msgtype": "closesuccessfulmsg", "processid": process["processid"],
                             "out": output})
        marks.setdefault(f"{name}_closed", time.perf_counter())
        if name == "reduce" and not done.done():
            done.set_result(output[0])


async def phase_mapreduce(colony: Colony, args: argparse.Namespace) -> dict[str, Any]:
    log(f"mapreduce: map adds {args.children} children, {len(colony.executors)} executors")
    done: asyncio.Future = asyncio.get_running_loop().create_future()
    marks: dict[str, float] = {}
    workers = [asyncio.create_task(_executor(colony, e, args.children, args.fan, done, marks))
               for e in colony.executors]
    started = time.perf_counter()
    await colony.submitters[0].call({"msgtype": "submitworkflowspecmsg", "spec": {
        "colonyname": colony.name, "functionspecs": [node(colony, "map"), node(colony, "reduce", "map")]}})
    try:
        total = await asyncio.wait_for(asyncio.shield(done), timeout=args.timeout)
    finally:
        elapsed = time.perf_counter() - started
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    if total != args.children:
        raise RuntimeError(f"reduce summed {total}, expected {args.children}")
    result = {"children": args.children, "seconds": round(elapsed, 3),
              "map_closed_after_s": round(marks.get("map_closed", started) - started, 3),
              "processes_per_s": round((args.children + 2) / elapsed, 1), "target_s": TARGET_MAPREDUCE_S,
              "met": elapsed < TARGET_MAPREDUCE_S}
    log(f"mapreduce: {json.dumps(result)}")
    return result


# -- large DAG submit ------------------------------------------------------------------------------


def layered_dag(colony: Colony, layers: int, width: int) -> list[dict[str, Any]]:
    specs = [node(colony, f"n0_{i}") for i in range(width)]
    for layer in range(1, layers):
        for i in range(width):
            above = (f"n{layer - 1}_{i}", f"n{layer - 1}_{(i + 1) % width}")
            specs.append(node(colony, f"n{layer}_{i}", *above))
    return specs


async def phase_dag(colony: Colony, args: argparse.Namespace) -> dict[str, Any]:
    specs = layered_dag(colony, args.layers, args.width)
    msg = {"msgtype": "submitworkflowspecmsg", "spec": {"colonyname": colony.name, "functionspecs": specs}}
    log(f"dag: {len(specs)} nodes ({args.layers} layers x {args.width}), {args.repeat} submits")
    samples: list[float] = []
    submitter = colony.submitters[0]
    for _ in range(args.repeat):
        started = time.perf_counter()
        body = submitter.sign(msg)
        graph = await submitter.send(body)
        samples.append(time.perf_counter() - started)
        if len(graph["processids"]) != len(specs):
            raise RuntimeError(f"the graph has {len(graph['processids'])} processes, expected {len(specs)}")
    median = statistics.median(samples)
    result = {"nodes": len(specs), "request_mb": round(len(body) / 1e6, 2),
              "submit_s_median": round(median, 3), "submit_s_all": [round(s, 3) for s in samples],
              "target_s": TARGET_DAG_SUBMIT_S, "met": median < TARGET_DAG_SUBMIT_S}
    log(f"dag: {json.dumps(result)}")
    return result


# -- main ------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, env: Environment) -> dict[str, Any]:
    colony = await create_colony(env.url, env.server_prvkey, args.executors, 1)
    results: dict[str, Any] = {}
    try:
        if "mapreduce" in args.phases:
            results["mapreduce"] = await phase_mapreduce(colony, args)
        if "dag" in args.phases:
            results["dag"] = await phase_dag(colony, args)
    finally:
        await colony.aclose()
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", default="mapreduce,dag", help="comma separated: mapreduce, dag")
    parser.add_argument("--children", type=int, default=1000, help="children the map step adds")
    parser.add_argument("--executors", type=int, default=8, help="executors running the children")
    parser.add_argument("--fan", type=int, default=4, help="parallel add_child connections of the map step")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up on the MapReduce after (s)")
    parser.add_argument("--layers", type=int, default=100, help="DAG layers")
    parser.add_argument("--width", type=int, default=100, help="DAG nodes per layer")
    parser.add_argument("--repeat", type=int, default=3, help="DAG submits (the median is reported)")
    add_environment_options(parser)
    args = parser.parse_args(argv)
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    args.cprofile = os.environ.get("BENCH_CPROFILE")
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
    ok = all(r.get("met") for r in results.values())
    for name, r in results.items():
        print(f"{name}: {json.dumps(r)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
