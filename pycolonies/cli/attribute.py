"""``colonies attribute``: process attributes (add, get)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Add and read process attributes.")
