"""Row -> wire: the replies built from rows carry exactly the wire fields of the models."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from pycolonies.codec import from_wire, wire_name
from pycolonies.models import Cron, Generator, Process, ProcessGraph
from server.store import rows


class Row(dict):
    """A row with every column a mapper may ask for (asyncpg rows are read by name)."""

    def __missing__(self, column: str) -> Any:
        if column.endswith(("_ids",)) or column in ("input", "output", "errors"):
            return []
        if column in ("state", "retries", "priority_time", "interval_s", "timeout_s", "trigger",
                      "queue_size"):
            return 1
        if column.endswith(("_time", "_run", "_pack", "deadline")):
            return datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        if column in ("random", "wait_for_parents", "wait_for_prev_processgraph"):
            return True
        if column == "spec":
            return {"funcname": "f"}
        return f"<{column}>"

    def get(self, column: str, default: Any = None) -> Any:
        return self[column] if column in ("parents", "children") else default


CASES: list[tuple[type, Callable[[Row], dict[str, Any]]]] = [
    (Process, lambda row: rows.to_process(row)),
    (ProcessGraph, lambda row: rows.to_graph(row, ["a" * 64])),
    (Cron, lambda row: rows.to_cron(row, 1000)),
    (Generator, lambda row: rows.to_generator(row, 1000)),
]


@pytest.mark.parametrize(("model", "to_wire"), CASES, ids=[c[0].__name__ for c in CASES])
def test_a_reply_has_exactly_the_models_wire_fields(model: type, to_wire: Callable[[Row], dict]) -> None:
    reply = to_wire(Row())
    assert set(reply) == {wire_name(f) for f in dataclasses.fields(model)}
    assert dataclasses.asdict(from_wire(model, reply))  # and the model reads it back
