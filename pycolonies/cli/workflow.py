"""``colonies workflow``: workflows (submit, ps, psw, pss, psf, psc, get, remove, removeall, cancel)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Submit and inspect workflows.")
