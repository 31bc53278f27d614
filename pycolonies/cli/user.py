"""``colonies user``: the users of a colony (add, ls, get, remove)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Manage the users of a colony.")
