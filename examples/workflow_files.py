"""Files through a workflow: a directory goes up to a label, one step counts the words of its
files into a table, the next plots the table, and a snapshot freezes the results: 6 words, a
snapshot of 4 files.

    COLONIES_COLONY_NAME=... COLONIES_PRVKEY=<a member's key> python examples/workflow_files.py

Each step names its labels in ``fs``; the executor brings them into the step's working directory
before it runs and uploads what the step wrote after it succeeds.
"""

import secrets
import tempfile
from pathlib import Path

from pycolonies import Workflow, colonies_client, func_spec
from pycolonies.models import Fs

client, colony_name, _, _, prvkey = colonies_client()


def count_words(ctx={}):
    import pathlib

    rows = [f"{p.name},{len(p.read_text().split())}" for p in sorted(pathlib.Path("raw").glob("*.txt"))]
    pathlib.Path("table/words.csv").write_text("file,words\n" + "\n".join(rows) + "\n")
    return len(rows)


def plot_words(files, ctx={}):
    import pathlib

    counts = [int(line.split(",")[1]) for line in pathlib.Path("table/words.csv").read_text().split()[1:]]
    bars = "".join(f'<rect x="{10 + 30 * i}" y="{100 - 10 * c}" width="20" height="{10 * c}"/>'
                   for i, c in enumerate(counts))
    pathlib.Path("plots/words.svg").write_text(f'<svg xmlns="http://www.w3.org/2000/svg">{bars}</svg>')
    return sum(counts)


def main() -> None:
    label = f"/examples/words-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory() as local:
        (Path(local) / "a.txt").write_text("one two three")
        (Path(local) / "b.txt").write_text("four five six")
        plan = client.sync(local, f"{label}/raw", True, colony_name, prvkey)
    print(f"uploaded {len(plan.uploads)} files to {label}/raw")

    count = func_spec(func=count_words, args=[], colonyname=colony_name, executortype="python-executor",
                      maxexectime=60, fs=Fs(dirs=[{"label": f"{label}/raw", "dir": "raw"},
                                                  {"label": f"{label}/table", "dir": "table"}]))
    plot = func_spec(func=plot_words, args=[], colonyname=colony_name, executortype="python-executor",
                     maxexectime=60, fs=Fs(dirs=[{"label": f"{label}/table", "dir": "table"},
                                                 {"label": f"{label}/plots", "dir": "plots"}]))
    plot.conditions.dependencies.append("count_words")
    graph = client.submit_workflow(Workflow(colonyname=colony_name, functionspecs=[count, plot]), prvkey)
    last = client.wait(client.find_process("plot_words", graph.processids, prvkey), 100, prvkey)
    if last.state != 2:
        raise SystemExit(f"the plot step did not succeed: {last.errors}")

    snapshot = client.create_snapshot(colony_name, label, f"words-{label.rsplit('-', 1)[1]}", prvkey)
    with tempfile.TemporaryDirectory() as frozen:
        for path in client.download_snapshot(colony_name, prvkey, frozen, snapshotid=snapshot["snapshotid"]):
            print("frozen:", Path(path).relative_to(frozen))
    print(f"result: {last.output[0]} words, a snapshot of {len(snapshot['fileids'])} files")


if __name__ == "__main__":
    main()
