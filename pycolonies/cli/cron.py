"""``colonies cron``: workflows run on a schedule (add, ls, get, remove, run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pycolonies.cli.common import (
    CliError,
    ColonyOption,
    JsonOption,
    fail,
    format_time,
    info,
    pick,
    print_details,
    print_json,
    print_listing,
    session,
)

app = typer.Typer(no_args_is_help=True, help="Manage crons (workflows run on a schedule).")

CronIdOption = Annotated[str, typer.Option("--cronid", help="Cron id")]


def load_workflow_specs(path: Path) -> list[Any]:
    """The function specs of a workflow file: a JSON array of function specs (the reference
    format), a ``{"functionspecs": [...]}`` workflow, or a single function spec."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from None
    if isinstance(data, dict) and "functionspecs" in data:
        data = data["functionspecs"]
    elif isinstance(data, dict):  # one function spec: a workflow of one node, named after its function
        data = [{**data, "nodename": data.get("nodename") or data.get("funcname", "")}]
    if not isinstance(data, list) or not data or not all(isinstance(spec, dict) for spec in data):
        raise CliError(f"{path} must hold a JSON array of function specs")
    return data


def _flag(value: Any) -> str:
    return "true" if value else "false"


@app.command("add")
def cron_add(
    name: Annotated[str, typer.Option(help="Cron name (unique in the colony)")],
    spec: Annotated[Path, typer.Option(help="Workflow file: a JSON array of function specs")],
    cron: Annotated[str, typer.Option(
        "--cron", help="Cron expression: 6 fields with seconds first, 5 fields, or @daily, @every 10s, ...",
    )] = "",
    interval: Annotated[int, typer.Option(help="Run every INTERVAL seconds instead of on --cron")] = -1,
    random: Annotated[bool, typer.Option(
        "--random", help="With --interval: each next run after a random delay below INTERVAL")] = False,
    wait_for_prev: Annotated[bool, typer.Option(
        "--waitforprev", "--waitprevious", help="Skip a run while the previous workflow is still active",
    )] = False,
    colony: ColonyOption = None,
) -> None:
    """Run a workflow on a schedule (COLONIES_PRVKEY).

    --spec is a JSON array of function specs (as for workflow submit); it runs on the --cron
    expression or every --interval seconds."""
    if bool(cron) == (interval > 0):
        fail("give either --cron or a positive --interval")
    if random and interval <= 0:
        fail("--random needs --interval")
    with session() as (settings, client):
        colonyname, key = settings.colony(colony), settings.key()
        workflow = {"colonyname": colonyname, "functionspecs": load_workflow_specs(spec)}
        added = client.add_cron(name, cron, wait_for_prev, workflow, colonyname, key,
                                interval=interval, random=random)
    typer.echo(f"CronId: {added.get('cronid', '')}")
    info(f"Cron {name} added, next run {format_time(added.get('nextrun')) or 'not scheduled'}")


@app.command("ls")
def cron_ls(
    count: Annotated[int, typer.Option(help="At most this many crons (up to 100)")] = 20,
    colony: ColonyOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the colony's crons (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        crons = client.get_crons(settings.colony(colony), count, settings.key())
    print_listing(crons, [("CronId", pick("cronid")), ("Name", pick("name")),
                          ("Initiator", pick("initiatorname"))],
                  json_output=json_output, empty="No crons found")


@app.command("get")
def cron_get(cronid: CronIdOption, json_output: JsonOption = False) -> None:
    """Show a cron (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        cron = client.get_cron(cronid, settings.key())
    if json_output:
        print_json(cron)
        return
    print_details([
        ("CronId", cron.get("cronid")),
        ("Name", cron.get("name")),
        ("Colony", cron.get("colonyname")),
        ("InitiatorID", cron.get("initiatorid")),
        ("Initiator", cron.get("initiatorname")),
        ("Cron Expression", cron.get("cronexpression")),
        ("Interval", cron.get("interval", 0)),
        ("Random", _flag(cron.get("random"))),
        ("NextRun", format_time(cron.get("nextrun"))),
        ("LastRun", format_time(cron.get("lastrun"))),
        ("PrevProcessGraphID", cron.get("prevprocessgraphid")),
        ("WaitForPrevProcessGraph", _flag(cron.get("waitforprevprocessgraph"))),
        ("CheckerPeriod", cron.get("checkerperiod", 0)),
    ], title="Cron")


@app.command("remove")
def cron_remove(cronid: CronIdOption) -> None:
    """Remove a cron (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        client.del_cron(cronid, settings.key())
    info(f"Cron {cronid} removed")


@app.command("run")
def cron_run(cronid: CronIdOption) -> None:
    """Run a cron's workflow now; its schedule is kept (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        cron = client.run_cron(cronid, settings.key())
    if cron.get("prevprocessgraphid"):
        typer.echo(f"WorkflowId: {cron['prevprocessgraphid']}")
    info(f"Cron {cron.get('name') or cronid} run")
