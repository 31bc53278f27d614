"""``colonies log``: process and executor logs (get, search)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Read process and executor logs.")
