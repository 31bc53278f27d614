"""A module that defines ``colonies`` itself: the worker must not replace it."""

from __future__ import annotations

colonies = "the module's own colonies"


def which_colonies() -> tuple[str, bool]:
    return colonies, "func_spec" in globals()
