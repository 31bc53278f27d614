"""``colonies process``: inspect and manage processes (ps, psw, pss, psf, psc, get, remove, removeall,
cancel, assign, close, fail), and pause or resume the colony's assignments (pause, resume, status)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from pycolonies import wire
from pycolonies.cli.common import (
    EXIT_TIMEOUT,
    CliError,
    JsonOption,
    confirm_destructive,
    format_time,
    info,
    print_json,
    session,
    shorten,
    state_name,
    text,
)
from pycolonies.cli.function import parse_value
from pycolonies.cli.progress import format_duration, ran, safe_details, safe_table, styled_state, waited
from pycolonies.client import Colonies
from pycolonies.errors import ColoniesServerError, NotFoundError
from pycolonies.models import Attribute, Process

app = typer.Typer(no_args_is_help=True, help="Inspect and manage processes.")

ProcessIdOption = Annotated[str, typer.Option("--processid", "-p", help="Id of the process")]
CountOption = Annotated[int, typer.Option(min=1, max=wire.MAX_COUNT, help="How many to list (at most 100)")]
IdsOption = Annotated[bool, typer.Option("--ids", "--id", "-i", help="Show the ID column")]
LOG_LINES = 10
ATTRIBUTE_TYPES = {wire.IN: "In", wire.OUT: "Out", wire.ERR: "Err", wire.ENV: "Env"}


def executor_names(client: Colonies, colonyname: str, prvkey: str) -> dict[str, str]:
    """Executor id -> name in the colony (empty if the listing is refused)."""
    try:
        return {e["executorid"]: e["executorname"] for e in client.list_executors(colonyname, prvkey)}
    except ColoniesServerError:
        return {}


def executor_name(process: Process, names: dict[str, str]) -> str:
    if process.assignedexecutorid:
        return names.get(process.assignedexecutorid, process.assignedexecutorid[:12])
    return ", ".join(process.spec.conditions.executornames or [])


def _args_text(args: list[Any]) -> str:
    return " ".join(text(arg) for arg in args)


def _kwargs_text(kwargs: dict[str, Any]) -> str:
    return " ".join(f"{key}:{text(value)}" for key, value in kwargs.items())


# -- listings ---------------------------------------------------------------------------------------

TIME_COLUMNS: dict[int, tuple[str, Callable[[Process], Any]]] = {
    wire.WAITING: ("Submission time", lambda p: p.submissiontime),
    wire.RUNNING: ("Start time", lambda p: p.starttime),
}
END_TIME: tuple[str, Callable[[Process], Any]] = ("End time", lambda p: p.endtime)


def list_processes(state: int, count: int, ids: bool, as_json: bool, executortype: str = "",
                   label: str = "", initiator: str = "") -> None:
    with session() as (settings, client):
        colonyname, prvkey = settings.colony(), settings.key()
        found = client.list_processes(colonyname, count, state, prvkey, executortype=executortype,
                                      label=label, initiator=initiator)
        if as_json:
            print_json(found)
            return
        if not found:
            info(f"No {state_name(state)} processes found in colony {colonyname}")
            return
        processes = [Process.from_wire(p) for p in found]
        names = executor_names(client, colonyname, prvkey) if state != wire.WAITING else {}
        columns: list[tuple[str, Callable[[Process], Any]]] = [
            ("Funcname", lambda p: p.spec.funcname),
            ("Args", lambda p: shorten(_args_text(p.spec.args))),
            ("Kwargs", lambda p: shorten(_kwargs_text(p.spec.kwargs))),
            TIME_COLUMNS.get(state, END_TIME),
            ("Executor name", lambda p: executor_name(p, names)),
            ("Executor type", lambda p: p.spec.conditions.executortype),
            ("Initiator", lambda p: p.initiatorname),
            ("Label", lambda p: p.spec.label),
        ]
        if ids:
            columns.insert(0, ("Id", lambda p: p.processid))
        safe_table(processes, columns)


ExecutorTypeFilter = Annotated[str, typer.Option("--executortype", help="Only processes of this type")]
LabelFilter = Annotated[str, typer.Option("--label", help="Only processes with this label")]
InitiatorFilter = Annotated[str, typer.Option("--initiator", help="Only processes submitted by this user")]


def _lister(state: int, doc: str) -> Callable[..., None]:
    def command(count: CountOption = 20, ids: IdsOption = False, as_json: JsonOption = False,
                executortype: ExecutorTypeFilter = "", label: LabelFilter = "",
                initiator: InitiatorFilter = "") -> None:
        list_processes(state, count, ids, as_json, executortype, label, initiator)

    command.__doc__ = doc
    return command


app.command("ps")(_lister(wire.RUNNING, "List running processes."))
app.command("psw")(_lister(wire.WAITING, "List waiting processes."))
app.command("pss")(_lister(wire.SUCCESS, "List successful processes."))
app.command("psf")(_lister(wire.FAILED, "List failed processes."))
app.command("psc")(_lister(wire.CANCELLED, "List cancelled processes."))


# -- one process ------------------------------------------------------------------------------------


def show_process(process: Process, names: dict[str, str]) -> None:
    """The Process, Function Specification and Conditions tables, and the attributes."""
    safe_details([
        ("Id", process.processid),
        ("State", styled_state(process.state)),
        ("Function", process.spec.funcname),
        ("Executor", executor_name(process, names)),
        ("AssignedExecutorID", process.assignedexecutorid),
        ("Initiator", process.initiatorname),
        ("InitiatorID", process.initiatorid),
        ("WorkflowID", process.processgraphid),
        ("SubmissionTime", format_time(process.submissiontime)),
        ("StartTime", format_time(process.starttime)),
        ("EndTime", format_time(process.endtime)),
        ("WaitDeadline", format_time(process.waitdeadline)),
        ("ExecDeadline", format_time(process.execdeadline)),
        ("WaitingTime", format_duration(waited(process))),
        ("ProcessingTime", format_duration(ran(process))),
        ("Retries", process.retries),
        ("Input", shorten(process.input, 200)),
        ("Output", shorten(process.output, 200)),
        ("Errors", "\n".join(str(error) for error in process.errors)),
    ], title="Process")
    spec = process.spec
    safe_details([
        ("Func", spec.funcname), ("NodeName", spec.nodename), ("Args", spec.args), ("KwArgs", spec.kwargs),
        ("Priority", spec.priority), ("MaxWaitTime", spec.maxwaittime), ("MaxExecTime", spec.maxexectime),
        ("MaxRetries", spec.maxretries), ("Label", spec.label or "None"),
    ], title="Function Specification")
    conditions = spec.conditions
    safe_details([
        ("Colony", conditions.colonyname), ("ExecutorType", conditions.executortype),
        ("ExecutorNames", ", ".join(conditions.executornames or []) or "None"),
        ("Dependencies", ", ".join(conditions.dependencies) or "None"),
    ], title="Conditions")
    show_attributes(process.attributes)


def show_attributes(attributes: list[Attribute]) -> None:
    if not attributes:
        info("No attributes found")
        return
    safe_table(attributes, [("Attributeid", lambda a: a.attributeid), ("Key", lambda a: a.key),
                             ("Value", lambda a: shorten(a.value, 60)),
                             ("Type", lambda a: ATTRIBUTE_TYPES.get(a.attributetype, a.attributetype))],
                title="Attributes")


def show_log(client: Colonies, process: Process, colonyname: str, prvkey: str) -> None:
    try:
        entries = client.get_process_log(colonyname, process.processid, LOG_LINES, 0, prvkey, latest=True)
    except ColoniesServerError as exc:
        info(f"Log not available: {exc.message}")
        return
    entries.sort(key=lambda entry: entry.get("timestamp", 0))
    lines = "".join(entry.get("message", "") for entry in entries).splitlines()[-LOG_LINES:]
    if not lines:
        info("No log entries")
        return
    typer.echo(f"Log (last {len(lines)} lines):")
    for line in lines:
        typer.echo(f"  {line}")


@app.command("get")
def process_get(processid: ProcessIdOption, as_json: JsonOption = False) -> None:
    """Show a process: its state, times, input, output, errors, spec, attributes and last log lines."""
    with session() as (settings, client):
        prvkey = settings.key()
        process = client.get_process(processid, prvkey)
        if as_json:
            print_json(process)
            return
        colonyname = process.spec.conditions.colonyname or settings.colony()
        show_process(process, executor_names(client, colonyname, prvkey))
        show_log(client, process, colonyname, prvkey)


@app.command("remove")
def process_remove(processid: ProcessIdOption) -> None:
    """Remove a process."""
    with session() as (settings, client):
        client.remove_process(processid, settings.key())
        info(f"Process {processid} removed")


def removeall_state(waiting: bool, successful: bool, failed: bool, cancelled: bool) -> int:
    """The state the --waiting/--successful/--failed/--cancelled flags pick (-1: all)."""
    chosen = [state for state, flag in ((wire.WAITING, waiting), (wire.SUCCESS, successful),
                                        (wire.FAILED, failed), (wire.CANCELLED, cancelled)) if flag]
    if len(chosen) > 1:
        raise CliError("give at most one of --waiting, --successful, --failed and --cancelled")
    return chosen[0] if chosen else wire.NOTSET


@app.command("removeall")
def process_removeall(
    waiting: Annotated[bool, typer.Option("--waiting", help="Only waiting processes")] = False,
    successful: Annotated[bool, typer.Option("--successful", help="Only successful processes")] = False,
    failed: Annotated[bool, typer.Option("--failed", help="Only failed processes")] = False,
    cancelled: Annotated[bool, typer.Option("--cancelled", help="Only cancelled processes")] = False,
    all_states: Annotated[bool, typer.Option("--all", help="Every state (the default)")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False,
) -> None:
    """Remove all the colony's processes outside workflows (or those in one state); needs
    COLONIES_COLONY_PRVKEY. Workflows go with 'colonies workflow removeall'."""
    with session() as (settings, client):
        state = removeall_state(waiting, successful, failed, cancelled)
        if all_states and state != wire.NOTSET:
            raise CliError("--all cannot be combined with a state flag")
        colonyname, prvkey = settings.colony(), settings.colony_key()
        which = "" if state == wire.NOTSET else f"{state_name(state)} "
        confirm_destructive(f"remove all {which}processes (outside workflows) in colony {colonyname}", yes)
        client.remove_all_processes(colonyname, prvkey, state)
        info(f"Removed all {which}processes in colony {colonyname}")


@app.command("cancel")
def process_cancel(processid: ProcessIdOption) -> None:
    """Cancel a waiting or running process."""
    with session() as (settings, client):
        client.cancel_process(processid, settings.key())
        info(f"Process {processid} cancelled")


@app.command("assign")
def process_assign(
    timeout: Annotated[int, typer.Option(min=1, help="Seconds to wait for a process")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Assign a waiting process to the executor of COLONIES_PRVKEY and print it (exit 4 if none
    came within --timeout)."""
    with session() as (settings, client):
        colonyname, prvkey = settings.colony(), settings.key()
        try:
            process = client.assign(colonyname, timeout, prvkey)
        except NotFoundError as exc:
            if "no process available" not in exc.message.lower():
                raise
            raise CliError(f"no process was assigned within {timeout} s", EXIT_TIMEOUT) from None
        if as_json:
            print_json(process)
            return
        show_process(process, executor_names(client, colonyname, prvkey))


@app.command("close")
def process_close(
    processid: ProcessIdOption,
    out: Annotated[list[str] | None, typer.Option(
        "--out", help="An output value, as JSON (else a string); repeatable")] = None,
) -> None:
    """Close a running process as successful (signed by its executor, COLONIES_PRVKEY)."""
    with session() as (settings, client):
        client.close_process(processid, [parse_value(value) for value in out or []], settings.key())
        info(f"Process {processid} closed as successful")


@app.command("fail")
def process_fail(
    processid: ProcessIdOption,
    errors: Annotated[list[str] | None, typer.Option("--errors", help="An error message; repeatable")] = None,
) -> None:
    """Close a running process as failed (signed by its executor, COLONIES_PRVKEY)."""
    with session() as (settings, client):
        client.fail(processid, errors or ["No errors specified"], settings.key())
        info(f"Process {processid} closed as failed")


# -- the colony's assignments ---------------------------------------------------------------------

PauseColonyOption = Annotated[str | None, typer.Option(
    "--colony", "--colonyname", help="Colony name (default COLONIES_COLONY_NAME)")]


@app.command("pause")
def process_pause(colony: PauseColonyOption = None) -> None:
    """Pause the colony's process assignments (COLONIES_COLONY_PRVKEY): executors asking for work
    wait until they are resumed."""
    with session() as (settings, client):
        colonyname = settings.colony(colony)
        client.pause_assignments(colonyname, settings.colony_key())
        info(f"Colony process assignments are PAUSED in colony {colonyname}")


@app.command("resume")
def process_resume(colony: PauseColonyOption = None) -> None:
    """Resume the colony's process assignments (COLONIES_COLONY_PRVKEY); waiting executors get
    work at once."""
    with session() as (settings, client):
        colonyname = settings.colony(colony)
        client.resume_assignments(colonyname, settings.colony_key())
        info(f"Colony process assignments are ACTIVE in colony {colonyname}")


@app.command("status")
def process_status(colony: PauseColonyOption = None) -> None:
    """Whether the colony's process assignments are paused (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        paused = client.get_pause_status(settings.colony(colony), settings.key())
        typer.echo(f"Colony process assignments are {'PAUSED' if paused else 'ACTIVE'}")
