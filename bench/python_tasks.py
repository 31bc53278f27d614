#!/usr/bin/env python3
"""Python task benchmark: trivial functions through ``colonies executor start --type python``,
beside the protocol-level round trip on the same server, and the tutorial's MapReduce.

Run from the repository root with the project installed (``pip install -e '.[server]'``)::

    python bench/python_tasks.py                    # everything, on a private embedded PostgreSQL
    python bench/python_tasks.py --tasks 500 --children 100,1000 --modes warm,cold

Phases (each on the same server, one after the other):

  protocol     ``--tasks`` sequential submit -> assign -> close round trips of one SDK user and
               one SDK executor: what the protocol costs per process, with no executor around it.
  python       ``--tasks`` trivial processes (``def sq(x): return x * x``) submitted first, then
               one python executor started with ``--concurrency`` 1 and 4, for each of ``--modes``
               (``warm``: forked from its zygote, the default; ``cold``:
               ``COLONIES_WORKER_WARM=false``, a fresh interpreter per process): processes/s
               from the executor's "ready" to the last one closed.
  mapreduce    the tutorial's MapReduce, its code as users paste it: ``map`` adds N ``gen_nums``
               children with ``add_child``, ``reduce`` sums them, on two python executors (warm);
               the time from the submit to the reduced result, for each N of ``--children``, and
               how it splits into the map step, the children and reduce. Then the same with a map
               that adds its children in one ``add_children`` request (our extension).

Targets (issue 16, 2-core machine, same run): warm python tasks at concurrency 1 at least half
the protocol rate; at concurrency 4 at least 150/s; MapReduce with 1,000 children under 10 s.
Uses the same environment handling as ``bench/load.py``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import base64
import inspect
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Environment, add_environment_options, log, machine_busy_seconds, tree_cpu_seconds  # noqa: E402

from pycolonies import Colonies, Workflow, crypto, func_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PYTHON_TYPE = "python-executor"
PROTOCOL_TYPE = "bench-protocol"
TARGET_HALF_PROTOCOL = 0.5
TARGET_C4_PER_S = 150.0
TARGET_MAPREDUCE_S = 10.0


def sq(x):
    return x * x


def map(ctx={}):  # noqa: A001, B006 - the ColonyOS tutorial's code as users paste it
    code = """def gen_nums(ctx={}):
    return 1, 2"""
    processgraphid = ctx["process"].processgraphid
    map_processid = ctx["process"].processid
    executor_prvkey = ctx["executor_prvkey"]
    processgraph = colonies.get_processgraph(processgraphid, executor_prvkey)  # noqa: F821
    reduce_process = colonies.find_process("reduce", processgraph.processids, executor_prvkey)  # noqa: F821
    insert = True
    for i in range(CHILDREN):  # noqa: F821 - set in the shipped source
        f = func_spec(func="gen_nums", args=[], colonyname=ctx["colonyname"],  # noqa: F821
                      executortype="python-executor", maxexectime=100, maxwaittime=100, code=code)
        colonies.add_child(processgraphid, map_processid, reduce_process.processid, f,  # noqa: F821
                           f"gen_nums_{i}", insert, executor_prvkey)
        insert = False


def map_at_once(ctx={}):  # noqa: B006 - the same map, adding its children in one request
    code = """def gen_nums(ctx={}):
    return 1, 2"""
    processgraphid = ctx["process"].processgraphid
    executor_prvkey = ctx["executor_prvkey"]
    processgraph = colonies.get_processgraph(processgraphid, executor_prvkey)  # noqa: F821
    reduce_process = colonies.find_process("reduce", processgraph.processids, executor_prvkey)  # noqa: F821
    f = func_spec(func="gen_nums", args=[], colonyname=ctx["colonyname"],  # noqa: F821
                  executortype="python-executor", maxexectime=100, maxwaittime=100, code=code)
    colonies.add_children(processgraphid, ctx["process"].processid, reduce_process.processid,  # noqa: F821
                          [f] * CHILDREN, [f"gen_nums_{i}" for i in range(CHILDREN)], True,  # noqa: F821
                          executor_prvkey)


def reduce(*nums, ctx={}):  # noqa: A001, B006
    total = 0
    for n in nums:
        total += n
    return total


class Setup:
    """A colony, its owner and one user, on the benchmark's server."""

    def __init__(self, env: Environment) -> None:
        self.server_pid = env.server.pid if env.server is not None else None
        self.postgres_pid = env.postgres_pid
        parts = urlsplit(env.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.client = Colonies(self.host, self.port, timeout=60)
        self.colony_prvkey, self.user_prvkey = crypto.generate_private_key(), crypto.generate_private_key()
        self.colonyname = f"bench-{os.urandom(3).hex()}"
        self.client.add_colony({"colonyid": crypto.derive_id(self.colony_prvkey), "name": self.colonyname},
                               env.server_prvkey)
        self.client.add_user({"colonyname": self.colonyname, "userid": crypto.derive_id(self.user_prvkey),
                              "name": "bench", "email": "", "phone": ""}, self.colony_prvkey)

    def executor_key(self, executortype: str) -> str:
        prvkey = crypto.generate_private_key()
        name = f"{executortype}-{crypto.derive_id(prvkey)[:8]}"
        self.client.add_executor({"executorid": crypto.derive_id(prvkey), "executorname": name,
                                  "executortype": executortype, "colonyname": self.colonyname},
                                 self.colony_prvkey)
        self.client.approve_executor(self.colonyname, name, self.colony_prvkey)
        return prvkey


def phase_protocol(setup: Setup, tasks: int) -> dict[str, Any]:
    executor_prvkey = setup.executor_key(PROTOCOL_TYPE)
    spec = func_spec("sq", [3], setup.colonyname, PROTOCOL_TYPE, maxexectime=-1, maxretries=0)
    with Colonies(setup.host, setup.port, timeout=60) as executor:
        started = time.perf_counter()
        for _ in range(tasks):
            setup.client.submit_func_spec(spec, setup.user_prvkey)
            process = executor.assign(setup.colonyname, 10, executor_prvkey)
            executor.close(process.processid, [9], executor_prvkey)
        seconds = time.perf_counter() - started
    return {"phase": "protocol round trip", "tasks": tasks, "seconds": round(seconds, 3),
            "per_s": round(tasks / seconds, 1), "ms_per_task": round(1000 * seconds / tasks, 2)}


class PythonExecutor:
    """``colonies executor start --type python`` as a subprocess, registered with the colony key."""

    def __init__(self, setup: Setup, concurrency: int, warm: bool, scratch: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLONIES_")}
        env.update(COLONIES_SERVER_HOST=setup.host, COLONIES_SERVER_PORT=str(setup.port),
                   COLONIES_COLONY_NAME=setup.colonyname, COLONIES_COLONY_PRVKEY=setup.colony_prvkey,
                   COLONIES_WORKER_WARM="true" if warm else "false", PYTHONPATH=str(ROOT))
        self.ready = threading.Event()
        self.log = (scratch / f"executor-{os.urandom(3).hex()}.log").open("w")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "pycolonies.cli.main", "executor", "start", "--type", "python",
             "--concurrency", str(concurrency), "--heartbeat", "0", "--grace", "2"],
            env=env, stdout=subprocess.PIPE, stderr=self.log, text=True)
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            if " ready " in line:
                self.ready.set()

    def wait_ready(self, timeout: float = 120) -> float:
        if not self.ready.wait(timeout):
            raise SystemExit(f"the python executor did not become ready; see {self.log.name}")
        return time.perf_counter()

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self.log.close()


def wait_all(setup: Setup, processids: list[str], timeout: float) -> None:
    """Until every process of the colony ended, then check each one succeeded: a wait on the last
    one submitted (one subscription; the queue runs roughly in order), then the colony's statistics
    every 20 ms for the few still running, so that watching costs the server next to nothing."""
    deadline = time.monotonic() + timeout
    setup.client.wait(processids[-1], timeout, setup.user_prvkey)
    while True:
        stats = setup.client.stats(setup.colonyname, setup.user_prvkey)
        if stats.get("waitingprocesses", 1) == 0 and stats.get("runningprocesses", 1) == 0:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"the processes did not end within {timeout:g} s: {stats}")
        time.sleep(0.02)
    for processid in processids:
        done = setup.client.get_process(processid, setup.user_prvkey)
        if done.state != 2:
            raise SystemExit(f"process {processid[:8]} ended in state {done.state}: {done.errors}")


def phase_python(setup: Setup, tasks: int, concurrency: int, warm: bool, scratch: Path) -> dict[str, Any]:
    spec = func_spec(func=sq, args=[7], colonyname=setup.colonyname, executortype=PYTHON_TYPE,
                     maxexectime=60, maxretries=0)
    processids = [setup.client.submit_func_spec(spec, setup.user_prvkey).processid for _ in range(tasks)]
    executor = PythonExecutor(setup, concurrency, warm, scratch)
    try:
        started = executor.wait_ready()
        before = cpu(setup, executor)
        wait_all(setup, processids, 600)
        seconds = time.perf_counter() - started
        used = {party: round(1000 * (value - before[party]) / tasks, 2) for party, value in
                cpu(setup, executor).items()}
    finally:
        executor.stop()
    return {"phase": f"python {'warm' if warm else 'cold'} c={concurrency}", "tasks": tasks,
            "seconds": round(seconds, 3), "per_s": round(tasks / seconds, 1),
            "ms_per_task": round(1000 * seconds / tasks, 2), "cpu_ms_per_task": used}


def _own_cpu(pid: int) -> float:
    """CPU seconds of the process alone (not of its children)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu(setup: Setup, executor: PythonExecutor) -> dict[str, float]:
    """CPU seconds so far of the parties: the executor, its zygote and workers, the server,
    PostgreSQL, this benchmark (waiting on the results), and the whole machine."""
    own = os.times()
    executor_own = _own_cpu(executor.popen.pid)
    return {"executor": executor_own,
            "workers": (tree_cpu_seconds(executor.popen.pid) or 0.0) - executor_own,
            "server": tree_cpu_seconds(setup.server_pid) or 0.0,
            "postgres": tree_cpu_seconds(setup.postgres_pid) or 0.0,
            "bench": own.user + own.system, "machine": machine_busy_seconds() or 0.0}


def phase_mapreduce(setup: Setup, children: int, scratch: Path, at_once: bool = False) -> dict[str, Any]:
    executors = [PythonExecutor(setup, 1, True, scratch) for _ in range(2)]
    try:
        for executor in executors:
            executor.wait_ready()
        workflow = Workflow(colonyname=setup.colonyname)
        mapper = map_at_once if at_once else map
        map_spec = func_spec(func=mapper, args=[], colonyname=setup.colonyname, executortype=PYTHON_TYPE,
                             maxexectime=600, maxwaittime=600)
        map_spec.nodename = map_spec.funcname = mapper.__name__
        # the tutorial's map with its child count written in, as a user edits the pasted code
        source = f"CHILDREN = {children}\n" + inspect.getsource(mapper)
        map_spec.env["code"] = base64.b64encode(source.encode()).decode()
        workflow.functionspecs.append(map_spec)
        reduce_spec = func_spec(func=reduce, args=[], colonyname=setup.colonyname, executortype=PYTHON_TYPE,
                                maxexectime=600, maxwaittime=600)
        reduce_spec.conditions.dependencies.append(mapper.__name__)
        workflow.functionspecs.append(reduce_spec)
        started = time.perf_counter()
        graph = setup.client.submit_workflow(workflow, setup.user_prvkey)
        last = setup.client.find_process("reduce", graph.processids, setup.user_prvkey)
        done = setup.client.wait(last, 600, setup.user_prvkey)
        seconds = time.perf_counter() - started
    finally:
        for executor in executors:
            executor.stop()
    ok = done.state == 2 and done.output == [3 * children]
    mapped = setup.client.find_process(mapper.__name__, graph.processids, setup.user_prvkey)
    spans = {"map (adding the children)": (mapped.starttime, mapped.endtime),
             "children": (mapped.endtime, done.starttime), "reduce": (done.starttime, done.endtime)}
    style = "add_children" if at_once else "the tutorial's add_child loop"
    return {"phase": f"mapreduce {children} children ({style}), 2 executors", "seconds": round(seconds, 3),
            "result": done.output, "ok": ok,
            "spans_s": {name: round((end - start).total_seconds(), 3) for name, (start, end) in spans.items()
                        if start and end}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=300, help="trivial processes per python phase")
    parser.add_argument("--children", default="100,1000", help="MapReduce sizes, comma-separated")
    parser.add_argument("--modes", default="warm,cold", help="python worker starts to measure")
    parser.add_argument("--phases", default="protocol,python,mapreduce")
    parser.add_argument("--concurrency", default="1,4", type=lambda text: [int(n) for n in text.split(",")],
                        help="the python executor's --concurrency values to measure")
    add_environment_options(parser)
    args = parser.parse_args(argv)
    args.cprofile = os.environ.get("BENCH_CPROFILE")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = Environment(args)
    results: list[dict[str, Any]] = []
    phases = set(args.phases.split(","))
    try:
        env.start()
        setup = Setup(env)
        with tempfile.TemporaryDirectory(prefix="colonies-bench-python-") as scratch:
            if "protocol" in phases:
                results.append(phase_protocol(setup, args.tasks))
                log(json.dumps(results[-1]))
            if "python" in phases:
                for mode in args.modes.split(","):
                    for concurrency in args.concurrency:
                        tasks = args.tasks if mode == "warm" else max(args.tasks // 5, 20)
                        results.append(phase_python(setup, tasks, concurrency, mode == "warm", Path(scratch)))
                        log(json.dumps(results[-1]))
            if "mapreduce" in phases:
                for children in (int(n) for n in args.children.split(",")):
                    for at_once in (False, True):
                        results.append(phase_mapreduce(setup, children, Path(scratch), at_once))
                        log(json.dumps(results[-1]))
    finally:
        env.stop()
    rates = {r["phase"]: r.get("per_s") for r in results}
    protocol = rates.get("protocol round trip")
    c1, c4 = rates.get("python warm c=1"), rates.get("python warm c=4")
    if protocol and c1:
        results.append({"check": "warm c=1 / protocol", "ratio": round(c1 / protocol, 2),
                        "target": TARGET_HALF_PROTOCOL})
    if c4:
        results.append({"check": "warm c=4 per s", "value": c4, "target": TARGET_C4_PER_S})
    for result in results:
        print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if all(r.get("ok", True) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
