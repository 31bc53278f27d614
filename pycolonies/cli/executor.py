"""``colonies executor``: manage a colony's executors. ``executor start`` is the executors' own
command (``executors.commands``, through the ``colonies.commands`` entry points)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pycolonies import wire
from pycolonies.cli.common import (
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
    name: NameOption,
    executor_type: Annotated[str, typer.Option("--type", help="Executor type (what it runs)")],
    executorid: Annotated[str | None, typer.Option(help="Id of the executor's key (64 hex)")] = None,
    prvkey_file: Annotated[Path | None, typer.Option(
        "--prvkey-file", help="The executor's private key file; a new key is written there if it does not "
        "exist")] = None,
    approve: Annotated[bool, typer.Option("--approve", help="Approve it right away")] = False,
    location: Annotated[str, typer.Option(help="Location name")] = "",
    colony: ColonyOption = None,
) -> None:
    """Register an executor in the colony (COLONIES_COLONY_PRVKEY).

    It is pending until approved (--approve does that now). Its key is the one whose id is
    --executorid, the one in --prvkey-file (a new one is written there if the file does not
    exist), or a new key, printed once as "PrvKey: ..."."""
    with session() as (settings, client):
        colonyname = settings.colony(colony)
        colony_key = settings.colony_key()
        identity = new_identity(executorid, prvkey_file=prvkey_file, id_flag="--executorid")
        executor: dict[str, Any] = {"executorid": identity.id, "executorname": name,
                                    "executortype": executor_type, "colonyname": colonyname}
        if location:
            executor["locationname"] = location
        client.add_executor(executor, colony_key)
        typer.echo(f"ExecutorId: {identity.id}")
        show_new_key(identity, "COLONIES_PRVKEY")
        info(f"Executor {name} added to colony {colonyname}")
        if approve:
            client.approve_executor(colonyname, name, colony_key)
            info(f"Executor {name} approved")


@app.command("ls")
def executor_ls(
    show_all: Annotated[bool, typer.Option("--all", help="Also unregistered (removed) executors, "
                                           "with a STATE column")] = False,
    executor_type: Annotated[str | None, typer.Option("--type", help="Only executors of this type")] = None,
    location: Annotated[str | None, typer.Option(help="Only executors at this location")] = None,
    colony: ColonyOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the colony's executors (COLONIES_PRVKEY).

    Sorted by type; removed (unregistered) executors are hidden unless --all."""
    with session() as (settings, client):
        executors = client.list_executors(settings.colony(colony), settings.key())
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
    for title in ("Hardware", "Software"):
        for i, item in enumerate(capabilities.get(title.lower()) or []):
            if isinstance(item, dict) and item:
                print_details(list(item.items()), title=f"{title} [{i}]")
    for function in functions:
        print_details([
            ("FunctionName", function.get("funcname")),
            ("FunctionId", function.get("functionid")),
            ("Call counter", function.get("counter", 0)),
            *((label, f"{float(function.get(label.lower()) or 0):f} s") for label in FUNCTION_TIMES),
        ], title=f"Function: {function.get('funcname')}")


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
