"""The calibration tasks and the steps of a calibration session (examples/quantum_calibration.py),
shipped to the python executor as source: each step is a function of this file.

A task is a class with three steps: ``preprocess`` (the circuit for one qubit), the run (on the
quantum executor, ``run_circuit``) and ``postprocess`` (the qubit's result from the counts). The
session's graph grows at run time:

    session ──> preprocess_q<i> ──> run_q<i> ──> postprocess_q<i> ──> report     (for each qubit i)

``session`` adds one ``preprocess_q<i>`` per qubit; each ``preprocess`` adds its own run and
postprocess steps below itself. ``postprocess`` stores the qubit's whole result as one process
attribute (``<task>.q<i>``) and returns it; ``report`` gathers them.
"""

import base64
import json

from pycolonies.quantum import circuit_spec


class ReadoutTask:
    """How often qubit ``qubit``, put in |1>, is read as 1 (after ``padding`` pairs of X gates,
    which make the run as long as asked and add their own error)."""

    name = "readout"
    shots = 2000

    def preprocess(self, qubits, qubit, padding=0):
        lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{qubits}];", "creg c[1];"]
        lines += [f"x q[{qubit}];", f"x q[{qubit}];"] * padding
        lines += [f"x q[{qubit}];", f"measure q[{qubit}] -> c[0];"]
        return "\n".join(lines)

    def postprocess(self, qubit, result):
        ones = result["counts"].get("1", 0) / result["shots"]
        return {"task": self.name, "qubit": qubit, "backend": result["backend"], "p1": round(ones, 4),
                "readout_error": round(1 - ones, 4)}


TASKS = {"readout": ReadoutTask}


def session(device, qubits, task, padding=0, ctx={}):
    """The root: one preprocess step per qubit of ``device``, all feeding ``report``."""
    me, key = ctx["process"], ctx["executor_prvkey"]
    graph = colonies.get_processgraph(me.processgraphid, key)
    report = colonies.find_process("report", graph.processids, key)
    code = _own_source(ctx)
    for qubit in range(qubits):
        spec = func_spec(func="preprocess", args=[], colonyname=ctx["colonyname"],
                         executortype="python-executor", maxexectime=60, maxwaittime=300, maxretries=0,
                         code=code, kwargs={"task": task, "qubit": qubit, "padding": padding})
        colonies.add_child(me.processgraphid, me.processid, report.processid, spec,
                           f"preprocess_q{qubit}", False, key)
    return {"device": device, "qubits": qubits, "task": task}


def preprocess(info, task, qubit, padding=0, ctx={}):
    """Task ``task``'s circuit for ``qubit``; adds its run and postprocess steps below itself."""
    me, key = ctx["process"], ctx["executor_prvkey"]
    steps = TASKS[task]()
    post = func_spec(func="postprocess", args=[], colonyname=ctx["colonyname"],
                     executortype="python-executor", maxexectime=60, maxwaittime=600, maxretries=0,
                     code=_own_source(ctx), kwargs={"task": task, "qubit": qubit})
    run = circuit_spec(None, ctx["colonyname"], shots=steps.shots, backend=info["device"],
                       optimization_level=0, seed=qubit, maxexectime=300, maxwaittime=600, maxretries=0)
    # each insert takes over preprocess's children: first the postprocess step, then the run above it
    colonies.add_child(me.processgraphid, me.processid, "", post, f"postprocess_q{qubit}", True, key)
    colonies.add_child(me.processgraphid, me.processid, "", run, f"run_q{qubit}", True, key)
    return steps.preprocess(info["qubits"], qubit, padding)


def postprocess(result, task, qubit, ctx={}):
    """The qubit's result, stored whole as one attribute, then returned."""
    outcome = TASKS[task]().postprocess(qubit, result)
    colonies.add_attribute(ctx["process"].processid, f"{task}.q{qubit}", json.dumps(outcome),
                           ctx["executor_prvkey"])
    return outcome


def report(*inputs, ctx={}):
    """Every qubit's result (the session's own output is among the inputs, and left out)."""
    return sorted((i for i in inputs if isinstance(i, dict) and "qubit" in i), key=lambda r: r["qubit"])


def _own_source(ctx):
    """This file's text, as the running step was shipped with it (to ship it on to the next)."""
    return base64.b64decode(ctx["process"].spec.env["code"]).decode()
