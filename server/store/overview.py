"""What a colony's overview shows: counts by executor type and state, recent throughput, and the
process that has waited longest. Aggregates only: no statement returns every process."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pycolonies import wire
from pycolonies.codec import WireDict
from server.store import Executor as Db
from server.store import processes, queries

SQL = queries.load("overview")

_STATE_NAMES = {
    wire.WAITING: "waiting",
    wire.RUNNING: "running",
    wire.SUCCESS: "successful",
    wire.FAILED: "failed",
    wire.CANCELLED: "cancelled",
}


@dataclass
class TypeCounts:
    executortype: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_STATE_NAMES.values(), 0))
    oldest_waiting: datetime | None = None

    def to_wire(self) -> WireDict:
        return {
            "executortype": self.executortype,
            **self.counts,
            "oldestwaitingtime": wire.format_time(self.oldest_waiting) if self.oldest_waiting else "",
        }


async def counts_by_type(db: Db, colony_name: str) -> list[TypeCounts]:
    by_type: dict[str, TypeCounts] = {}
    for row in await db.fetch(SQL["counts_by_type"], colony_name):
        entry = by_type.setdefault(row["executor_type"], TypeCounts(row["executor_type"]))
        entry.counts[_STATE_NAMES[row["state"]]] = row["n"]
        if row["oldest_waiting"] is not None:
            entry.oldest_waiting = row["oldest_waiting"]
    return list(by_type.values())


async def ended_per_minute(db: Db, colony_name: str, minutes: int) -> dict[str, list[int]]:
    """Successful and failed ends per minute, oldest minute first (``minutes`` entries each)."""
    series = {"successful": [0] * minutes, "failed": [0] * minutes}
    for row in await db.fetch(SQL["ended_per_minute"], colony_name, minutes):
        ago = row["minutes_ago"]
        if 0 <= ago < minutes:
            series[_STATE_NAMES[row["state"]]][minutes - 1 - ago] = row["n"]
    return series


async def oldest_waiting(db: Db, colony_name: str) -> WireDict | None:
    process_id = await db.fetchval(SQL["oldest_waiting"], colony_name)
    return await processes.get(db, process_id) if process_id else None
