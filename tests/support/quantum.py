"""Qiskit for the tests: :func:`require_qiskit` skips a test when qiskit, qiskit-aer or
qiskit-ibm-runtime is not installed, except in CI (``CI=true``), where it fails: CI installs them
(the ``[test]`` extra includes ``[quantum]``). And the circuits the tests run."""

from __future__ import annotations

import importlib.util
import os

import pytest

PACKAGES = ("qiskit", "qiskit_aer", "qiskit_ibm_runtime", "qiskit_qasm3_import")

BELL_QASM2 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""

BELL_QASM3 = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""


def require_qiskit() -> None:
    """Return if the quantum packages are installed; else skip (fail in CI) naming the missing ones."""
    missing = [name for name in PACKAGES if importlib.util.find_spec(name) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed (pip install -e '.[quantum]')"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason + " (in CI, with CI=true, this fails)")


def ghz(qubits: int) -> str:
    """An OpenQASM 2 GHZ state on ``qubits`` qubits, all measured."""
    lines = ['OPENQASM 2.0;', 'include "qelib1.inc";', f"qreg q[{qubits}];", f"creg c[{qubits}];", "h q[0];"]
    lines += [f"cx q[{i}],q[{i + 1}];" for i in range(qubits - 1)]
    return "\n".join([*lines, "measure q -> c;", ""])


def long_circuit(qubits: int = 22, layers: int = 400) -> str:
    """A circuit that takes Aer minutes: ``layers`` of rotations and a CNOT chain, no structure to
    simplify (20 qubits and 50 layers take about 10 s on one core)."""
    lines = ['OPENQASM 2.0;', 'include "qelib1.inc";', f"qreg q[{qubits}];", f"creg c[{qubits}];"]
    for layer in range(layers):
        lines += [f"rx({0.1 + layer * 0.01 + i * 0.001:.4f}) q[{i}];" for i in range(qubits)]
        lines += [f"cx q[{i}],q[{i + 1}];" for i in range(qubits - 1)]
    return "\n".join([*lines, "measure q -> c;", ""])
