"""``colonies user``: a colony's users (add, ls, get, remove)."""

from __future__ import annotations

from pathlib import Path
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
    print_table,
    session,
    show_new_key,
)

app = typer.Typer(no_args_is_help=True, help="Manage a colony's users.")

NameOption = Annotated[str, typer.Option("--name", help="User name")]


@app.command("add")
def user_add(
    name: NameOption,
    email: Annotated[str, typer.Option(help="E-mail address")] = "",
    phone: Annotated[str, typer.Option(help="Phone number")] = "",
    userid: Annotated[str | None, typer.Option(help="Id of the user's key (64 hex)")] = None,
    prvkey_file: Annotated[Path | None, typer.Option(
        "--prvkey-file", help="The user's private key file; a new key is written there if it does not "
        "exist")] = None,
    colony: ColonyOption = None,
) -> None:
    """Add a user to the colony (COLONIES_COLONY_PRVKEY).

    The user's key is the one whose id is --userid, the one in --prvkey-file (a new one is
    written there if the file does not exist), or a new key, printed once as "PrvKey: ..."."""
    with session() as (settings, client):
        colonyname = settings.colony(colony)
        colony_key = settings.colony_key()
        identity = new_identity(userid, prvkey_file=prvkey_file, id_flag="--userid")
        user = {"colonyname": colonyname, "userid": identity.id, "name": name, "email": email,
                "phone": phone}
        client.add_user(user, colony_key)
        typer.echo(f"UserId: {identity.id}")
        show_new_key(identity, "COLONIES_PRVKEY")
        info(f"User {name} added to colony {colonyname}")


@app.command("ls")
def user_ls(colony: ColonyOption = None, json_output: JsonOption = False) -> None:
    """List the colony's users (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        users = client.get_users(settings.colony(colony), settings.key())
    if json_output:
        print_json(users)
    elif not users:
        info("No users found")
    else:
        users = sorted(users, key=lambda user: str(user.get("name", "")), reverse=True)
        print_table(users, [("Username", pick("name")), ("Email", pick("email")), ("Phone", pick("phone"))])


@app.command("get")
def user_get(name: NameOption, colony: ColonyOption = None, json_output: JsonOption = False) -> None:
    """Show a user (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        user = client.get_user(settings.colony(colony), name, settings.key())
    if json_output:
        print_json(user)
    else:
        print_details([("Username", user.get("name")), ("UserId", user.get("userid")),
                       ("Phone", user.get("phone")), ("Email", user.get("email")),
                       ("Colony", user.get("colonyname"))])


@app.command("remove")
def user_remove(
    name: NameOption,
    colony: ColonyOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Remove a user from the colony (COLONIES_COLONY_PRVKEY).

    Asks for YES unless --yes."""
    with session() as (settings, client):
        colonyname = settings.colony(colony)
        colony_key = settings.colony_key()
        confirm_destructive(f"remove user {name} from colony {colonyname}", yes)
        client.remove_user(colonyname, name, colony_key)
    info(f"User {name} removed from colony {colonyname}")



@app.command("chid")
def user_chid(
    userid: Annotated[str | None, typer.Option(help="The new id (of the user's new key, 64 hex)")] = None,
    prvkey_file: rotation.PrvkeyFileOption = None,
    colony: ColonyOption = None,
) -> None:
    """Change the signing user's own id, i.e. its key (COLONIES_PRVKEY).

    The new id is --userid, the id of the key in --prvkey-file (written there if the file does not
    exist), or of a new key printed once. The old key is refused afterwards."""
    with session() as (settings, client):
        colonyname, key = settings.colony(colony), settings.key()
        identity = rotation.new_id(userid, prvkey_file, "--userid")
        client.change_user_id(colonyname, identity.id, key)
    rotation.report(identity, "UserId", "the user", "COLONIES_PRVKEY")
