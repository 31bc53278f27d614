"""The quantum executor (``--type quantum``, executor type ``quantum-executor``): runs OpenQASM 2/3
circuits on the backends it offers and closes each process with the measurement counts.

It offers two functions, run by the python kind's worker machinery in a fresh, killable subprocess
where qiskit is imported (:mod:`executors.quantum_circuits`):

* ``run_circuit(qasm, shots=1024, backend="aer_simulator", seed=None, optimization_level=1)``
  -> ``{"counts", "backend", "shots", "qubits", "depth", "duration", "seed", "optimization_level"}``;
* ``list_backends()`` -> ``[{"name", "qubits", "kind", "device"}, ...]``.

The backends (:mod:`executors.quantum_backends`) are found at start, in a subprocess, and registered
as the executor's capabilities (one ``hardware`` entry per backend, with its qubits). Cancellation,
``maxexectime`` and a shutdown past the grace period kill the worker at once. No shipped code runs
here: only these two functions. Settings: :class:`~executors.quantum_settings.QuantumSettings`
(given, or from ``COLONIES_QUANTUM_*``; the workers get them in their environment).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from typing import Any

from executors.base import BaseExecutor, Job, JobFailed
from executors.config import ConfigError, ExecutorConfig
from executors.python_runner import ClientInfo, RunnerSettings, run_process, worker_env
from executors.quantum_settings import QuantumSettings

log = logging.getLogger("executors")

CIRCUITS_MODULE = "executors.quantum_circuits"
FUNCTIONS = {
    "run_circuit": ["qasm", "shots", "backend", "seed", "optimization_level"],
    "list_backends": [],
}
SOFTWARE = ("qiskit", "qiskit-aer", "qiskit-qasm3-import", "qiskit-ibm-runtime")
_LIST_TIMEOUT = 180.0
_INSTALL = "pip install 'colonies-py[quantum]'"


class QuantumExecutor(BaseExecutor):
    executortype = "quantum-executor"

    def __init__(
        self,
        config: ExecutorConfig | None = None,
        *,
        settings: QuantumSettings | None = None,
        python: str = sys.executable,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(config, announce=announce)
        self.settings = settings
        self.runner = RunnerSettings(allow_code=False, python=python)
        self.backends: list[dict[str, Any]] = []

    def setup(self) -> None:
        self.settings = (self.settings or QuantumSettings.from_env()).checked()
        os.environ.update(self.settings.to_env())  # what the workers read (they inherit the environment)
        self.backends, problem = _find_backends(self.runner.python)
        listing = ", ".join(f"{b['name']} ({b['qubits']} qubits)" for b in self.backends)
        self._announce(f"Backends: {listing}")
        if problem:
            log.warning("real IBM Quantum backends are not offered: %s", problem)

    def functions(self) -> list[tuple[str, list[str]]]:
        return list(FUNCTIONS.items())

    def capabilities(self) -> dict[str, Any]:
        hardware = [{"model": b["name"], "nodes": 1, "qubits": b["qubits"], "kind": b["kind"]}
                    for b in self.backends]
        software = [{"name": name, "type": "quantum", "version": _version(name)} for name in SOFTWARE]
        return {"hardware": hardware, "software": software}

    async def execute(self, job: Job) -> list[Any]:
        name = job.funcname
        if name not in FUNCTIONS:
            raise JobFailed(f"funcname: the quantum executor runs {' and '.join(FUNCTIONS)}, not {name!r}")
        config, me = job.config, job.executor
        client = ClientInfo(host=config.host, port=config.port, tls=config.tls, colonyname=me.colonyname,
                            executorid=me.executorid, executor_prvkey=me.prvkey)
        return await run_process(job.process, self.runner, client, job.log, job.timeout,
                                 target=f"{CIRCUITS_MODULE}.{name}")


def _find_backends(python: str) -> tuple[list[dict[str, Any]], str]:
    """The offered backends, listed by ``python -m executors.quantum_backends`` (qiskit is imported
    there, not here), and why the IBM ones are missing; ConfigError when they cannot be listed."""
    command = [python, "-m", "executors.quantum_backends"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=worker_env(),
                              timeout=_LIST_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot list the quantum backends with {python!r}: {exc}") from None
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        answer = {}
    if "backends" in answer:
        return answer["backends"], answer.get("ibm_problem", "")
    error = answer.get("error") or (done.stderr.strip().splitlines() or ["no output"])[-1]
    if "No module named" in error:
        raise ConfigError(f"the quantum executor needs qiskit, qiskit-aer and qiskit-ibm-runtime "
                          f"({_INSTALL}): {error}")
    raise ConfigError(f"cannot list the quantum backends: {error}")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""
