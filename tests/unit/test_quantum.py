"""Unit tests of the quantum executor's parts that need no simulator: its settings, how the
OpenQASM version is told, the IBM service's errors as one line, and the SDK's circuit_spec."""

from __future__ import annotations

import pytest

from executors.config import ConfigError
from executors.quantum_backends import ibm_problem
from executors.quantum_circuits import _declared_version
from executors.quantum_settings import QuantumSettings
from pycolonies.quantum import circuit_spec, to_qasm
from tests.support.quantum import BELL_QASM2, BELL_QASM3, require_qiskit


def test_settings_from_the_environment() -> None:
    settings = QuantumSettings.from_env({
        "COLONIES_QUANTUM_MAX_SHOTS": "500", "COLONIES_QUANTUM_MAX_QUBITS": "10",
        "COLONIES_QUANTUM_FAKE_BACKENDS": " fake_manila , fake_nairobi ", "COLONIES_QUANTUM_IBM_TOKEN": "t"})
    assert (settings.max_shots, settings.max_qubits) == (500, 10)
    assert settings.fake_backends == ("fake_manila", "fake_nairobi") and settings.ibm_token == "t"
    assert QuantumSettings.from_env({}) == QuantumSettings()
    assert QuantumSettings.from_env(settings.to_env()) == settings  # what the workers read back


@pytest.mark.parametrize(("env", "message"), [
    ({"COLONIES_QUANTUM_MAX_SHOTS": "many"}, "COLONIES_QUANTUM_MAX_SHOTS must be a whole number"),
    ({"COLONIES_QUANTUM_MAX_QUBITS": "0"}, "COLONIES_QUANTUM_MAX_QUBITS must be at least 1"),
    ({"COLONIES_QUANTUM_FAKE_BACKENDS": "manila"}, "'manila' is not the name of a fake backend"),
])
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        QuantumSettings.from_env(env)


def test_the_header_tells_the_openqasm_version() -> None:
    assert _declared_version(BELL_QASM2) == "2.0"
    assert _declared_version("// a comment\n  OPENQASM 3;\nqubit q;") == "3"
    assert _declared_version("qreg q[1];") == ""


class _Unhelpful(Exception):
    pass


def test_an_ibm_failure_with_a_network_cause_is_a_network_error() -> None:
    settings = QuantumSettings(ibm_token="t")
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as cause:
            raise _Unhelpful("Unable to retrieve instances") from cause
    except _Unhelpful as exc:
        text = ibm_problem(exc, settings)
    assert text.startswith("network error: the IBM Quantum service (channel ibm_quantum_platform) cannot be "
                           "reached: ConnectionRefusedError:")
    assert ibm_problem(AttributeError("'NoneType' object has no attribute 'get'"), settings).startswith(
        "network error:")
    assert ibm_problem(_Unhelpful("bad token"), settings) == (
        "the IBM Quantum service (channel ibm_quantum_platform) refused the account: _Unhelpful: bad token")


def test_circuit_spec_from_openqasm_text() -> None:
    spec = circuit_spec(BELL_QASM3, "dev", shots=2000, backend="fake_manila", seed=3, nodename="bell")
    assert (spec.funcname, spec.nodename, spec.args) == ("run_circuit", "bell", [BELL_QASM3])
    assert spec.kwargs == {"shots": 2000, "backend": "fake_manila", "optimization_level": 1, "seed": 3}
    assert spec.conditions.executortype == "quantum-executor" and spec.conditions.colonyname == "dev"
    assert circuit_spec(None, "dev").args == [] and "seed" not in circuit_spec(None, "dev").kwargs
    with pytest.raises(TypeError, match="OpenQASM text or a qiskit QuantumCircuit"):
        to_qasm(42)


def test_a_quantum_circuit_becomes_openqasm() -> None:
    require_qiskit()
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    assert to_qasm(circuit).startswith("OPENQASM 2.0;") and "cx q[0],q[1];" in to_qasm(circuit)
