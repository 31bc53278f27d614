"""``colonies colony``: colonies (add, ls, get, remove, stats)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Manage colonies.")
