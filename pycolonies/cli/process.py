"""``colonies process``: inspect and manage processes (ps, psw, pss, psf, psc, get, remove, removeall,
cancel, assign, close, fail)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Inspect and manage processes.")
