"""Colony files (revisions of named files under labels) and snapshots, metadata only: the bytes
are in blob storage, which a file's ``ref`` points at (never with credentials).

A revision that a snapshot holds is not deleted when its file is removed: it leaves its label
(``removed``) and goes when the last snapshot holding it does. Removals and snapshot changes of a
colony take ``lock_colony_files`` first, in their transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pycolonies.models import File, Snapshot
from server.store import Executor as Db
from server.store import queries
from server.store.rows import to_file, to_snapshot

SQL = queries.load("files")


async def add(db: Db, file: File, ref: dict[str, Any]) -> File:
    row = await db.fetchrow(
        SQL["add"], file.fileid, file.colonyname, file.label, file.name, file.size, file.checksum,
        file.checksumalg, ref, file.metadata, file.processid,
    )
    return to_file(row)


async def search(
    db: Db, colony_name: str, *, label: str, name: str, metadata: dict[str, str], process_id: str, count: int
) -> list[File]:
    rows = await db.fetch(SQL["search"], colony_name, label, name, metadata, process_id, count)
    return [to_file(r) for r in rows]


async def get(db: Db, colony_name: str, file_id: str) -> File | None:
    row = await db.fetchrow(SQL["get"], colony_name, file_id)
    return to_file(row) if row else None


async def revisions(db: Db, colony_name: str, label: str, name: str) -> list[File]:
    """Every revision of the file, newest (the latest) first."""
    return [to_file(r) for r in await db.fetch(SQL["revisions"], colony_name, label, name)]


async def latest_under_label(db: Db, colony_name: str, label: str) -> list[File]:
    return [to_file(r) for r in await db.fetch(SQL["latest_under_label"], colony_name, label)]


async def labels(db: Db, colony_name: str, prefix: str, exact: bool) -> list[tuple[str, int]]:
    """(label, number of files) for the label ``prefix`` (``exact``) or every label starting with it."""
    return [(r["label"], r["files"]) for r in await db.fetch(SQL["labels"], colony_name, prefix, exact)]


async def lock_colony_files(db: Db, colony_name: str) -> None:
    await db.execute(SQL["lock_colony_files"], colony_name)


async def remove_revisions(db: Db, colony_name: str, file_ids: Sequence[str]) -> int:
    """With the colony's files locked: remove these revisions; how many were removed."""
    return len(await db.fetch(SQL["remove_revisions"], colony_name, list(file_ids)))


async def create_snapshot(
    db: Db, snapshot_id: str, colony_name: str, label: str, name: str
) -> Snapshot | None:
    """With the colony's files locked: the new snapshot, or None if the name is taken."""
    row = await db.fetchrow(SQL["create_snapshot"], snapshot_id, colony_name, label, name)
    return to_snapshot(row) if row else None


async def get_snapshot(db: Db, colony_name: str, snapshot_id: str) -> Snapshot | None:
    row = await db.fetchrow(SQL["get_snapshot"], colony_name, snapshot_id)
    return to_snapshot(row) if row else None


async def get_snapshot_by_name(db: Db, colony_name: str, name: str) -> Snapshot | None:
    row = await db.fetchrow(SQL["get_snapshot_by_name"], colony_name, name)
    return to_snapshot(row) if row else None


async def list_snapshots(db: Db, colony_name: str) -> list[Snapshot]:
    return [to_snapshot(r) for r in await db.fetch(SQL["list_snapshots"], colony_name)]


async def remove_snapshots(db: Db, colony_name: str, snapshot_ids: Sequence[str]) -> int:
    """With the colony's files locked: delete these snapshots (and the removed revisions only they
    held); how many snapshots were deleted."""
    return len(await db.fetch(SQL["remove_snapshots"], colony_name, list(snapshot_ids)))


async def embedded_objects(db: Db, colony_name: str, file_ids: Sequence[str]) -> list[str]:
    """The embedded-store blobs these revisions refer to (to collect after removing them)."""
    return [r["object"] for r in await db.fetch(SQL["embedded_objects"], colony_name, list(file_ids))]
