"""Spec dicts for the tests: a template with changes."""

from __future__ import annotations

from typing import Any


def with_changes(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``data`` with ``changes`` to its top level, in place: dict values are merged into dict
    entries (``kwargs``, ``conditions``), other values replace them."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return data
