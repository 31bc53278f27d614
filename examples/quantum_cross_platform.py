"""One workflow across four kinds of executor, each step's output feeding the next:

    fetch (python) -> prepare (container, or Slurm) -> simulate (quantum) -> summarise (python)

* ``fetch`` returns the problem: how many qubits, and a rotation angle for each;
* ``prepare`` is a command (the reference's ``execute`` spec) that reads the problem from
  ``$COLONIES_INPUT`` and writes the OpenQASM 2 circuit to ``$COLONIES_OUTPUT``: in a container
  (``--prepare-on container``, the default; image ``COLONIES_EXAMPLE_IMAGE``, default
  ``python:3.12-slim``) or as a Slurm job (``--prepare-on slurm``, python3 on the cluster);
* ``simulate`` runs the circuit with ``run_circuit`` on the quantum executor (``--backend``,
  default the ideal ``aer_simulator``);
* ``summarise`` turns the counts into the most likely bitstring and its probability.

    COLONIES_COLONY_NAME=... COLONIES_PRVKEY=<a member's key> python examples/quantum_cross_platform.py

It needs a python, a container (or slurm) and a quantum executor in the colony, and prints
``result: <bitstring> p=<probability> on <backend>``.
"""

import argparse
import os

from pycolonies import Workflow, colonies_client, func_spec
from pycolonies.models import Conditions, FuncSpec
from pycolonies.quantum import circuit_spec

client, colony_name, _, _, prvkey = colonies_client()

# prepare: the problem (a JSON list holding fetch's output) in, a JSON list holding the circuit out
PREPARE = """
import json, os
problem = json.load(open(os.environ["COLONIES_INPUT"]))[0]
n = problem["qubits"]
lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{n}];", f"creg c[{n}];"]
lines += [f"ry({angle}) q[{i}];" for i, angle in enumerate(problem["angles"])]
lines += [f"cx q[{i}],q[{i + 1}];" for i in range(n - 1)]
lines.append("measure q -> c;")
json.dump(["\\n".join(lines)], open(os.environ["COLONIES_OUTPUT"], "w"))
print(f"prepared a {n}-qubit circuit")
"""


def fetch(ctx={}):
    return {"qubits": 3, "angles": [3.0, 0.2, 0.1]}


def summarise(result, ctx={}):
    counts = result["counts"]
    best = max(counts, key=counts.get)
    return {"bitstring": best, "probability": counts[best] / result["shots"], "backend": result["backend"],
            "depth": result["depth"]}


def prepare_spec(prepare_on: str) -> FuncSpec:
    """The reference's execute spec running PREPARE with python3 in a container or a Slurm job."""
    executortype = {"container": "container-executor", "slurm": "hpc-executor"}[prepare_on]
    kwargs = {"cmd": "python3", "args": ["-c", PREPARE]}
    if prepare_on == "container":
        kwargs["docker-image"] = os.environ.get("COLONIES_EXAMPLE_IMAGE", "python:3.12-slim")
    return FuncSpec(nodename="prepare", funcname="execute", kwargs=kwargs, maxexectime=120, maxwaittime=120,
                    maxretries=0, conditions=Conditions(colonyname=colony_name, executortype=executortype,
                                                        nodes=1, processespernode=1, walltime=120))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare-on", choices=("container", "slurm"), default="container")
    parser.add_argument("--backend", default="aer_simulator")
    options = parser.parse_args()

    wf = Workflow(colonyname=colony_name)
    f_fetch = func_spec(func=fetch, args=[], colonyname=colony_name, executortype="python-executor",
                        maxexectime=60, maxwaittime=120)
    f_prepare = prepare_spec(options.prepare_on)
    f_prepare.conditions.dependencies.append("fetch")
    f_simulate = circuit_spec(None, colony_name, nodename="simulate", shots=2000, backend=options.backend,
                              seed=11, maxexectime=120, maxwaittime=120, maxretries=0)
    f_simulate.conditions.dependencies.append("prepare")
    f_summarise = func_spec(func=summarise, args=[], colonyname=colony_name, executortype="python-executor",
                            maxexectime=60, maxwaittime=120)
    f_summarise.conditions.dependencies.append("simulate")
    wf.functionspecs.extend([f_fetch, f_prepare, f_simulate, f_summarise])

    processgraph = client.submit_workflow(wf, prvkey)
    print(f"Workflow submitted: {processgraph.processgraphid} (prepare on {options.prepare_on})")
    last = client.wait(client.find_process("summarise", processgraph.processids, prvkey), 300, prvkey)
    if last.state != 2:
        graph = client.get_processgraph(processgraph.processgraphid, prvkey)
        for processid in graph.processids:
            step = client.get_process(processid, prvkey)
            print(f"{step.spec.nodename}: state {step.state} {step.errors}")
        raise SystemExit("the workflow did not succeed")
    summary = last.output[0]
    print(f"result: {summary['bitstring']} p={summary['probability']:.2f} on {summary['backend']}")


if __name__ == "__main__":
    main()
