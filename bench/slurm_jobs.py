#!/usr/bin/env python3
"""Many short processes through one slurm executor, on a real single-node Slurm.

Run from the repository root with the project installed and Slurm installed (``apt-get install
slurm-wlm munge``; it starts munged, slurmctld and slurmd itself, as the tests do)::

    python bench/slurm_jobs.py                  # 200 jobs
    python bench/slurm_jobs.py --jobs 500 --poll-min 1 --poll-max 5

Starts an embedded PostgreSQL, a server, a Slurm cluster (8 CPUs claimed on this machine) and
``colonies executor start --type slurm`` with its Slurm tools wrapped to count their calls,
submits ``--jobs`` reference specs (``echo``), waits until every process is closed, and prints
the jobs per second, the sbatch and status (squeue/sacct) calls, and the largest gap between two
status calls. This file is not part of the test suite (tests/e2e/test_slurm_executor.py runs 20).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pycolonies import Colonies, wire  # noqa: E402
from server.embedded import EmbeddedPostgres  # noqa: E402
from server.testing import ServerThread  # noqa: E402
from tests.conftest import _migrate, make_colony  # noqa: E402
from tests.executors.harness import CLI, RunningExecutor, executor_env  # noqa: E402
from tests.support.slurm import counting_tools, require_slurm, running_slurm, tool_calls  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--poll-min", type=float, default=0.5)
    parser.add_argument("--poll-max", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=100)
    options = parser.parse_args()
    require_slurm()
    with tempfile.TemporaryDirectory(prefix="colonies-slurm-bench-") as tmp:
        base = Path(tmp)
        postgres = EmbeddedPostgres(base / "pg")
        postgres.start()
        try:
            asyncio.run(_migrate(postgres.dsn))
            with (running_slurm(base / "cluster") as slurm, ServerThread(postgres.dsn) as server,
                  Colonies(server.host, server.port) as client):
                run(options, base, slurm.env, server, client)
        finally:
            postgres.stop()


def run(options: argparse.Namespace, base: Path, slurm_env: dict[str, str], server: ServerThread,
        client: Colonies) -> None:
    colony = make_colony(client, server)
    prvkey = colony.add_executor("hpc-bench", "hpc-executor")
    calls = base / "calls.txt"
    counting_tools(base / "bin", calls)
    env = executor_env(server.port, colony.colonyname, COLONIES_PRVKEY=prvkey,
                       COLONIES_SLURM_BIN=str(base / "bin"), COLONIES_SLURM_WORKDIR=str(base / "jobs"),
                       COLONIES_SLURM_POLL_MIN=str(options.poll_min),
                       COLONIES_SLURM_POLL_MAX=str(options.poll_max), **slurm_env)
    command = [*CLI, "executor", "start", "--type", "slurm", "--concurrency", str(options.concurrency)]
    with RunningExecutor(command, env, base / "executor") as executor:
        executor.wait_ready()
        conditions = {"colonyname": colony.colonyname, "executortype": "hpc-executor"}
        spec = {"funcname": "execute", "kwargs": {"cmd": "echo", "args": ["hello"]}, "maxexectime": -1,
                "maxretries": 0, "conditions": conditions}
        started = time.monotonic()
        ids = [client.submit_func_spec(spec, colony.user_prvkey).processid for _ in range(options.jobs)]
        submitted = time.monotonic() - started
        open_ids = set(ids)
        failed = 0
        while open_ids:
            time.sleep(1)
            for processid in list(open_ids):
                process = client.get_process(processid, colony.user_prvkey)
                if process.state in (wire.SUCCESS, wire.FAILED, wire.CANCELLED):
                    open_ids.discard(processid)
                    failed += process.state != wire.SUCCESS
        elapsed = time.monotonic() - started
    status = sorted(tool_calls(calls, "squeue") + tool_calls(calls, "sacct"))
    gaps = [b[0] - a[0] for a, b in zip(status, status[1:], strict=False)]
    print(f"{options.jobs} jobs ({failed} failed) in {elapsed:.1f} s: {options.jobs / elapsed:.2f} jobs/s "
          f"(submitting took {submitted:.1f} s)")
    print(f"sbatch calls: {len(tool_calls(calls, 'sbatch'))}; status calls: {len(status)} "
          f"({len(status) / elapsed:.2f}/s; gaps min {min(gaps, default=0):.2f} s, "
          f"max {max(gaps, default=0):.2f} s)")


if __name__ == "__main__":
    main()
