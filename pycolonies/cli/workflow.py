"""``colonies workflow``: workflows (submit, ps, psw, pss, psf, psc, get, remove, removeall, cancel).

``submit`` prints the workflow (process graph) id at once; with ``--wait`` it shows the nodes done
so far on stderr until the workflow ends and prints each leaf node's output as JSON (see
:mod:`pycolonies.cli.progress` for the exit codes). ``get`` draws the graph as a tree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text
from rich.tree import Tree

from pycolonies import wire
from pycolonies.cli.common import (
    STATE_STYLES,
    CliError,
    JsonOption,
    confirm_destructive,
    console,
    format_time,
    info,
    print_json,
    session,
    state_name,
)
from pycolonies.cli.function import load_json, spec_from_json
from pycolonies.cli.process import CountOption, removeall_state
from pycolonies.cli.progress import (
    DEFAULT_TIMEOUT,
    WorkflowRun,
    fetch_workflow,
    first_line,
    format_duration,
    ran,
    safe_table,
    span,
    styled_state,
    submitted_workflow,
    waited,
    workflow_json,
)
from pycolonies.models import Process, ProcessGraph, Workflow

app = typer.Typer(no_args_is_help=True, help="Submit and inspect workflows.")

GraphIdOption = Annotated[str, typer.Option(
    "--processgraphid", "--workflowid", help="Id of the workflow (its process graph)")]


# -- submit -----------------------------------------------------------------------------------------


def workflow_from_json(data: Any, colonyname: str, where: str) -> Workflow:
    """A workflow from a JSON list of function specs, or a WorkflowSpec ``{"colonyname",
    "functionspecs"}``; empty colony names become ``colonyname``."""
    if isinstance(data, dict) and "functionspecs" in data:
        colonyname = data.get("colonyname") or colonyname
        data = data["functionspecs"]
    elif isinstance(data, dict):
        raise CliError(f"{where} holds a single function spec: submit it with 'colonies function submit'")
    if not isinstance(data, list) or not data:
        raise CliError(f"{where} must be a non-empty JSON list of function specs (or a WorkflowSpec object)")
    specs = [spec_from_json(item, colonyname, f"{where}: spec {i}") for i, item in enumerate(data)]
    return Workflow(colonyname=colonyname, functionspecs=specs)


@app.command("submit")
def workflow_submit(
    spec_file: Annotated[Path, typer.Option("--spec", help="A JSON list of function specs")],
    wait: Annotated[bool, typer.Option(
        "--wait/--no-wait", help="Wait for the workflow to end and print its leaves' output "
        "(default: print its id)")] = False,
    timeout: Annotated[float, typer.Option(
        min=0.1, help="With --wait: give up after this many seconds (exit 4; the workflow goes on)")
    ] = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Submit a workflow: a JSON list of function specs whose conditions.dependencies name the
    nodenames of their parents. Prints the workflow id, or with --wait the leaves' output."""
    with session() as (settings, client):
        workflow = workflow_from_json(load_json(spec_file, "spec file"), settings.colony(), str(spec_file))
        prvkey = settings.key()
        graph = client.submit_workflow(workflow, prvkey)
        submitted_workflow(client, graph, prvkey, wait=wait, timeout=timeout, as_json=as_json)


# -- listings ---------------------------------------------------------------------------------------

TIME_COLUMNS: dict[int, tuple[str, Callable[[ProcessGraph], datetime | None]]] = {
    wire.WAITING: ("Submission time", lambda g: g.submissiontime),
    wire.RUNNING: ("Start time", lambda g: g.starttime),
}
END_TIME: tuple[str, Callable[[ProcessGraph], datetime | None]] = ("End time", lambda g: g.endtime)


def list_workflows(state: int, count: int, as_json: bool) -> None:
    with session() as (settings, client):
        colonyname = settings.colony()
        found = client.get_processgraphs(colonyname, count, settings.key(), state)
        if as_json:
            print_json(found)
            return
        if not found:
            info(f"No {state_name(state)} workflows found in colony {colonyname}")
            return
        time_header, time_of = TIME_COLUMNS.get(state, END_TIME)
        graphs = sorted((ProcessGraph.from_wire(g) for g in found),
                        key=lambda g: time_of(g) or datetime.min.replace(tzinfo=UTC), reverse=True)
        safe_table(graphs, [("Workflowid", lambda g: g.processgraphid), (time_header, time_of),
                            ("Initiator", lambda g: g.initiatorname),
                            ("State", lambda g: styled_state(g.state))])


def _lister(state: int, doc: str) -> Callable[..., None]:
    def command(count: CountOption = 20, as_json: JsonOption = False) -> None:
        list_workflows(state, count, as_json)

    command.__doc__ = doc
    return command


app.command("ps")(_lister(wire.RUNNING, "List running workflows."))
app.command("psw")(_lister(wire.WAITING, "List waiting workflows."))
app.command("pss")(_lister(wire.SUCCESS, "List successful workflows."))
app.command("psf")(_lister(wire.FAILED, "List failed workflows."))
app.command("psc")(_lister(wire.CANCELLED, "List cancelled workflows."))


# -- the tree ---------------------------------------------------------------------------------------


def node_timing(process: Process) -> str:
    """When a node ran, or how long it has been waiting or running."""
    if process.state == wire.WAITING:
        if process.waitforparents:
            return "waiting for its parents"
        return f"waiting for {format_duration(waited(process))}"
    times = f"start {format_time(process.starttime)}"
    if process.state == wire.RUNNING:
        return f"{times}, running for {format_duration(ran(process))}"
    if process.starttime is None:  # cancelled or failed before it started
        return f"ended {format_time(process.endtime)}"
    return (f"{times}, end {format_time(process.endtime)} "
            f"(waited {format_duration(waited(process))}, ran {format_duration(ran(process))})")


def _name(process: Process) -> str:
    return process.spec.nodename or process.spec.funcname


def node_label(process: Process) -> Text:
    label = Text()
    label.append(_name(process), style="bold")
    label.append("  ")
    label.append(state_name(process.state), style=STATE_STYLES.get(process.state, "white"))
    label.append(f"  {node_timing(process)}")
    label.append(f"  {process.processid[:12]}", style="dim")
    if process.state == wire.FAILED and process.errors:
        label.append(f"\n{first_line(process.errors[0])}", style="red")
    return label


def build_tree(run: WorkflowRun) -> Tree:
    """The graph as a tree: roots at the top, each node below its first parent; a node with more
    parents appears below the others as a reference ("→ name (shown under ...)")."""
    graph = run.graph
    root = Tree(Text.assemble(("Workflow ", "bold"), graph.processgraphid, "  ",
                              (state_name(graph.state), STATE_STYLES.get(graph.state, "white"))))
    by_id = {p.processid: p for p in run.processes}
    placed: set[str] = set()

    def add(branch: Tree, process: Process, parent: str | None) -> None:
        first_parent = next((pid for pid in process.parents if pid in by_id), None)
        if process.processid in placed or (parent is not None and parent != first_parent):
            shown_under = by_id[first_parent].spec.nodename if first_parent else "the root"
            branch.add(Text(f"→ {_name(process)} (shown under {shown_under})", style="dim"))
            return
        placed.add(process.processid)
        node = branch.add(node_label(process))
        for child in process.children:
            if child in by_id:
                add(node, by_id[child], process.processid)

    roots = [p for p in run.processes if not any(pid in by_id for pid in p.parents)]
    for process in roots:
        add(root, process, None)
    for process in run.processes:  # anything not reachable from the roots (should not happen)
        if process.processid not in placed:
            add(root, process, None)
    return root


def summary(run: WorkflowRun) -> str:
    counts: dict[int, int] = {}
    for process in run.processes:
        counts[process.state] = counts.get(process.state, 0) + 1
    states = ", ".join(f"{n} {state_name(state)}" for state, n in sorted(counts.items()))
    graph = run.graph
    took = span(graph.starttime, graph.endtime, until_now=graph.state == wire.RUNNING)
    timing = f"submitted {format_time(graph.submissiontime)}"
    if took is not None:
        timing += f", {'running for' if graph.state == wire.RUNNING else 'took'} {format_duration(took)}"
    return f"{run.done}/{len(run.processes)} processes done ({states}); {timing}"


@app.command("get")
def workflow_get(processgraphid: GraphIdOption, as_json: JsonOption = False) -> None:
    """Show a workflow as a tree: each node's state and timing, and a summary."""
    with session() as (settings, client):
        run = fetch_workflow(client, processgraphid, settings.key())
        if as_json:
            print_json(workflow_json(run))
            return
        out = console()
        out.print(build_tree(run))
        out.print(Text(summary(run)))


# -- changes ----------------------------------------------------------------------------------------


@app.command("remove")
def workflow_remove(processgraphid: GraphIdOption) -> None:
    """Remove a workflow and its processes (none of them may be running)."""
    with session() as (settings, client):
        client.remove_processgraph(processgraphid, settings.key())
        info(f"Workflow {processgraphid} removed")


@app.command("removeall")
def workflow_removeall(
    waiting: Annotated[bool, typer.Option("--waiting", help="Only waiting workflows")] = False,
    successful: Annotated[bool, typer.Option("--successful", help="Only successful workflows")] = False,
    failed: Annotated[bool, typer.Option("--failed", help="Only failed workflows")] = False,
    cancelled: Annotated[bool, typer.Option("--cancelled", help="Only cancelled workflows")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False,
) -> None:
    """Remove all the colony's workflows (or those in one state) but running ones; needs
    COLONIES_COLONY_PRVKEY."""
    with session() as (settings, client):
        state = removeall_state(waiting, successful, failed, cancelled)
        colonyname, prvkey = settings.colony(), settings.colony_key()
        which = "" if state == wire.NOTSET else f"{state_name(state)} "
        confirm_destructive(f"remove all {which}workflows in colony {colonyname}", yes)
        client.remove_all_processgraphs(colonyname, prvkey, state)
        info(f"Removed all {which}workflows in colony {colonyname}")


@app.command("cancel")
def workflow_cancel(processgraphid: GraphIdOption) -> None:
    """Cancel a workflow: its waiting and running processes become cancelled."""
    with session() as (settings, client):
        client.cancel_processgraph(processgraphid, settings.key())
        info(f"Workflow {processgraphid} cancelled")
