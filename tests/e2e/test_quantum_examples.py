"""The quantum examples run as a user runs them (``python examples/...``) against a real server with
real executors: the fan-out over the simulators (python + quantum), the cross-platform workflow
python -> container -> quantum -> python on podman, and the same with the prepare step as a job on
a real single-node Slurm."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ColonyEnv, own_colony
from tests.executors.harness import RunningExecutor, executor_env, starting
from tests.support.images import build_python, require_podman
from tests.support.quantum import require_qiskit
from tests.support.slurm import require_slurm, running_slurm

pytestmark = [pytest.mark.slow, pytest.mark.quantum]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Colony:
    colony: ColonyEnv
    start: Callable[..., RunningExecutor]
    workdir: Path

    def run(self, example: str, *args: str, **env: str) -> list[str]:
        """Run ``examples/<example>`` as the colony's user; its stdout lines (AssertionError on failure)."""
        variables = {"COLONIES_PRVKEY": self.colony.user_prvkey, **env}
        env = executor_env(self.colony.server.port, self.colony.colonyname, **variables)
        done = subprocess.run([sys.executable, str(EXAMPLES / example), *args], capture_output=True,
                              text=True, env=env, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.splitlines()


@pytest.fixture(scope="module")
def colony(admin_dsn: str, template_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Colony]:
    """A server with a python and a quantum executor; tests start the others they need."""
    require_qiskit()
    workdir = tmp_path_factory.mktemp("quantum-examples")
    with own_colony(admin_dsn) as env:
        keys = (env.server.port, env.colonyname, env.colony_prvkey, workdir)
        with starting("python", *keys) as start_python, starting("quantum", *keys) as start:
            start_python("--concurrency", "2")
            start("--concurrency", "2")
            yield Colony(env, start, workdir)


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
