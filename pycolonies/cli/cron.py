"""``colonies cron``: crons (add, ls, get, remove, run)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Manage crons.")
