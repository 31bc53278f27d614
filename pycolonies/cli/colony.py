"""``colonies colony``: colonies (add, ls, get, remove, stats)."""

from __future__ import annotations

from typing import Annotated

import typer

from pycolonies.cli import rotation
from pycolonies.cli.common import (
    ColonyOption,
    JsonOption,
    confirm_destructive,
    info,
    new_identity,
    pick,
    print_details,
    print_json,
    print_listing,
    session,
    show_new_key,
)

app = typer.Typer(no_args_is_help=True, help="Manage colonies.")

NameOption = Annotated[str, typer.Option("--name", help="Colony name")]

STATS_ROWS = (
    ("Executors", "executors"),
    ("Active executors", "activeexecutors"),
    ("Unregistered executors", "unregisteredexecutors"),
    ("Waiting processes", "waitingprocesses"),
    ("Running processes", "runningprocesses"),
    ("Successful processes", "successfulprocesses"),
    ("Failed processes", "failedprocesses"),
    ("Waiting workflows", "waitingworkflows"),
    ("Running workflows", "runningworkflows"),
    ("Successful workflows", "successfulworkflows"),
    ("Failed workflows", "failedworkflows"),
)


@app.command("add")
def colony_add(
    name: NameOption,
    colonyid: Annotated[str | None, typer.Option(help="Id of the colony owner's key (64 hex)")] = None,
    colonyprvkey: Annotated[str | None, typer.Option(
        help="The colony owner's private key (default: generate one and print it once)")] = None,
) -> None:
    """Add a colony (COLONIES_SERVER_PRVKEY).

    Its owner key is --colonyprvkey, the key whose id is --colonyid, or a new key, printed once
    as "PrvKey: ..." (keep it: it is stored nowhere)."""
    with session() as (settings, client):
        server_key = settings.server_key()
        identity = new_identity(colonyid, prvkey=colonyprvkey, id_flag="--colonyid",
                                prvkey_flag="--colonyprvkey")
        client.add_colony({"colonyid": identity.id, "name": name}, server_key)
        typer.echo(f"ColonyId: {identity.id}")
        show_new_key(identity, "COLONIES_COLONY_PRVKEY")
        info(f"Colony {name} added")


@app.command("ls")
def colony_ls(json_output: JsonOption = False) -> None:
    """List all colonies (COLONIES_SERVER_PRVKEY)."""
    with session() as (settings, client):
        colonies = client.list_colonies(settings.server_key())
    print_listing(colonies, [("Name", pick("name")), ("ColonyId", pick("colonyid"))],
                  json_output=json_output, empty="No colonies found")


@app.command("get")
def colony_get(
    name: Annotated[str | None, typer.Option(
        "--name", help="Colony name (default COLONIES_COLONY_NAME)")] = None,
    json_output: JsonOption = False,
) -> None:
    """Show a colony (signed by a member: COLONIES_PRVKEY)."""
    with session() as (settings, client):
        colony = client.get_colony(settings.colony(name), settings.key())
    if json_output:
        print_json(colony)
    else:
        print_details([("Name", colony.get("name")), ("ColonyId", colony.get("colonyid"))])


@app.command("remove")
def colony_remove(
    name: NameOption,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Remove a colony and everything in it (COLONIES_SERVER_PRVKEY).

    Its executors, users, processes, workflows, crons and logs go with it. Asks for YES unless
    --yes."""
    with session() as (settings, client):
        server_key = settings.server_key()
        confirm_destructive(f"remove colony {name} and everything in it", yes)
        client.del_colony(name, server_key)
    info(f"Colony {name} removed")


@app.command("stats")
def colony_stats(
    name: Annotated[str | None, typer.Option(
        "--name", help="Colony name (default COLONIES_COLONY_NAME)")] = None,
    json_output: JsonOption = False,
) -> None:
    """Executor, process and workflow counters of a colony (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        colonyname = settings.colony(name)
        stats = client.stats(colonyname, settings.key())
    if json_output:
        print_json(stats)
    else:
        print_details([("Colony", colonyname), *((label, stats.get(key, 0)) for label, key in STATS_ROWS)])



@app.command("chid")
def colony_chid(
    colonyid: Annotated[str | None, typer.Option(help="The new id (of the new owner key, 64 hex)")] = None,
    prvkey_file: rotation.PrvkeyFileOption = None,
    colony: ColonyOption = None,
) -> None:
    """Change the colony's id, i.e. its owner key (COLONIES_COLONY_PRVKEY).

    The new id is --colonyid, the id of the key in --prvkey-file (written there if the file does
    not exist), or of a new key printed once. The old owner key is refused afterwards."""
    with session() as (settings, client):
        colonyname, colony_key = settings.colony(colony), settings.colony_key()
        identity = rotation.new_id(colonyid, prvkey_file, "--colonyid")
        client.change_colony_id(colonyname, identity.id, colony_key)
    rotation.report(identity, "ColonyId", f"colony {colonyname}", "COLONIES_COLONY_PRVKEY")
