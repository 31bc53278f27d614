"""``colonies executor start --type quantum`` as a real subprocess against a real server, running
circuits on real Qiskit Aer: a Bell pair on the ideal simulator (OpenQASM 2 and 3, and a Qiskit
circuit through the SDK helper) and on a noisy fake IBM device, the backends as capabilities and
through ``list_backends``, bad input failing with messages naming the field, cancellation and
maxexectime killing a long simulation at once, SIGTERM giving a running one back, and an
unreachable IBM service failing with a network error.

One server, colony and executor serve the module (the executor takes a few seconds to start: it
lists its backends with qiskit). Tests that stop their executor start their own, of another type.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pycolonies import wire
from pycolonies.models import Process
from pycolonies.quantum import circuit_spec
from tests.conftest import ColonyEnv, own_colony
from tests.executors.harness import RunningExecutor, log_text, starting, wait_state
from tests.support import wait_until
from tests.support.processes import descendants, pid_gone
from tests.support.quantum import BELL_QASM2, BELL_QASM3, ghz, long_circuit, require_qiskit

pytestmark = [pytest.mark.slow, pytest.mark.quantum]

MAX_SHOTS = 10_000
MAX_QUBITS = 23


@dataclass
class Quantum:
    colony: ColonyEnv
    executor: RunningExecutor
    start: Callable[..., RunningExecutor]

    def submit(self, qasm: str | None, executortype: str = "quantum-executor", **options: Any) -> Process:
        options.setdefault("maxretries", 0)
        spec = circuit_spec(qasm, self.colony.colonyname, executortype=executortype, **options)
        return self.colony.client.submit_func_spec(spec, self.colony.user_prvkey)

    def call(self, funcname: str, *args: Any, **kwargs: Any) -> Process:
        spec = {"funcname": funcname, "args": list(args), "kwargs": kwargs, "maxretries": 0,
                "conditions": {"colonyname": self.colony.colonyname, "executortype": "quantum-executor"}}
        return self.colony.client.submit_func_spec(spec, self.colony.user_prvkey)

    def finished(self, process: Process, timeout: float = 60.0) -> Process:
        return wait_state(self.colony.client, process, self.colony.user_prvkey, timeout=timeout)

    def running(self, process: Process) -> None:
        wait_state(self.colony.client, process, self.colony.user_prvkey, states=[wire.RUNNING])


@pytest.fixture(scope="module")
def quantum(admin_dsn: str, template_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Quantum]:
    require_qiskit()
    with (own_colony(admin_dsn) as colony,
          starting("quantum", colony.server.port, colony.colonyname, colony.colony_prvkey,
                   tmp_path_factory.mktemp("quantum"), COLONIES_QUANTUM_MAX_SHOTS=str(MAX_SHOTS),
                   COLONIES_QUANTUM_MAX_QUBITS=str(MAX_QUBITS)) as start):
        yield Quantum(colony, start("--concurrency", "2"), start)


def shares(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {key: value / total for key, value in counts.items()}


def assert_ideal_bell(output: dict[str, Any]) -> None:
    assert set(output["counts"]) == {"00", "11"}, output
    assert sum(output["counts"].values()) == 2000
    assert all(0.4 <= share <= 0.6 for share in shares(output["counts"]).values()), output


def test_a_bell_pair_on_the_ideal_simulator_in_openqasm_2_and_3(quantum: Quantum) -> None:
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    processes = [quantum.submit(qasm, shots=2000) for qasm in (BELL_QASM2, BELL_QASM3, circuit)]
    for process in processes:
        done = quantum.finished(process)
        assert done.state == wire.SUCCESS, done.errors
        output = done.output[0]
        assert_ideal_bell(output)
        assert output["backend"] == "aer_simulator" and output["shots"] == 2000 and output["qubits"] == 2
        assert output["depth"] >= 2 and output["duration"] >= 0 and output["optimization_level"] == 1


def test_the_same_pair_on_a_noisy_fake_device_shows_01_and_10(quantum: Quantum) -> None:
    done = quantum.finished(quantum.submit(BELL_QASM2, shots=2000, backend="fake_manila", seed=7))
    assert done.state == wire.SUCCESS, done.errors
    counts = done.output[0]["counts"]
    assert {"01", "10"} & set(counts), counts
    assert counts["00"] + counts["11"] > 1600, counts  # still mostly a Bell pair
    assert done.output[0]["backend"] == "fake_manila" and done.output[0]["seed"] == 7


def test_the_backends_are_capabilities_and_listed_by_a_function(quantum: Quantum) -> None:
    colony = quantum.colony
    executor = colony.client.get_executor(colony.colonyname, quantum.executor.name, colony.user_prvkey)
    hardware = {entry["model"]: entry["qubits"] for entry in executor["capabilities"]["hardware"]}
    assert hardware == {"aer_simulator": MAX_QUBITS, "fake_manila": 5, "fake_lima": 5}
    software = {entry["name"] for entry in executor["capabilities"]["software"]}
    assert {"qiskit", "qiskit-aer"} <= software
    listed = quantum.finished(quantum.call("list_backends"))
    assert listed.state == wire.SUCCESS, listed.errors
    assert {(b["name"], b["qubits"], b["kind"]) for b in listed.output[0]} == {
        ("aer_simulator", MAX_QUBITS, "ideal simulator"), ("fake_manila", 5, "noisy simulator"),
        ("fake_lima", 5, "noisy simulator")}
    functions = {f["funcname"] for f in colony.client.get_functions_by_executor(
        colony.colonyname, quantum.executor.name, colony.user_prvkey)}
    assert functions == {"run_circuit", "list_backends"}


BAD_INPUT = [  # (what run_circuit gets, the message it fails with)
    ({"qasm": "OPENQASM 2.0;\nqreg q[1];\nhh q[0];"}, "qasm: not a valid OpenQASM 2 circuit: "),
    ({"qasm": 'OPENQASM 3.0;\nqubit[1] q;\nhh q[0];'}, "qasm: not a valid OpenQASM 3 circuit: "),
    ({"backend": "fake_nowhere"}, "backend: unknown backend 'fake_nowhere'; this executor offers "
                                  "aer_simulator, fake_manila, fake_lima"),
    ({"backend": "ibm_brisbane"}, "need COLONIES_QUANTUM_IBM_TOKEN"),
    ({"qasm": ghz(6), "backend": "fake_manila"}, "qasm: the circuit has 6 qubits, more than the 5 of "
                                                 "backend 'fake_manila'"),
    ({"qasm": ghz(MAX_QUBITS + 1)}, f"the circuit has {MAX_QUBITS + 1} qubits, more than the {MAX_QUBITS}"),
    ({"shots": MAX_SHOTS + 1}, f"shots: {MAX_SHOTS + 1} is over this executor's limit of {MAX_SHOTS}"),
    ({"shots": 0}, "shots: expected a whole number of at least 1, got 0"),
    ({"optimization_level": 7}, "optimization_level: expected 0, 1, 2 or 3, got 7"),
    ({"qasm": 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\nh q[0];'},
     "qasm: the circuit measures nothing"),
]


def test_bad_input_fails_with_a_message_naming_the_field(quantum: Quantum) -> None:
    colony = quantum.colony
    submitted = [(quantum.submit(options.pop("qasm", BELL_QASM2), **options), message)
                 for options, message in ((dict(o), m) for o, m in BAD_INPUT)]
    for process, message in submitted:
        done = quantum.finished(process)
        assert done.state == wire.FAILED
        assert len(done.errors) == 1 and message in done.errors[0], done.errors  # no traceback
        logs, _ = log_text(colony.client, colony.colonyname, done.processid, colony.user_prvkey)
        assert "Traceback" not in logs
    assert quantum.executor.popen.poll() is None


def test_a_long_simulation_is_cancelled_at_once(quantum: Quantum) -> None:
    process = quantum.submit(long_circuit(), shots=10, optimization_level=0)
    quantum.running(process)
    workers = wait_until(lambda: descendants(quantum.executor.popen.pid), 10, "the worker to start")
    time.sleep(1)  # let it get into the simulation (not needed for correctness: it is killed anyway)
    started = time.monotonic()
    quantum.colony.client.cancel_process(process.processid, quantum.colony.user_prvkey)
    wait_until(lambda: all(pid_gone(pid) for pid in workers), 5, "the worker to be killed")
    assert time.monotonic() - started < 2.5
    assert quantum.colony.client.get_process(process.processid, quantum.colony.user_prvkey).state == \
        wire.CANCELLED
    assert quantum.finished(quantum.submit(BELL_QASM2, shots=2000)).state == wire.SUCCESS


def test_maxexectime_stops_a_long_simulation(quantum: Quantum) -> None:
    started = time.monotonic()
    done = quantum.finished(quantum.submit(long_circuit(), shots=10, optimization_level=0, maxexectime=2))
    assert done.state == wire.FAILED and time.monotonic() - started < 10
    assert "maxexectime" in " ".join(done.errors), done.errors


def test_sigterm_gives_a_running_simulation_back(quantum: Quantum) -> None:
    executor = quantum.start("--grace", "0.5", "--executor-type", "quantum-stopping")
    process = quantum.submit(long_circuit(), executortype="quantum-stopping", shots=10, optimization_level=0)
    quantum.running(process)
    workers = wait_until(lambda: descendants(executor.popen.pid), 10, "the worker to start")
    executor.signal(signal.SIGTERM)
    assert executor.wait_exit(30) == 0
    wait_until(lambda: all(pid_gone(pid) for pid in workers), 10, "the worker to be killed")
    released = quantum.colony.client.get_process(process.processid, quantum.colony.user_prvkey)
    assert released.state == wire.WAITING and released.retries == 0
    quantum.colony.client.cancel_process(process.processid, quantum.colony.user_prvkey)


def test_an_unreachable_ibm_service_fails_with_a_network_error(quantum: Quantum) -> None:
    # a proxy on a closed port: the service is unreachable here even where the network is not
    proxy = "http://127.0.0.1:9"
    executor = quantum.start("--executor-type", "quantum-ibm", COLONIES_QUANTUM_IBM_TOKEN="not-a-real-token",
                             COLONIES_QUANTUM_FAKE_BACKENDS="fake_lima", HTTPS_PROXY=proxy, HTTP_PROXY=proxy,
                             https_proxy=proxy, NO_PROXY="", no_proxy="")
    assert "real IBM Quantum backends are not offered: network error" in executor.stderr
    done = quantum.finished(quantum.submit(BELL_QASM2, executortype="quantum-ibm", backend="ibm_brisbane"))
    assert done.state == wire.FAILED and len(done.errors) == 1, done.errors
    assert done.errors[0].startswith("network error: the IBM Quantum service (channel ibm_quantum_platform) "
                                     "cannot be reached: "), done.errors
