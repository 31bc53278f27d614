"""``colonies function``: registered functions (ls, remove) and submitting them (submit, exec)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="List, submit and run functions.")
