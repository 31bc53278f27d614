"""A calibration session in the style of QDash: for each qubit of a fake IBM device, a task's
``preprocess`` / run / ``postprocess`` steps, as a workflow that grows at run time
(examples/quantum_calibration_tasks.py); each qubit's result is stored as a process attribute and
output, and a report gathers them.

    COLONIES_COLONY_NAME=... COLONIES_PRVKEY=<a member's key> python examples/quantum_calibration.py

Options: ``--device`` (default: the quantum executor's first noisy simulator), ``--task``
(``readout``), ``--padding N`` (N pairs of X gates before each readout: longer runs). Ctrl-C (or
SIGINT) cancels the whole session: running circuits are stopped, steps not yet run never run, and
no qubit is left with half a result (a result is one attribute, written whole by its postprocess
step). Prints one line per qubit and ``result: calibrated <n> qubits of <device>``.
"""

import argparse
import sys
from pathlib import Path

from pycolonies import Workflow, colonies_client, func_spec
from pycolonies.quantum import list_backends

client, colony_name, _, _, prvkey = colonies_client()

TASKS_SOURCE = (Path(__file__).resolve().parent / "quantum_calibration_tasks.py").read_text()


def step(name, args, **limits):
    return func_spec(name, args, colony_name, "python-executor", code=TASKS_SOURCE, maxretries=0,
                     maxexectime=limits.get("maxexectime", 60), maxwaittime=limits.get("maxwaittime", 600))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device")
    parser.add_argument("--task", default="readout")
    parser.add_argument("--padding", type=int, default=0)
    options = parser.parse_args()
    noisy = {b["name"]: b["qubits"] for b in list_backends(client, colony_name, prvkey)
             if b["kind"] == "noisy simulator"}
    device = options.device or next(iter(noisy))
    if device not in noisy:
        raise SystemExit(f"the quantum executor has no noisy simulator {device!r}: {', '.join(noisy)}")

    wf = Workflow(colonyname=colony_name)
    session = step("session", [device, noisy[device], options.task, options.padding])
    report = step("report", [])
    report.conditions.dependencies.append("session")
    wf.functionspecs.extend([session, report])
    graph = client.submit_workflow(wf, prvkey)
    print(f"Session submitted: {graph.processgraphid} ({noisy[device]} qubits of {device})", flush=True)
    last = client.find_process("report", graph.processids, prvkey)
    try:
        done = client.wait(last, 900, prvkey)
    except KeyboardInterrupt:
        client.cancel_processgraph(graph.processgraphid, prvkey)
        print("Session cancelled", flush=True)
        sys.exit(130)
    if done.state != 2:
        raise SystemExit(f"the session did not succeed: {done.errors}")
    for result in done.output[0]:
        print(f"qubit {result['qubit']}: readout error {result['readout_error']:.4f}")
    print(f"result: calibrated {len(done.output[0])} qubits of {device}")


if __name__ == "__main__":
    main()
