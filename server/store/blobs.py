"""The embedded blob store: a file's bytes in PostgreSQL, in chunks, so that every server replica
serves them and an upload becomes visible only when its transaction commits whole."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.store import Executor as Db
from server.store import queries

SQL = queries.load("blobs")
CHUNK_BYTES = 1024 * 1024


async def get(db: Db, colony_name: str, object_name: str) -> Any:
    return await db.fetchrow(SQL["get"], colony_name, object_name)


async def begin(db: Db, colony_name: str, object_name: str, size: int, checksum: str) -> bool:
    """In the upload's transaction: claim the name; False if the colony has a blob of this name."""
    return await db.fetchrow(SQL["begin"], colony_name, object_name, size, checksum) is not None


async def add_chunk(db: Db, colony_name: str, object_name: str, seq: int, data: bytes) -> None:
    await db.execute(SQL["add_chunk"], colony_name, object_name, seq, data)


async def chunk(db: Db, colony_name: str, object_name: str, seq: int) -> bytes | None:
    return await db.fetchval(SQL["chunk"], colony_name, object_name, seq)


async def collect(db: Db, colony_name: str, object_names: Sequence[str]) -> list[str]:
    """Delete those of the blobs that no file revision refers to any more."""
    return [r["object"] for r in await db.fetch(SQL["collect"], colony_name, list(object_names))]


async def collect_orphans(db: Db, older_than_s: float) -> int:
    """Delete blobs uploaded more than ``older_than_s`` ago that no revision refers to."""
    return int(await db.fetchval(SQL["collect_orphans"], float(older_than_s)))
