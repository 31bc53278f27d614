"""Generators: a stored workflow spec fed with packed string arguments, kept in pack order.

Packing and submitting lock the generator row first, so the packs of one generator are numbered
(``arg_id``) in the order they commit, and a batch is taken and deleted by exactly one submitter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from server.store import Executor as Db
from server.store import queries

SQL = queries.load("generators")


async def insert(
    db: Db,
    *,
    generator_id: str,
    colony_name: str,
    name: str,
    workflow_spec: str,
    trigger: int,
    timeout_s: int,
    initiator_id: str,
    initiator_name: str,
) -> Any:
    """The new generator's row, or None if the colony already has a generator with this name."""
    return await db.fetchrow(
        SQL["insert"],
        generator_id, colony_name, name, workflow_spec, trigger, timeout_s, initiator_id, initiator_name,
    )


async def get_row(db: Db, generator_id: str) -> Any:
    return await db.fetchrow(SQL["get"], generator_id)


async def get_row_by_name(db: Db, colony_name: str, name: str) -> Any:
    return await db.fetchrow(SQL["get_by_name"], colony_name, name)


async def list_for_colony(db: Db, colony_name: str, count: int) -> list[Any]:
    return await db.fetch(SQL["list_for_colony"], colony_name, count)


async def remove(db: Db, generator_id: str) -> bool:
    """Delete the generator and its pending args."""
    found = await db.fetchval(SQL["remove"], generator_id)
    return found is not None


# -- packing and submitting -----------------------------------------------------------------------


async def lock(db: Db, generator_id: str, *, skip_locked: bool) -> Any:
    """Lock the generator for the rest of the transaction: its row plus ``now`` (database clock);
    None if it is gone (or, with ``skip_locked``, being packed or submitted elsewhere)."""
    return await db.fetchrow(SQL["lock_if_free"] if skip_locked else SQL["lock"], generator_id)


async def add_arg(db: Db, generator_id: str, arg: str) -> None:
    """With the generator locked: queue ``arg`` after the others; the first pack ever is recorded."""
    await db.execute(SQL["add_arg"], generator_id, arg)
    await db.execute(SQL["mark_first_pack"], generator_id)


async def queue_state(db: Db, generator_id: str) -> tuple[int, datetime | None]:
    """How many args are queued, and when the oldest of them was packed."""
    row = await db.fetchrow(SQL["queue_state"], generator_id)
    return int(row["queued"]), row["oldest"]


async def first_args(db: Db, generator_id: str, limit: int) -> list[Any]:
    """The first ``limit`` queued args (``arg_id``, ``arg``) in pack order."""
    return await db.fetch(SQL["first_args"], generator_id, limit)


async def take(db: Db, generator_id: str, arg_ids: Sequence[int]) -> None:
    """With the generator locked: delete the args just submitted and record the run."""
    await db.execute(SQL["delete_args"], generator_id, list(arg_ids))
    await db.execute(SQL["mark_run"], generator_id)


async def timed_out_ids(db: Db, limit: int) -> list[str]:
    """Generators with a timeout whose oldest queued arg has waited longer than it."""
    rows = await db.fetch(SQL["timed_out_ids"], limit)
    return [r["generator_id"] for r in rows]
