"""``colonies executor start --type slurm`` as a real subprocess against a real server and a real
single-node Slurm (started here, tests/support/slurm.py): the reference's spec, exit codes,
walltime, cancellation, jobs side by side, a shipped Python function, many jobs with one status
query per interval, kill -9 and restart, and no executor secret in a job.

One server, colony and executor serve the whole module (Slurm enforces time limits in whole
minutes, checked every 30 s: the walltime job is submitted first and checked last, while the other
tests run). The executor's Slurm tools are wrapper scripts that log each call, then exec the real
tool, so the tests count sbatch and squeue calls.
"""

from __future__ import annotations

import asyncio
import copy
import re
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pycolonies import Colonies, func_spec, wire
from pycolonies.models import Fs, Process
from server.testing import ServerThread
from tests.conftest import TEMPLATE_DB, ColonyEnv, _admin, _with_database, make_colony
from tests.executors.harness import CLI, RunningExecutor, executor_env, log_text, wait_state
from tests.support import wait_until
from tests.support.images import build_busybox, require_podman
from tests.support.slurm import Slurm, counting_tools, require_slurm, running_slurm, tool_calls
from tests.support.specs import with_changes

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

EXECUTORTYPE = "hpc-executor"
POLL_MIN = 0.5
POLL_MAX = 2.0
REFERENCE = {
    "conditions": {"executortype": EXECUTORTYPE, "nodes": 1, "processespernode": 1,
                   "mem": "64Mi", "cpu": "1000m", "walltime": 200, "gpu": {"count": 0}},
    "funcname": "execute",
    "kwargs": {"cmd": "echo", "args": ["hello", "world"]},
    "maxwaittime": -1, "maxexectime": -1, "maxretries": 0,
}


@dataclass
class Hpc:
    """The module's server, colony, Slurm and executor (restartable)."""

    colony: ColonyEnv
    slurm: Slurm
    workdir: Path
    calls: Path  # one line per Slurm tool call: "<time> <tool> <args>"
    prvkey: str
    started: list[RunningExecutor] = field(default_factory=list)

    @property
    def executor(self) -> RunningExecutor:
        return self.started[-1]

    def start(self) -> RunningExecutor:
        """(Re)start the module's executor."""
        executor = self.executor_process(self.prvkey, f"executor{len(self.started)}")
        self.started.append(executor)
        return executor.wait_ready()

    def executor_process(self, prvkey: str, name: str, **variables: str) -> RunningExecutor:
        env = executor_env(
            self.colony.server.port, self.colony.colonyname, COLONIES_PRVKEY=prvkey,
            COLONIES_SLURM_BIN=str(self.workdir / "bin"), COLONIES_SLURM_WORKDIR=str(self.workdir / "jobs"),
            COLONIES_SLURM_POLL_MIN=str(POLL_MIN), COLONIES_SLURM_POLL_MAX=str(POLL_MAX),
            AWS_SECRET_ACCESS_KEY="aws-secret-of-the-executor", **self.slurm.env, **variables)
        command = [*CLI, "executor", "start", "--type", "slurm", "--verbose"]
        return RunningExecutor(command, env, self.workdir / name)

    def call_lines(self, tool: str) -> list[tuple[float, str]]:
        return tool_calls(self.calls, tool)

    def submit(self, data: dict[str, Any]) -> Process:
        return self.colony.client.submit_func_spec(data, self.colony.user_prvkey)

    def finished(self, process: Process, timeout: float = 60.0) -> Process:
        return wait_state(self.colony.client, process, self.colony.user_prvkey, timeout=timeout)

    def log(self, process: Process) -> str:
        return log_text(self.colony.client, self.colony.colonyname, process.processid,
                        self.colony.user_prvkey)[0]

    def attributes(self, process: Process) -> dict[str, str]:
        current = self.colony.client.get_process(process.processid, self.colony.user_prvkey)
        return {attribute.key: attribute.value for attribute in current.attributes}

    def jobid(self, process: Process) -> str:
        return wait_until(lambda: self.attributes(process).get("slurm.jobid"), 30, "the Slurm job id")


def spec(colony: ColonyEnv, cmd: str, *args: str, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(REFERENCE)
    data["conditions"]["colonyname"] = colony.colonyname
    data["kwargs"] = {"cmd": cmd, "args": list(args)}
    return with_changes(data, **changes)


@pytest.fixture(scope="module")
def hpc(admin_dsn: str, template_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hpc]:
    require_slurm()
    base = tmp_path_factory.mktemp("slurm")
    name = f"colonies_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin_dsn, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"))
    try:
        with (running_slurm(base / "cluster") as slurm,
              ServerThread(_with_database(admin_dsn, name)) as server,
              Colonies(server.host, server.port) as client):
            colony = make_colony(client, server)
            prvkey = colony.add_executor("hpc-1", EXECUTORTYPE)
            counting_tools(base / "bin", base / "calls.txt")
            env = Hpc(colony, slurm, base, base / "calls.txt", prvkey)
            try:
                env.start()
                yield env
            finally:
                for executor in env.started:
                    executor.stop()
    finally:
        asyncio.run(_admin(admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="module")
def overtime(hpc: Hpc) -> Process:
    """A job past its walltime, submitted first: Slurm takes 60-90 s to time it out."""
    return hpc.submit(spec(hpc.colony, "sleep", "300", conditions={"walltime": 1, "cpu": ""}))


def test_reference_spec_runs_as_a_slurm_job_with_its_output_in_the_log(hpc: Hpc, overtime: Process) -> None:
    done = hpc.finished(hpc.submit(spec(hpc.colony, "echo", "hello", "world")))
    assert done.state == wire.SUCCESS, done.errors
    assert done.output == ["hello world"]
    assert "hello world" in hpc.log(done)
    attributes = hpc.attributes(done)
    script = Path(attributes["slurm.script"]).read_text()
    assert attributes["slurm.jobid"] and Path(attributes["slurm.workdir"]).is_dir()
    for line in ("--nodes=1", "--ntasks-per-node=1", "--cpus-per-task=1", "--mem=64M", "--time=3:20",
                 "--export=NONE", f"--job-name=colonies-{done.processid}"):
        assert f"#SBATCH {line}" in script
    assert "srun --export=ALL echo hello world" in script


def test_the_result_file_is_the_output_and_a_bad_spec_names_its_field(hpc: Hpc) -> None:
    writes = hpc.submit(spec(hpc.colony, "sh", "-c", 'echo \'{"answer": 42}\' > "$COLONIES_OUTPUT"'))
    bad = hpc.submit(spec(hpc.colony, "echo", kwargs={"cmd": "echo", "args": "not a list"}))
    assert hpc.finished(writes).output == [{"answer": 42}]
    failed = hpc.finished(bad)
    assert failed.state == wire.FAILED and "kwargs['args']" in failed.errors[0], failed.errors


def test_exit_code_3_fails_the_process_naming_it(hpc: Hpc) -> None:
    done = hpc.finished(hpc.submit(spec(hpc.colony, "sh", "-c", "echo going wrong; exit 3")))
    assert done.state == wire.FAILED
    assert "exit code 3" in done.errors[0], done.errors
    assert "going wrong" in "\n".join(done.errors)


def test_no_executor_secret_reaches_the_job(hpc: Hpc) -> None:
    done = hpc.finished(hpc.submit(spec(hpc.colony, "env", env={"MINE": "given"})))
    assert done.state == wire.SUCCESS, done.errors
    text = hpc.log(done)
    assert "MINE=given" in text and "COLONIES_PROCESS_ID=" in text
    for secret in ("COLONIES_PRVKEY", "COLONIES_SERVER", "COLONIES_COLONY", "AWS_", "aws-secret", hpc.prvkey):
        assert secret not in text
    assert hpc.prvkey not in Path(hpc.attributes(done)["slurm.script"]).read_text()


def test_cancelling_the_process_cancels_its_job(hpc: Hpc) -> None:
    process = hpc.submit(spec(hpc.colony, "sleep", "300"))
    jobid = hpc.jobid(process)
    wait_until(lambda: hpc.slurm.queue().get(jobid) == "RUNNING", 30, "the job to run")
    hpc.colony.client.cancel_process(process.processid, hpc.colony.user_prvkey)
    cancelled = time.monotonic()
    wait_until(lambda: jobid not in hpc.slurm.queue(), 15, "the job to leave squeue")
    assert time.monotonic() - cancelled < 10


def test_maxexectime_cancels_the_job_and_an_image_without_a_runtime_fails_clearly(hpc: Hpc) -> None:
    late = hpc.submit(spec(hpc.colony, "sleep", "300", maxexectime=3))
    image = hpc.submit(spec(hpc.colony, "echo", "hi", kwargs={"cmd": "echo", "docker-image": "ubuntu:20.04"}))
    jobid = hpc.jobid(late)
    failed = hpc.finished(image)
    assert failed.state == wire.FAILED
    assert "COLONIES_SLURM_CONTAINER_RUNTIME" in failed.errors[0], failed.errors
    wait_until(lambda: jobid not in hpc.slurm.queue(), 20, "the job past its maxexectime to be cancelled")
    assert hpc.finished(late).state == wire.FAILED


def test_an_image_runs_in_podman_on_the_node(hpc: Hpc) -> None:
    require_podman()
    busybox = build_busybox()
    prvkey = hpc.colony.add_executor("hpc-podman", "hpc-podman-executor")
    with hpc.executor_process(prvkey, "podman", COLONIES_SLURM_CONTAINER_RUNTIME="podman") as executor:
        executor.wait_ready()
        data = spec(hpc.colony, "sh", "-c", 'echo "in $MINE"; echo 7 > "$COLONIES_OUTPUT"',
                    env={"MINE": "busybox"}, conditions={"executortype": "hpc-podman-executor"})
        data["kwargs"]["docker-image"] = busybox
        done = hpc.finished(hpc.submit(data))
    assert done.state == wire.SUCCESS, (done.errors, hpc.log(done))
    assert done.output == [7] and "busybox" in hpc.log(done)


def test_two_jobs_run_side_by_side_while_a_third_pends(hpc: Hpc) -> None:
    # the node has 8 CPUs, the overtime job holds one: two 3-CPU jobs fit, a third does not
    marker = hpc.workdir / f"release-{uuid.uuid4().hex[:6]}"
    wait = f"while [ ! -e {marker} ]; do sleep 0.2; done"
    three_cpus = spec(hpc.colony, "sh", "-c", wait, conditions={"cpu": "3000m"})
    processes = [hpc.submit(three_cpus) for _ in range(3)]
    jobids = [hpc.jobid(process) for process in processes]

    def states() -> list[str] | None:
        queue = hpc.slurm.queue()
        found = sorted(queue.get(jobid, "") for jobid in jobids)
        return found if found == ["PENDING", "RUNNING", "RUNNING"] else None

    wait_until(states, 30, "two jobs running and one pending")
    marker.touch()
    assert all(hpc.finished(process).state == wire.SUCCESS for process in processes)


def greet(name: str) -> str:
    print(f"greeting {name} from the cluster")
    return f"hello {name}"


def test_a_shipped_python_function_runs_as_a_job(hpc: Hpc) -> None:
    process = hpc.submit(func_spec(greet, ["slurm"], hpc.colony.colonyname, EXECUTORTYPE, maxretries=0))
    done = hpc.finished(process)
    assert done.state == wire.SUCCESS, done.errors
    assert done.output == ["hello slurm"]
    assert "greeting slurm from the cluster" in hpc.log(done)
    worker_job = Path(hpc.attributes(done)["slurm.workdir"]) / "worker-job.json"
    assert worker_job.stat().st_mode & 0o077 == 0  # holds the executor's key: the owner's only


def shout_files():
    import os
    import pathlib

    texts = [p.read_text().upper() for p in sorted(pathlib.Path("in").glob("*.txt"))]
    return [os.getcwd() == os.environ["COLONIES_FS_DIR"], texts]


def test_fs_dirs_are_on_the_shared_filesystem_for_commands_and_functions(hpc: Hpc) -> None:
    client, name, key = hpc.colony.client, hpc.colony.colonyname, hpc.colony.user_prvkey
    client.upload_data(name, key, filename="a.txt", data=b"quiet", label="/hpc/in")
    fs = {"dirs": [{"label": "/hpc/in", "dir": "/in"}, {"label": "/hpc/out", "dir": "/out"}]}
    script = 'tr a-z A-Z < "$COLONIES_FS_DIR/in/a.txt" > "$COLONIES_FS_DIR/out/A.txt"'
    command = hpc.submit(spec(hpc.colony, "sh", "-c", script, fs=fs))
    function = hpc.submit(func_spec(shout_files, [], name, EXECUTORTYPE, maxretries=0,
                                    fs=Fs(dirs=[{"label": "/hpc/in", "dir": "in"}])))
    assert hpc.finished(command).state == wire.SUCCESS, hpc.finished(command).errors
    assert client.download_data(name, key, label="/hpc/out", filename="A.txt") == b"QUIET"
    done = hpc.finished(function)
    assert (done.state, done.output) == (wire.SUCCESS, [[True, ["QUIET"]]]), done.errors
    assert not list((hpc.workdir / "jobs" / "fs").iterdir())  # both cleaned up


def test_twenty_jobs_take_one_status_query_per_interval(hpc: Hpc) -> None:
    before = {tool: len(hpc.call_lines(tool)) for tool in ("sbatch", "squeue")}
    started = time.time()
    processes = [hpc.submit(spec(hpc.colony, "echo", f"job {n}", conditions={"cpu": "", "mem": ""}))
                 for n in range(20)]
    assert all(hpc.finished(process, 90).state == wire.SUCCESS for process in processes)
    elapsed = time.time() - started
    squeues = [(t, args) for t, args in hpc.call_lines("squeue")[before["squeue"]:] if "--me" not in args]
    assert len(hpc.call_lines("sbatch")) - before["sbatch"] == 20
    gaps = [later[0] - earlier[0] for earlier, later in zip(squeues, squeues[1:], strict=False)]
    assert min(gaps) >= POLL_MIN * 0.8, gaps  # one round per interval, whatever the number of jobs
    assert len(squeues) <= elapsed / POLL_MIN + 2
    assert max(args.count(",") for _, args in squeues) >= 5  # many jobs in one query
    print(f"20 jobs in {elapsed:.1f} s: {20 / elapsed:.1f} jobs/s, {len(squeues)} status calls")


def test_kill_9_and_restart_takes_the_jobs_up_again(hpc: Hpc, overtime: Process) -> None:
    marker = hpc.workdir / f"release-{uuid.uuid4().hex[:6]}"
    wait = f"while [ ! -e {marker} ]; do sleep 0.2; done; echo released"
    processes = [hpc.submit(spec(hpc.colony, "sh", "-c", wait)) for _ in range(2)]
    jobids = [hpc.jobid(process) for process in processes]
    wait_until(lambda: all(hpc.slurm.queue().get(j) == "RUNNING" for j in jobids), 30, "the jobs to run")
    sbatches = len(hpc.call_lines("sbatch"))
    hpc.executor.signal(signal.SIGKILL)
    hpc.executor.wait_exit(30)
    marker.touch()  # one finishes while the executor is away...
    restarted = hpc.start()
    taken = re.search(r"Taking up (\d+) Slurm job", restarted.stdout)
    assert taken and int(taken.group(1)) >= 2, restarted.stdout  # (and the overtime job, if it runs)
    for process in processes:
        done = hpc.finished(process)
        assert done.state == wire.SUCCESS and done.output == ["released"], done.errors
    assert len(hpc.call_lines("sbatch")) == sbatches  # none submitted twice


def test_walltime_exceeded_fails_as_timeout(hpc: Hpc, overtime: Process) -> None:
    done = hpc.finished(overtime, timeout=150)
    assert done.state == wire.FAILED
    assert "TIMEOUT" in done.errors[0], done.errors


def test_sigterm_leaves_running_jobs_to_the_cluster(hpc: Hpc) -> None:
    process = hpc.submit(spec(hpc.colony, "sleep", "300"))
    jobid = hpc.jobid(process)
    wait_until(lambda: hpc.slurm.queue().get(jobid) == "RUNNING", 30, "the job to run")
    hpc.executor.signal(signal.SIGTERM)
    assert hpc.executor.wait_exit(30) == 0
    assert hpc.slurm.queue().get(jobid) == "RUNNING"
    current = hpc.colony.client.get_process(process.processid, hpc.colony.user_prvkey)
    assert current.state == wire.RUNNING  # still this executor's, for its next start
    hpc.start()
    hpc.colony.client.cancel_process(process.processid, hpc.colony.user_prvkey)
    wait_until(lambda: jobid not in hpc.slurm.queue(), 15, "the job to leave squeue")
