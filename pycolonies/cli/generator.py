"""``colonies generator``: workflows submitted once enough arguments are packed (add, ls, get,
pack, remove)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pycolonies import wire
from pycolonies.cli.common import (
    JsonOption,
    checked_id,
    fail,
    format_time,
    info,
    pick,
    print_details,
    print_json,
    print_listing,
    session,
)
from pycolonies.cli.cron import load_workflow_specs

app = typer.Typer(no_args_is_help=True,
                  help="Manage generators (workflows submitted in batches of packed args).")

GeneratorIdOption = Annotated[str, typer.Option("--generatorid", help="Generator id")]
# The reference CLI calls its colony flag --colonyid, though it takes the colony's name.
GeneratorColonyOption = Annotated[str | None, typer.Option(
    "--colony", "--colonyid", help="Colony name (default COLONIES_COLONY_NAME)")]


@app.command("add")
def generator_add(
    name: Annotated[str, typer.Option(help="Generator name (unique in the colony)")],
    spec: Annotated[Path, typer.Option(help="Workflow file: a JSON array of function specs")],
    trigger: Annotated[int, typer.Option(help="Submit the workflow once this many args are packed")],
    timeout: Annotated[int, typer.Option(
        help="Also submit what is packed this many seconds after the first pack (0 or -1: never)")] = -1,
    colony: GeneratorColonyOption = None,
) -> None:
    """Add a generator (COLONIES_PRVKEY): each time --trigger args have been packed, the workflow
    is submitted with the packed args as its root processes' args."""
    if trigger < 1:
        fail("--trigger must be at least 1")
    if timeout < -1:
        fail("--timeout must be a number of seconds, or 0 or -1 for none")
    with session() as (settings, client):
        colonyname = settings.colony(colony)
        workflow = {"colonyname": colonyname, "functionspecs": load_workflow_specs(spec)}
        generator = {"colonyname": colonyname, "name": name, "workflowspec": json.dumps(workflow),
                     "trigger": trigger, "timeout": timeout}
        added = client.add_generator(generator, settings.key())
    typer.echo(f"GeneratorId: {added.get('generatorid', '')}")
    info(f"Generator {name} added")


@app.command("ls")
def generator_ls(
    count: Annotated[int, typer.Option(help=f"At most this many generators (up to {wire.MAX_COUNT})")] = 20,
    colony: GeneratorColonyOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the colony's generators (COLONIES_PRVKEY)."""
    if not 1 <= count <= wire.MAX_COUNT:
        fail(f"--count must be between 1 and {wire.MAX_COUNT}")
    with session() as (settings, client):
        generators = client.get_generators(settings.colony(colony), settings.key(), count)
    print_listing(generators, [("GeneratorId", pick("generatorid")), ("Name", pick("name")),
                               ("Initiator", pick("initiatorname"))],
                  json_output=json_output, empty="No generators found")


@app.command("get")
def generator_get(generatorid: GeneratorIdOption, json_output: JsonOption = False) -> None:
    """Show a generator (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        generator = client.get_generator(checked_id(generatorid, "--generatorid"), settings.key())
    if json_output:
        print_json(generator)
        return
    print_details([
        ("GeneratorId", generator.get("generatorid")),
        ("Name", generator.get("name")),
        ("Colony", generator.get("colonyname")),
        ("Initiator", generator.get("initiatorname")),
        ("Trigger", generator.get("trigger", 0)),
        ("Timeout", generator.get("timeout", 0)),
        ("Lastrun", format_time(generator.get("lastrun"))),
        ("CheckerPeriod", generator.get("checkerperiod", 0)),
        ("QueueSize", generator.get("queuesize", 0)),
    ], title="Generator")


@app.command("pack")
def generator_pack(
    generatorid: GeneratorIdOption,
    arg: Annotated[str, typer.Option(help="The argument to queue (a string)")],
) -> None:
    """Queue one argument for the generator's next workflow (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        client.pack_generator(checked_id(generatorid, "--generatorid"), arg, settings.key())
    info(f"Packed {arg!r} into generator {generatorid}")


@app.command("remove")
def generator_remove(generatorid: GeneratorIdOption) -> None:
    """Remove a generator (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        client.remove_generator(checked_id(generatorid, "--generatorid"), settings.key())
    info(f"Generator {generatorid} removed")
