"""Function specs for the quantum executor (``colonies executor start --type quantum``).

::

    from pycolonies.quantum import circuit_spec

    bell = 'OPENQASM 2.0; include "qelib1.inc"; qreg q[2]; creg c[2]; h q[0]; cx q[0],q[1]; measure q -> c;'
    process = client.submit_func_spec(circuit_spec(bell, "dev", shots=2000), prvkey)
    counts = client.wait(process, 60, prvkey).output[0]["counts"]   # {"00": 1004, "11": 996}

qiskit is imported only when a ``QuantumCircuit`` is given; OpenQASM text needs nothing more.
"""

from __future__ import annotations

from typing import Any

from pycolonies.functions import func_spec
from pycolonies.models import FuncSpec
from pycolonies.wire import SUCCESS

EXECUTORTYPE = "quantum-executor"
IDEAL = "aer_simulator"


def circuit_spec(
    circuit: Any,
    colonyname: str,
    *,
    shots: int = 1024,
    backend: str = IDEAL,
    seed: int | None = None,
    optimization_level: int = 1,
    executortype: str = EXECUTORTYPE,
    executorname: str | None = None,
    nodename: str | None = None,
    priority: int = 1,
    maxexectime: int = -1,
    maxretries: int = -1,
    maxwaittime: int = -1,
) -> FuncSpec:
    """A spec running ``circuit`` with ``run_circuit`` on the quantum executor.

    ``circuit`` is OpenQASM 2 or 3 text, a Qiskit ``QuantumCircuit`` (exported as OpenQASM 2, or 3
    when 2 cannot express it), or None in a workflow whose parent's output is the OpenQASM text.
    ``nodename`` names the workflow node (default ``run_circuit``); the output is one dict with
    ``counts``, ``backend``, ``shots``, ``qubits``, ``depth``, ``duration``, ``seed`` and
    ``optimization_level``.
    """
    args = [] if circuit is None else [to_qasm(circuit)]
    kwargs: dict[str, Any] = {"shots": shots, "backend": backend, "optimization_level": optimization_level}
    if seed is not None:
        kwargs["seed"] = seed
    spec = func_spec("run_circuit", args, colonyname, executortype, executorname=executorname,
                     priority=priority, maxexectime=maxexectime, maxretries=maxretries,
                     maxwaittime=maxwaittime, kwargs=kwargs)
    if nodename:
        spec.nodename = nodename
    return spec


def to_qasm(circuit: Any) -> str:
    """OpenQASM text for ``circuit`` (text as it is; a ``QuantumCircuit`` exported)."""
    if isinstance(circuit, str):
        return circuit
    if not hasattr(circuit, "num_qubits"):
        raise TypeError(f"circuit must be OpenQASM text or a qiskit QuantumCircuit, "
                        f"not {type(circuit).__name__}")
    from qiskit import qasm2, qasm3  # only here: the SDK does not need qiskit otherwise

    try:
        return qasm2.dumps(circuit)
    except Exception:  # control flow, ... that OpenQASM 2 cannot express
        return qasm3.dumps(circuit)


def list_backends(client: Any, colonyname: str, prvkey: str, *, executortype: str = EXECUTORTYPE,
                  timeout: float = 60) -> list[dict[str, Any]]:
    """The backends a quantum executor offers (``name``, ``qubits``, ``kind``, ``device``): runs its
    ``list_backends`` function and waits for the answer; RuntimeError with the errors if it fails."""
    spec = func_spec("list_backends", [], colonyname, executortype, maxexectime=int(timeout),
                     maxwaittime=int(timeout), maxretries=0)
    done = client.wait(client.submit_func_spec(spec, prvkey), timeout, prvkey)
    if done.state != SUCCESS:
        raise RuntimeError(f"list_backends did not succeed (state {done.state}): {done.errors}")
    return list(done.output[0])
