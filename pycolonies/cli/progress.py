"""Waiting for a process or a workflow to end (``--wait``, ``colonies run``).

The wait polls ``getprocessmsg`` / ``getprocessgraphmsg`` (first after 0.1 s, then backing off to
every 0.5 s), which works against any ColonyOS server and shows every state on the way. While it
waits, a live display on stderr shows the state and the elapsed time (for a workflow: nodes done
out of all); it is shown only when stderr is a terminal, so scripts see nothing but the result.

When it ends, the output goes to stdout as JSON (a process's output list; for a workflow, each leaf
node's output by node name) and the exit code says how it went: 0 successful, 1 failed or
cancelled (with its first error on stderr), 4 (``EXIT_TIMEOUT``) still unfinished after
``--timeout`` seconds (it is left as it is: the error line names it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from pycolonies import wire
from pycolonies.cli.common import (
    EXIT_REFUSED,
    EXIT_TIMEOUT,
    STATE_STYLES,
    CliError,
    Markup,
    print_details,
    print_json,
    print_table,
    state_name,
)
from pycolonies.client import Colonies
from pycolonies.models import Process, ProcessGraph
from pycolonies.pubsub import FINAL_STATES

T = TypeVar("T")

DEFAULT_TIMEOUT = 100.0  # seconds, as the reference CLI's --wait
FIRST_POLL = 0.1
MAX_POLL = 0.5
NOT_RUN = "Not run:"  # the error of a workflow process skipped because an ancestor failed


# -- durations ------------------------------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    """``0.35 s``, ``12.3 s``, ``2 m 05 s``, ``1 h 02 m``; empty for None."""
    if seconds is None:
        return ""
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def span(start: datetime | None, end: datetime | None, *, until_now: bool = False) -> float | None:
    """Seconds from ``start`` to ``end`` (to now if ``end`` is unset and ``until_now``)."""
    if start is None:
        return None
    if end is None:
        if not until_now:
            return None
        end = datetime.now(UTC)
    return (end - start).total_seconds()


def waited(process: Process) -> float | None:
    """How long the process waited for an executor (so far, if it still waits)."""
    if process.state == wire.WAITING:
        return span(process.submissiontime, None, until_now=True)
    return span(process.submissiontime, process.starttime)


def ran(process: Process) -> float | None:
    """How long the process ran (so far, if it still runs)."""
    return span(process.starttime, process.endtime, until_now=process.state == wire.RUNNING)


# -- output ---------------------------------------------------------------------------------------
# common.cell escapes every cell but Markup, so data holding "[...]" (errors, args) is shown as is.


def styled_state(state: int) -> Markup:
    return Markup(f"[{STATE_STYLES.get(state, 'white')}]{state_name(state)}[/]")


safe_table = print_table
safe_details = print_details


# -- polling --------------------------------------------------------------------------------------


@dataclass
class Poller:
    """Sleeps between polls (0.1 s, growing to 0.5 s) and knows when ``timeout`` has passed."""

    timeout: float
    started: float = field(default_factory=time.monotonic)
    interval: float = FIRST_POLL

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def sleep(self) -> bool:
        """Sleep until the next poll; False if the timeout has passed instead."""
        remaining = self.timeout - self.elapsed()
        if remaining <= 0:
            return False
        time.sleep(min(self.interval, remaining))
        self.interval = min(self.interval * 1.5, MAX_POLL)
        return True


def _progress(total: int | None) -> Progress:
    stderr = Console(stderr=True, highlight=False)
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
    if total is not None:
        columns.append(MofNCompleteColumn())
    columns.append(TimeElapsedColumn())
    return Progress(*columns, console=stderr, transient=True, disable=not stderr.is_terminal)


def watch_process(client: Colonies, process: Process, prvkey: str, timeout: float) -> Process:
    """Poll the process until it ends; raise ``CliError`` (exit 4) after ``timeout`` seconds."""
    name = process.spec.nodename or process.spec.funcname
    label = f"process {process.processid[:8]} [bold]{escape(name)}[/]"
    poller = Poller(timeout)
    with _progress(None) as progress:
        task = progress.add_task(label, total=None)
        while True:
            process = client.get_process(process.processid, prvkey)
            progress.update(task, description=f"{label}: {styled_state(process.state)}")
            if process.state in FINAL_STATES:
                _last_word(progress, f"{label}: {styled_state(process.state)} after {poller.elapsed():.1f} s")
                return process
            if not poller.sleep():
                raise CliError(_unfinished(f"process {process.processid}", process.state, timeout,
                                           f"colonies process get --processid {process.processid}"),
                               EXIT_TIMEOUT)


@dataclass
class WorkflowRun:
    """A workflow as last seen: the graph and every process of it (in ``processids`` order)."""

    graph: ProcessGraph
    processes: list[Process]

    @property
    def done(self) -> int:
        return sum(1 for p in self.processes if p.state in FINAL_STATES)

    def leaves(self) -> list[Process]:
        return [p for p in self.processes if not p.children]


def fetch_workflow(client: Colonies, graphid: str, prvkey: str,
                   known: dict[str, Process] | None = None) -> WorkflowRun:
    """The graph and its processes; processes already final in ``known`` are not fetched again."""
    graph = client.get_processgraph(graphid, prvkey)
    known = known if known is not None else {}
    for processid in graph.processids:
        cached = known.get(processid)
        if cached is None or cached.state not in FINAL_STATES:
            known[processid] = client.get_process(processid, prvkey)
    return WorkflowRun(graph, [known[pid] for pid in graph.processids])


def watch_workflow(client: Colonies, graph: ProcessGraph, prvkey: str, timeout: float) -> WorkflowRun:
    """Poll the workflow until its graph ends; raise ``CliError`` (exit 4) after ``timeout`` seconds."""
    label = f"workflow {graph.processgraphid[:8]}"
    known: dict[str, Process] = {}
    poller = Poller(timeout)
    with _progress(len(graph.processids)) as progress:
        task = progress.add_task(label, total=len(graph.processids))
        while True:
            run = fetch_workflow(client, graph.processgraphid, prvkey, known)
            running = sum(1 for p in run.processes if p.state == wire.RUNNING)
            progress.update(task, total=len(run.processes), completed=run.done,
                            description=f"{label}: {styled_state(run.graph.state)}, {running} running")
            if run.graph.state in FINAL_STATES:
                done = f"{run.done}/{len(run.processes)} processes done"
                _last_word(progress, f"{label}: {styled_state(run.graph.state)}, {done} "
                                     f"after {poller.elapsed():.1f} s")
                return run
            if not poller.sleep():
                raise CliError(_unfinished(f"workflow {graph.processgraphid}", run.graph.state, timeout,
                                           f"colonies workflow get --processgraphid {graph.processgraphid}"),
                               EXIT_TIMEOUT)


def _last_word(progress: Progress, text: str) -> None:
    """A line that stays on the terminal when the (transient) display goes."""
    if not progress.disable:
        progress.console.print(text)


def _unfinished(what: str, state: int, timeout: float, hint: str) -> str:
    return f"{what} is still {state_name(state)} after {timeout:g} s; it was left as it is (see: {hint})"


def interrupted(what: str) -> CliError:
    return CliError(f"interrupted: {what} was left as it is", 130)


# -- the result -----------------------------------------------------------------------------------


def first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else ""


def _errors_summary(process: Process) -> str:
    if not process.errors:
        return "no error given"
    text = first_line(process.errors[0])
    more = len(process.errors) - 1
    if more:
        text += f" (see 'colonies process get' for {more} more error entr{'y' if more == 1 else 'ies'})"
    return text


def plain_output(values: list[object]) -> str:
    """The output values space-joined, as the reference's ``--out`` prints them (strings as they
    are, anything else as JSON)."""
    return " ".join(value if isinstance(value, str) else json.dumps(value) for value in values)


def process_result(process: Process, as_json: bool, *, out: bool = False, quiet: bool = False) -> None:
    """Print the ended process's output (or, ``as_json``, the whole process; with ``out`` the
    values space-joined; with ``quiet`` nothing) on stdout; raise ``CliError`` (exit 1) unless it
    succeeded."""
    if as_json:
        print_json(process)
    if process.state == wire.SUCCESS:
        if out:
            typer.echo(plain_output(process.output))
        elif not as_json and not quiet:
            print_json(process.output)
        return
    name = process.spec.nodename or process.spec.funcname
    what = f"process {process.processid} ({name})"
    if process.state == wire.CANCELLED:
        raise CliError(f"{what} was cancelled", EXIT_REFUSED)
    raise CliError(f"{what} failed: {_errors_summary(process)}", EXIT_REFUSED)


def _culprit(processes: list[Process]) -> Process | None:
    """The failed process to blame: one that failed itself, not one skipped for its ancestor."""
    failed = [p for p in processes if p.state == wire.FAILED]
    own = [p for p in failed if not (p.errors and first_line(p.errors[0]).startswith(NOT_RUN))]
    return (own or failed or [None])[0]


def workflow_json(run: WorkflowRun) -> dict[str, object]:
    return {"processgraph": run.graph.to_wire(), "processes": [p.to_wire() for p in run.processes]}


def workflow_result(run: WorkflowRun, as_json: bool) -> None:
    """Print each leaf node's output by node name (or, ``as_json``, the graph and its processes);
    raise ``CliError`` (exit 1) unless the workflow succeeded."""
    if as_json:
        print_json(workflow_json(run))
    if run.graph.state == wire.SUCCESS:
        if not as_json:
            print_json({p.spec.nodename or p.spec.funcname: p.output for p in run.leaves()})
        return
    what = f"workflow {run.graph.processgraphid}"
    culprit = _culprit(run.processes)
    if run.graph.state == wire.CANCELLED or culprit is None:
        raise CliError(f"{what} was {state_name(run.graph.state)}", EXIT_REFUSED)
    name = culprit.spec.nodename or culprit.spec.funcname
    raise CliError(f"{what} failed: node {name} (process {culprit.processid}): {_errors_summary(culprit)}",
                   EXIT_REFUSED)


# -- submit, then print the id or wait --------------------------------------------------------------


def follow(watch: Callable[[], T], what: str) -> T:
    """Run ``watch`` turning Ctrl-C into a clean exit 130 that says the work goes on."""
    try:
        return watch()
    except KeyboardInterrupt:
        raise interrupted(what) from None


def submitted_process(client: Colonies, process: Process, prvkey: str, *, wait: bool, timeout: float,
                      as_json: bool, out: bool = False,
                      follow_logs: Callable[[], None] | None = None) -> None:
    """After a submit: print the id (or, ``as_json``, the process) at once, or wait and print the
    result (exit codes as the module says). ``out`` prints the output values space-joined;
    ``follow_logs`` prints the process's log as it runs, until it ends, instead of a display."""
    if follow_logs is not None:
        follow_logs()
        process_result(client.get_process(process.processid, prvkey), as_json, out=out, quiet=True)
        return
    if not wait:
        if as_json:
            print_json(process)
        else:
            typer.echo(process.processid)
        return
    ended = follow(lambda: watch_process(client, process, prvkey, timeout), f"process {process.processid}")
    process_result(ended, as_json, out=out)


def submitted_workflow(client: Colonies, graph: ProcessGraph, prvkey: str, *, wait: bool, timeout: float,
                       as_json: bool) -> None:
    """After a workflow submit: print the graph id (or its JSON) at once, or wait and print the result."""
    if not wait:
        if as_json:
            print_json(graph)
        else:
            typer.echo(graph.processgraphid)
        return
    run = follow(lambda: watch_workflow(client, graph, prvkey, timeout), f"workflow {graph.processgraphid}")
    workflow_result(run, as_json)
