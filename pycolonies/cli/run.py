"""``colonies run``: interactive mode (pick a registered function, enter inputs, submit, watch)."""

from __future__ import annotations

from pycolonies.cli.common import fail


def run_interactive() -> None:
    """Interactive mode: pick a registered function, enter or load JSON inputs, submit, watch it."""
    fail("interactive mode is not available yet")
