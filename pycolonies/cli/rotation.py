"""What the ``chid`` commands (colony, user, executor, server) share: the new id (given, read
from a key file, or a key generated here and shown once) and what to tell the user afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pycolonies.cli.common import NewIdentity, info, new_identity, show_new_key

PrvkeyFileOption = Annotated[Path | None, typer.Option(
    "--prvkey-file", help="The new private key's file; a new key is written there if it does not exist")]


def new_id(given_id: str | None, prvkey_file: Path | None, id_flag: str) -> NewIdentity:
    """The id to change to: ``--<x>id``, the key in ``--prvkey-file``, or a new key."""
    return new_identity(given_id, prvkey_file=prvkey_file, id_flag=id_flag)


def report(identity: NewIdentity, label: str, what: str, env_var: str) -> None:
    """Print the new id (and a generated key, once) and say that the old key is now refused."""
    typer.echo(f"{label}: {identity.id}")
    show_new_key(identity, env_var)
    info(f"The id of {what} changed; the old key is refused from now on, sign with the new one "
         f"({env_var})")
