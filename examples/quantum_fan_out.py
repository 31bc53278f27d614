"""One circuit on every simulator the quantum executor offers, side by side, and a final step that
compares their distributions: the total variation distance of each from the ideal result.

    COLONIES_COLONY_NAME=... COLONIES_PRVKEY=<a member's key> python examples/quantum_fan_out.py

It asks the quantum executor for its backends first (``pycolonies.quantum.list_backends``), then
submits a workflow of one ``run_circuit`` per simulator with enough qubits (the ideal
``aer_simulator`` and the noisy ``fake_<device>`` ones) feeding ``compare`` on the python
executor, and prints one line per backend and ``result: ideal 0.000, noisy <min>-<max>``.
"""

from pycolonies import Workflow, colonies_client, func_spec
from pycolonies.quantum import circuit_spec, list_backends

client, colony_name, _, _, prvkey = colonies_client()

GHZ3 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
creg c[3];
h q[0];
cx q[0],q[1];
cx q[1],q[2];
measure q -> c;
"""


def compare(*results, ctx={}):
    def distribution(result):
        return {key: value / result["shots"] for key, value in result["counts"].items()}

    ideal = distribution(next(r for r in results if r["backend"] == "aer_simulator"))
    distances = {}
    for result in results:
        p = distribution(result)
        keys = set(p) | set(ideal)
        distances[result["backend"]] = 0.5 * sum(abs(p.get(k, 0.0) - ideal.get(k, 0.0)) for k in keys)
    return distances


def simulators():
    """The backends of the quantum executor that simulate (ideal and noisy), with 3 qubits or more."""
    offered = list_backends(client, colony_name, prvkey)
    return [b["name"] for b in offered if b["kind"] != "IBM Quantum" and b["qubits"] >= 3]


def main() -> None:
    backends = simulators()
    print("backends:", ", ".join(backends))
    wf = Workflow(colonyname=colony_name)
    f_compare = func_spec(func=compare, args=[], colonyname=colony_name, executortype="python-executor",
                          maxexectime=60, maxwaittime=120)
    for backend in backends:
        run = circuit_spec(GHZ3, colony_name, nodename=f"run_{backend}", shots=4000, backend=backend, seed=5,
                           maxexectime=120, maxwaittime=120, maxretries=0)
        wf.functionspecs.append(run)
        f_compare.conditions.dependencies.append(run.nodename)
    wf.functionspecs.append(f_compare)

    processgraph = client.submit_workflow(wf, prvkey)
    print(f"Workflow submitted: {processgraph.processgraphid}")
    last = client.wait(client.find_process("compare", processgraph.processids, prvkey), 300, prvkey)
    if last.state != 2:
        raise SystemExit(f"the workflow did not succeed: {last.errors}")
    distances = last.output[0]
    for backend, distance in distances.items():
        print(f"{backend:16} total variation distance from ideal {distance:.3f}")
    noisy = [d for b, d in distances.items() if b != "aer_simulator"]
    print(f"result: ideal {distances['aer_simulator']:.3f}, noisy {min(noisy):.3f}-{max(noisy):.3f}")


if __name__ == "__main__":
    main()
