"""``colonies dev``: PostgreSQL, the server, a python executor and a dev colony in one command."""

from __future__ import annotations

from pycolonies.cli.common import fail


def dev() -> None:
    """Start everything a newcomer needs (embedded PostgreSQL, server, python executor, dev colony)."""
    fail("colonies dev is not available yet")
