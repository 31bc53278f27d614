"""The quantum examples run as a user runs them (``python examples/...``) against a real server with
real executors: the fan-out over the simulators (python + quantum), the cross-platform workflow
python -> container -> quantum -> python on podman, and the same with the prepare step as a job on
a real single-node Slurm."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pycolonies import wire
from pycolonies.models import Process
from tests.conftest import ColonyEnv, own_colony
from tests.executors.harness import FINAL, RunningExecutor, executor_env, starting
from tests.support import wait_until
from tests.support.images import build_python, require_podman
from tests.support.processes import descendants
from tests.support.quantum import require_qiskit
from tests.support.slurm import require_slurm, running_slurm

pytestmark = [pytest.mark.slow, pytest.mark.quantum]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Colony:
    colony: ColonyEnv
    start: Callable[..., RunningExecutor]
    workdir: Path

    quantum: RunningExecutor

    def env(self, **variables: str) -> dict[str, str]:
        """The environment an example runs in: the colony's user's."""
        return executor_env(self.colony.server.port, self.colony.colonyname,
                            COLONIES_PRVKEY=self.colony.user_prvkey, **variables)

    def run(self, example: str, *args: str, **env: str) -> list[str]:
        """Run ``examples/<example>``; its stdout lines (AssertionError on failure)."""
        done = subprocess.run([sys.executable, str(EXAMPLES / example), *args], capture_output=True,
                              text=True, env=self.env(**env), timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.splitlines()

    def graph(self, lines: list[str]) -> list[Process]:
        """The processes of the session the example submitted (its first line names the graph)."""
        graphid = lines[0].split()[2]
        client, key = self.colony.client, self.colony.user_prvkey
        return [client.get_process(pid, key) for pid in client.get_processgraph(graphid, key).processids]


@pytest.fixture(scope="module")
def colony(admin_dsn: str, template_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Colony]:
    """A server with a python and a quantum executor; tests start the others they need."""
    require_qiskit()
    workdir = tmp_path_factory.mktemp("quantum-examples")
    with own_colony(admin_dsn) as env:
        keys = (env.server.port, env.colonyname, env.colony_prvkey, workdir)
        with starting("python", *keys) as start_python, starting("quantum", *keys) as start:
            start_python("--concurrency", "2")
            yield Colony(env, start, workdir, start("--concurrency", "2"))


def test_the_fan_out_compares_each_simulator_with_the_ideal_one(colony: Colony) -> None:
    lines = colony.run("quantum_fan_out.py")
    assert "backends: aer_simulator, fake_manila, fake_lima" in lines
    result = next(line for line in lines if line.startswith("result: "))
    ideal, noisy = result.removeprefix("result: ideal ").split(", noisy ")
    assert float(ideal) == 0.0
    low, high = (float(value) for value in noisy.split("-"))
    assert 0.0 < low <= high < 0.5, lines  # noise, but still a GHZ state


def test_the_cross_platform_workflow_with_a_container(colony: Colony) -> None:
    require_podman()
    image = build_python()
    env = colony.colony
    with starting("container", env.server.port, env.colonyname, env.colony_prvkey, colony.workdir) as start:
        start()
        lines = colony.run("quantum_cross_platform.py", COLONIES_EXAMPLE_IMAGE=image)
    assert "result: 111 p=0.98 on aer_simulator" in lines, lines


@pytest.mark.slurm
def test_the_cross_platform_workflow_with_slurm(colony: Colony) -> None:
    require_slurm()
    env = colony.colony
    with running_slurm(colony.workdir / "cluster") as slurm, \
            starting("slurm", env.server.port, env.colonyname, env.colony_prvkey, colony.workdir,
                     COLONIES_SLURM_WORKDIR=str(colony.workdir / "jobs"), COLONIES_SLURM_POLL_MIN="0.5",
                     COLONIES_SLURM_POLL_MAX="1", **slurm.env) as start:
        start()
        lines = colony.run("quantum_cross_platform.py", "--prepare-on", "slurm", "--backend", "fake_manila")
    result = next(line for line in lines if line.startswith("result: "))
    assert result.startswith("result: 111 p=0.") and result.endswith(" on fake_manila"), lines


def results(process: Process) -> dict[str, object]:
    return {a.key: json.loads(a.value) for a in process.attributes if a.key.startswith("readout.")}


def test_the_calibration_session_stores_a_result_per_qubit(colony: Colony) -> None:
    lines = colony.run("quantum_calibration.py")
    assert "result: calibrated 5 qubits of fake_manila" in lines, lines
    processes = {p.spec.nodename: p for p in colony.graph(lines)}
    assert len(processes) == 2 + 3 * 5 and all(p.state == wire.SUCCESS for p in processes.values())
    for qubit in range(5):
        post = processes[f"postprocess_q{qubit}"]
        assert results(post) == {f"readout.q{qubit}": post.output[0]}
        assert 0 <= post.output[0]["readout_error"] < 0.2 and post.output[0]["backend"] == "fake_manila"


def test_cancelling_a_session_stops_its_circuits_and_leaves_no_half_results(colony: Colony) -> None:
    out = colony.workdir / "calibration-cancel.txt"
    with out.open("w") as stdout:
        example = subprocess.Popen([sys.executable, str(EXAMPLES / "quantum_calibration.py"), "--padding",
                                    "200000"], env=colony.env(), stdout=stdout, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: out.read_text().startswith("Session submitted"), 60, "the session")

        def running_circuits() -> list[Process]:
            return [p for p in colony.graph(out.read_text().splitlines())
                    if p.spec.funcname == "run_circuit" and p.state == wire.RUNNING]

        wait_until(running_circuits, 60, "a circuit to run")
        workers = wait_until(lambda: descendants(colony.quantum.popen.pid), 10, "the quantum worker")
        example.send_signal(signal.SIGINT)
        assert example.wait(30) == 130, out.read_text()
    finally:
        example.kill()
    wait_until(lambda: not descendants(colony.quantum.popen.pid) & workers, 5, "the circuits to be stopped")
    processes = colony.graph(out.read_text().splitlines())
    assert all(p.state in FINAL for p in processes)
    assert any(p.state == wire.CANCELLED for p in processes if p.spec.funcname == "run_circuit")
    for process in processes:
        if process.spec.funcname == "postprocess":
            assert (process.state == wire.SUCCESS) == bool(results(process)), process
