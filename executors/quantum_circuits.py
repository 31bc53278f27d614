"""The functions the quantum executor offers, run in its worker subprocess (where qiskit is
imported): ``run_circuit`` and ``list_backends``. Bad input raises
:class:`~executors.python_worker.Refused` with a message naming the field, so the process fails
with that message and no traceback. The limits come from ``COLONIES_QUANTUM_*``
(:mod:`executors.quantum_settings`), which the worker inherits from the executor.
"""

from __future__ import annotations

import time
from typing import Any

from executors.python_worker import Refused
from executors.quantum_backends import IbmUnreachable, ibm_backend, ibm_problem, simulator
from executors.quantum_backends import list_backends as offered_backends
from executors.quantum_settings import IBM_PREFIX, IDEAL, QuantumSettings

DEFAULT_SHOTS = 1024


def run_circuit(
    qasm: str,
    shots: int = DEFAULT_SHOTS,
    backend: str = IDEAL,
    seed: int | None = None,
    optimization_level: int = 1,
) -> dict[str, Any]:
    """Run the OpenQASM 2 or 3 circuit ``qasm`` ``shots`` times on ``backend``; return its
    ``counts`` (bitstring -> how often) with ``backend``, ``shots``, ``qubits``, ``depth`` (after
    transpiling), ``duration`` (seconds the run took), ``seed`` and ``optimization_level``."""
    settings = QuantumSettings.from_env()
    _check_arguments(qasm, shots, backend, seed, optimization_level, settings)
    circuit = parse_qasm(qasm)
    if circuit.num_clbits == 0:
        raise Refused("qasm: the circuit measures nothing, so it has no counts: add measure instructions")
    if backend.startswith(IBM_PREFIX) and settings.ibm_token:
        return _on_ibm(circuit, shots, backend, seed, optimization_level, settings)
    target, most = simulator(backend, settings)
    _check_qubits(circuit.num_qubits, most, backend)
    from qiskit import transpile

    compiled = transpile(circuit, target, optimization_level=optimization_level, seed_transpiler=seed)
    started = time.monotonic()
    result = target.run(compiled, shots=shots, seed_simulator=seed).result()
    duration = time.monotonic() - started
    return _output(result.get_counts(), backend, shots, circuit.num_qubits, compiled.depth(), duration,
                   seed, optimization_level)


def list_backends() -> list[dict[str, Any]]:
    """The backends this executor runs circuits on: ``name``, ``qubits``, ``kind`` ("ideal
    simulator", "noisy simulator" or "IBM Quantum") and the ``device`` a noisy simulator imitates."""
    offered, problem = offered_backends(QuantumSettings.from_env())
    if problem:
        print(f"real IBM Quantum backends not listed: {problem}")
    return [backend.to_dict() for backend in offered]


def parse_qasm(qasm: str) -> Any:
    """The circuit of OpenQASM 2 or 3 text (its ``OPENQASM 3`` header decides); Refused with the
    parser's message."""
    from qiskit import qasm2, qasm3

    version = 3 if _declared_version(qasm).startswith("3") else 2
    try:
        if version == 3:
            return qasm3.loads(qasm)
        return qasm2.loads(qasm, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    except Exception as exc:
        raise Refused(f"qasm: not a valid OpenQASM {version} circuit: {exc}") from None


def _declared_version(qasm: str) -> str:
    for line in qasm.replace(";", ";\n").splitlines():
        text = line.split("//", 1)[0].strip()
        if text:
            return text.removeprefix("OPENQASM").strip().rstrip(";") if text.startswith("OPENQASM") else ""
    return ""


def _check_arguments(qasm: Any, shots: Any, backend: Any, seed: Any, optimization_level: Any,
                     settings: QuantumSettings) -> None:
    if not isinstance(qasm, str) or not qasm.strip():
        raise Refused(f"qasm: expected OpenQASM 2 or 3 text, got {_kind(qasm)}")
    if not isinstance(backend, str) or not backend:
        raise Refused(f"backend: expected a backend name, got {_kind(backend)}")
    if not _whole(shots) or shots < 1:
        raise Refused(f"shots: expected a whole number of at least 1, got {shots!r}")
    if shots > settings.max_shots:
        raise Refused(f"shots: {shots} is over this executor's limit of {settings.max_shots} "
                      "(COLONIES_QUANTUM_MAX_SHOTS)")
    if seed is not None and (not _whole(seed) or seed < 0):
        raise Refused(f"seed: expected a whole number of at least 0 or null, got {seed!r}")
    if not _whole(optimization_level) or not 0 <= optimization_level <= 3:
        raise Refused(f"optimization_level: expected 0, 1, 2 or 3, got {optimization_level!r}")


def _check_qubits(qubits: int, most: int, backend: str) -> None:
    if qubits > most:
        raise Refused(f"qasm: the circuit has {qubits} qubits, more than the {most} of backend {backend!r}")


def _on_ibm(circuit: Any, shots: int, backend: str, seed: int | None, optimization_level: int,
            settings: QuantumSettings) -> dict[str, Any]:
    """Run on a real IBM Quantum backend with the runtime's Sampler."""
    from qiskit import transpile
    from qiskit_ibm_runtime import SamplerV2

    device = ibm_backend(backend, settings)
    _check_qubits(circuit.num_qubits, device.num_qubits, backend)
    compiled = transpile(circuit, device, optimization_level=optimization_level, seed_transpiler=seed)
    started = time.monotonic()
    try:
        pub = SamplerV2(mode=device).run([compiled], shots=shots).result()[0]
    except Exception as exc:
        raise IbmUnreachable(ibm_problem(exc, settings)) from None
    duration = time.monotonic() - started
    return _output(pub.join_data().get_counts(), backend, shots, circuit.num_qubits, compiled.depth(),
                   duration, seed, optimization_level)


def _output(counts: dict[str, int], backend: str, shots: int, qubits: int, depth: int, duration: float,
            seed: int | None, optimization_level: int) -> dict[str, Any]:
    return {"counts": {str(key): int(value) for key, value in counts.items()}, "backend": backend,
            "shots": shots, "qubits": qubits, "depth": depth, "duration": round(duration, 6), "seed": seed,
            "optimization_level": optimization_level}


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return "empty text" if value == "" else f"a {type(value).__name__}"
