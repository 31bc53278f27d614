"""``colonies executor``: manage a colony's executors. ``executor start`` is the executors' own
command (``executors.commands``, through the ``colonies.commands`` entry points)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pycolonies import wire
from pycolonies.cli import rotation
from pycolonies.cli.common import (
    CliError,
    ColonyOption,
    Column,
    JsonOption,
    format_time,
    info,
    new_identity,
    pick,
    print_details,
    print_json,
    print_table,
    session,
    show_new_key,
)
from pycolonies.cli.function import load_json

app = typer.Typer(no_args_is_help=True, help="Run executors and manage a colony's executors.")


# -- managing a colony's executors ------------------------------------------------------------------

NameOption = Annotated[str, typer.Option("--name", help="Executor name")]

STATE_LABELS = {wire.PENDING: "Pending", wire.APPROVED: "Approved", wire.REJECTED: "Rejected",
                wire.UNREGISTERED: "Unregistered"}


FUNCTION_TIMES = ("MinWaitTime", "MaxWaitTime", "AvgWaitTime", "MinExecTime", "MaxExecTime", "AvgExecTime")


def state_label(state: Any) -> str:
    return STATE_LABELS.get(state, "Unknown")


def _location(executor: dict[str, Any]) -> str:
    return executor.get("locationname") or "n/a"


def _last_heard(executor: dict[str, Any]) -> str:
    return format_time(executor.get("lastheardfromtime"))


@app.command("add")
def executor_add(
    name: Annotated[str | None, typer.Option("--name", help="Executor name (or the spec's)")] = None,
    executor_type: Annotated[str | None, typer.Option(
        "--type", help="Executor type, what it runs (or the spec's)")] = None,
    spec: Annotated[Path | None, typer.Option(
        "--spec", help="An Executor JSON file (executorname, executortype, locationname, capabilities, "
        "...); the flags override its fields")] = None,
    executorid: Annotated[str | None, typer.Option(help="Id of the executor's key (64 hex)")] = None,
    prvkey_file: Annotated[Path | None, typer.Option(
        "--prvkey-file", help="The executor's private key file; a new key is written there if it does not "
        "exist")] = None,
    approve: Annotated[bool, typer.Option("--approve", help="Approve it right away")] = False,
    location: Annotated[str, typer.Option(help="Location name")] = "",
    colony: ColonyOption = None,
) -> None:
    """Register an executor in the colony (COLONIES_COLONY_PRVKEY).

    It is pending until approved (--approve does that now). Give --name and --type, or --spec with
    an Executor JSON. Its key is the one whose id is --executorid (or the spec's executorid), the
    one in --prvkey-file (a new one is written there if the file does not exist), or a new key,
    printed once as "PrvKey: ..."."""
    with session() as (settings, client):
        executor = _executor_spec(spec) if spec is not None else {}
        flags = (("executorname", name), ("executortype", executor_type), ("locationname", location))
        executor.update({key: value for key, value in flags if value})
        for key, flag in (("executorname", "--name"), ("executortype", "--type")):
            if not executor.get(key):
                where = f"the spec {spec} has none" if spec is not None else "or --spec with an Executor JSON"
                raise CliError(f"{flag} is required ({where})")
        if executorid is None and prvkey_file is None and executor.get("executorid"):
            executorid = str(executor["executorid"])
        colonyname = settings.colony(colony or executor.get("colonyname") or None)
        colony_key = settings.colony_key()
        identity = new_identity(executorid, prvkey_file=prvkey_file, id_flag="--executorid")
        executor.update({"executorid": identity.id, "colonyname": colonyname})
        name = str(executor["executorname"])
        client.add_executor(executor, colony_key)
        typer.echo(f"ExecutorId: {identity.id}")
        show_new_key(identity, "COLONIES_PRVKEY")
        info(f"Executor {name} added to colony {colonyname}")
        if approve:
            client.approve_executor(colonyname, name, colony_key)
            info(f"Executor {name} approved")


def _executor_spec(path: Path) -> dict[str, Any]:
    data = load_json(path, "executor spec")
    if not isinstance(data, dict):
        raise CliError(f"the executor spec {path} must be a JSON object (an Executor), not "
                       f"{type(data).__name__}")
    return dict(data)


@app.command("ls")
def executor_ls(
    show_all: Annotated[bool, typer.Option("--all", help="Also unregistered (removed) executors, "
                                           "with a STATE column")] = False,
    executor_type: Annotated[str | None, typer.Option("--type", help="Only executors of this type")] = None,
    location: Annotated[str | None, typer.Option(help="Only executors at this location")] = None,
    full: Annotated[bool, typer.Option("--full", help="Every executor's details (as executor get), "
                                       "its hardware, software and functions")] = False,
    colony: ColonyOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the colony's executors (COLONIES_PRVKEY).

    Sorted by type; removed (unregistered) executors are hidden unless --all."""
    with session() as (settings, client):
        colonyname, key = settings.colony(colony), settings.key()
        executors = client.list_executors(colonyname, key)
        functions = client.get_functions_by_colony(colonyname, key) if full and not json_output else []
    executors = [e for e in executors
                 if (show_all or e.get("state") != wire.UNREGISTERED)
                 and (executor_type is None or e.get("executortype") == executor_type)
                 and (location is None or e.get("locationname", "") == location)]
    if json_output:
        print_json(executors)
        return
    if not executors:
        info("No executors found")
        return
    if full:
        for executor in sorted(executors, key=lambda e: str(e.get("executortype", "")), reverse=True):
            print_executor(executor, [f for f in functions
                                      if f.get("executorname") == executor.get("executorname")])
        return
    columns: list[Column] = [("Name", pick("executorname")), ("Type", pick("executortype"))]
    if show_all:
        columns.append(("State", lambda e: state_label(e.get("state"))))
    columns += [("Location", _location), ("Last heard from", _last_heard)]
    print_table(sorted(executors, key=lambda e: str(e.get("executortype", "")), reverse=True), columns)


@app.command("get")
def executor_get(name: NameOption, colony: ColonyOption = None, json_output: JsonOption = False) -> None:
    """Show an executor, its capabilities and its registered functions (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        colonyname, key = settings.colony(colony), settings.key()
        executor = client.get_executor(colonyname, name, key)
        functions = [] if json_output else client.get_functions_by_executor(colonyname, name, key)
    if json_output:
        print_json(executor)
        return
    print_executor(executor, functions)


def print_executor(executor: dict[str, Any], functions: list[dict[str, Any]]) -> None:
    """The detail tables of an executor: itself, each hardware and software entry, each function."""
    print_details([
        ("Name", executor.get("executorname")),
        ("Id", executor.get("executorid")),
        ("Type", executor.get("executortype")),
        ("Colony", executor.get("colonyname")),
        ("State", state_label(executor.get("state"))),
        ("RequireFuncRegistration", "True" if executor.get("requirefuncreg") else "False"),
        ("Commission Time", format_time(executor.get("commissiontime"))),
        ("Last Heard From", _last_heard(executor)),
        ("Location", _location(executor)),
    ])
    capabilities = executor.get("capabilities") or {}
    for i, item in enumerate(capabilities.get("hardware") or []):
        if isinstance(item, dict) and item:
            print_details(hardware_rows(item), title=f"Hardware [{i}]")
    for i, item in enumerate(capabilities.get("software") or []):
        if isinstance(item, dict) and item:
            print_details([("Name", item.get("name")), ("Type", item.get("type")),
                           ("Version", item.get("version"))], title=f"Software [{i}]")
    for function in functions:
        print_details([
            ("FunctionName", function.get("funcname")),
            ("FunctionId", function.get("functionid")),
            ("Call counter", function.get("counter", 0)),
            *((label, f"{float(function.get(label.lower()) or 0):f} s") for label in FUNCTION_TIMES),
        ], title=f"Function: {function.get('funcname')}")


def hardware_rows(item: dict[str, Any]) -> list[tuple[str, Any]]:
    """A hardware entry's rows, as the reference prints them."""
    gpu = item.get("gpu") if isinstance(item.get("gpu"), dict) else {}
    network = item.get("network")
    return [("Nodes", item.get("nodes")), ("Model", item.get("model")), ("CPU", item.get("cpu")),
            ("Cores", item.get("cores")), ("Memory", item.get("mem")), ("Storage", item.get("storage")),
            ("GPU", gpu.get("name")), ("GPUs", gpu.get("count")), ("GPU/Node", gpu.get("nodecount")),
            ("GPU Memory", gpu.get("mem")), ("Platform", item.get("platform")),
            ("Architecture", item.get("architecture")),
            ("Network", ", ".join(map(str, network)) if isinstance(network, list) else network)]


@app.command("chid")
def executor_chid(
    executorid: Annotated[str | None, typer.Option(
        help="The new id (of the executor's new key, 64 hex)")] = None,
    prvkey_file: rotation.PrvkeyFileOption = None,
    colony: ColonyOption = None,
) -> None:
    """Change the signing executor's own id, i.e. its key (COLONIES_PRVKEY).

    Its running processes stay its own. The new id is --executorid, the id of the key in
    --prvkey-file (written there if the file does not exist), or of a new key printed once. The
    old key is refused afterwards."""
    with session() as (settings, client):
        colonyname, key = settings.colony(colony), settings.key()
        identity = rotation.new_id(executorid, prvkey_file, "--executorid")
        client.change_executor_id(colonyname, identity.id, key)
    rotation.report(identity, "ExecutorId", "the executor", "COLONIES_PRVKEY")


@app.command("approve")
def executor_approve(name: NameOption, colony: ColonyOption = None) -> None:
    """Approve a registered executor so it may take processes (COLONIES_COLONY_PRVKEY)."""
    _change(name, colony, "approved")


@app.command("reject")
def executor_reject(name: NameOption, colony: ColonyOption = None) -> None:
    """Reject an executor: it may no longer take processes (COLONIES_COLONY_PRVKEY)."""
    _change(name, colony, "rejected")


@app.command("remove")
def executor_remove(name: NameOption, colony: ColonyOption = None) -> None:
    """Remove (unregister) an executor and its registered functions (COLONIES_COLONY_PRVKEY)."""
    _change(name, colony, "removed")


def _change(name: str, colony: str | None, done: str) -> None:
    with session() as (settings, client):
        colonyname, colony_key = settings.colony(colony), settings.colony_key()
        action = {"approved": client.approve_executor, "rejected": client.reject_executor,
                  "removed": client.remove_executor}[done]
        action(colonyname, name, colony_key)
    info(f"Executor {name} {done}")
