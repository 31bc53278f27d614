"""The store's hot statements on their own: submit, assign and close, called straight through
``server.store`` on one connection (no HTTP, no signatures), so that a change to their SQL can be
compared with the tree before it.

    python bench/store_statements.py                           # this tree
    python bench/store_statements.py base=/tmp/old this=.      # interleaved rounds, one database each

Each NAME=TREE is a checkout of this project (e.g. ``git worktree add /tmp/old <rev>``); every
round runs each tree in its own Python process (importing that tree's ``server``) against its own
database in one embedded PostgreSQL, alternating trees, and reports per statement the median over
rounds of each round's median latency, with the range. The machine is shared: compare trees in one
run, never across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent.parent
STATEMENTS = ("submit", "assign", "close")


async def one_round(dsn: str, cycles: int) -> dict[str, float]:
    """``cycles`` times submit -> assign -> close with the tree on ``sys.path``; median ms each."""
    import asyncpg

    from pycolonies.models import Colony, Conditions, Executor, FuncSpec
    from server import db
    from server.store import colonies, executors, processes

    con = await asyncpg.connect(dsn)
    try:
        await db.migrate(con)
        await db.init_connection(con)
        executor_id = "e" * 64
        if not await colonies.get(con, "bench"):
            await colonies.add(con, Colony(colonyid="c" * 64, name="bench"))
            await executors.add(con, Executor(executorid=executor_id, executortype="t", executorname="x",
                                              colonyname="bench"))
            await executors.set_state(con, "bench", "x", 1)
        times: dict[str, list[float]] = {name: [] for name in STATEMENTS}
        for _ in range(cycles):
            spec = FuncSpec(funcname="f", conditions=Conditions(colonyname="bench", executortype="t"),
                            env={"A": "1"})
            started = time.perf_counter()
            await processes.insert(con, spec, initiator_id=executor_id, cpu_millis=0, memory_bytes=0,
                                   submitted_ns=time.time_ns(), replay_key=f"s{time.time_ns()}")
            submitted = time.perf_counter()
            process, _ = await processes.assign_next(con, colony_name="bench", executor_id=executor_id,
                                                     cpu_limit=10**9, memory_limit=10**15,
                                                     replay_key=f"a{time.time_ns()}")
            assigned = time.perf_counter()
            async with con.transaction():
                await processes.close_successful(con, process["processid"], executor_id, ["out"],
                                                 f"c{time.time_ns()}")
            closed = time.perf_counter()
            times["submit"].append(submitted - started)
            times["assign"].append(assigned - submitted)
            times["close"].append(closed - assigned)
        return {name: statistics.median(values) * 1000 for name, values in times.items()}
    finally:
        await con.close()


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trees", nargs="*", help="NAME=TREE pairs (default: this tree)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cycles", type=int, default=300, help="submit/assign/close cycles per round")
    parser.add_argument("--round", nargs=2, metavar=("TREE", "DSN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.round:
        sys.path.insert(0, args.round[0])
        print(json.dumps(asyncio.run(one_round(args.round[1], args.cycles))))
        return
    trees = [tuple(t.split("=", 1)) for t in args.trees] or [("this", str(HERE))]
    sys.path.insert(0, str(HERE))
    import asyncpg

    from server.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory() as scratch:
        postgres = EmbeddedPostgres(Path(scratch) / "data")
        postgres.start()
        try:
            async def create() -> None:
                con = await asyncpg.connect(postgres.dsn)
                for i, _ in enumerate(trees):
                    await con.execute(f"CREATE DATABASE bench_{i}")
                await con.close()

            asyncio.run(create())
            results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
            for _ in range(args.rounds):
                for i, (name, tree) in enumerate(trees):
                    run = subprocess.run(
                        [sys.executable, __file__, "--cycles", str(args.cycles), "--round",
                         str(Path(tree).resolve()), with_database(postgres.dsn, f"bench_{i}")],
                        capture_output=True, text=True, check=True,
                    )
                    results[name].append(json.loads(run.stdout.splitlines()[-1]))
        finally:
            postgres.stop()
    print(f"{args.rounds} rounds x {args.cycles} cycles; ms per statement: median of round medians (range)")
    for name, rounds in results.items():
        cells = []
        for statement in STATEMENTS:
            values = [r[statement] for r in rounds]
            cells.append(f"{statement} {statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})")
        print(f"{name:>8}: " + "  ".join(cells))


if __name__ == "__main__":
    main()
