"""Generators: a stored workflow spec fed with packed string arguments, kept in pack order.

Packing and submitting lock the generator row first, so the packs of one generator are numbered
(``arg_id``) in the order they commit, and a batch is taken and deleted by exactly one submitter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from server.store import Executor as Db

_OWN_COLUMNS = """generator_id, colony_name, name, workflow_spec, trigger, timeout_s, first_pack, last_run,
    initiator_id, initiator_name"""
COLUMNS = ", ".join(f"g.{c.strip()}" for c in _OWN_COLUMNS.split(",")) + """,
    (SELECT count(*) FROM generator_args a WHERE a.generator_id = g.generator_id) AS queue_size"""


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
        f"""INSERT INTO generators (generator_id, colony_name, name, workflow_spec, trigger, timeout_s,
                                   initiator_id, initiator_name)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (colony_name, name) DO NOTHING
            RETURNING {_OWN_COLUMNS}, 0::bigint AS queue_size""",
        generator_id, colony_name, name, workflow_spec, trigger, timeout_s, initiator_id, initiator_name,
    )


async def get_row(db: Db, generator_id: str) -> Any:
    return await db.fetchrow(f"SELECT {COLUMNS} FROM generators g WHERE g.generator_id = $1", generator_id)


async def get_row_by_name(db: Db, colony_name: str, name: str) -> Any:
    return await db.fetchrow(
        f"SELECT {COLUMNS} FROM generators g WHERE g.colony_name = $1 AND g.name = $2", colony_name, name
    )


async def list_for_colony(db: Db, colony_name: str, count: int) -> list[Any]:
    return await db.fetch(
        f"SELECT {COLUMNS} FROM generators g WHERE g.colony_name = $1 ORDER BY g.name LIMIT $2",
        colony_name, count,
    )


async def remove(db: Db, generator_id: str) -> bool:
    """Delete the generator and its pending args."""
    found = await db.fetchval("DELETE FROM generators WHERE generator_id = $1 RETURNING true", generator_id)
    return found is not None


# -- packing and submitting -----------------------------------------------------------------------


async def lock(db: Db, generator_id: str, *, skip_locked: bool) -> Any:
    """Lock the generator for the rest of the transaction: its row plus ``now`` (database clock);
    None if it is gone (or, with ``skip_locked``, being packed or submitted elsewhere)."""
    return await db.fetchrow(
        f"""SELECT {_OWN_COLUMNS}, clock_timestamp() AS now FROM generators WHERE generator_id = $1
             FOR UPDATE{" SKIP LOCKED" if skip_locked else ""}""",
        generator_id,
    )


async def add_arg(db: Db, generator_id: str, arg: str) -> None:
    """With the generator locked: queue ``arg`` after the others; the first pack ever is recorded."""
    await db.execute("INSERT INTO generator_args (generator_id, arg) VALUES ($1, $2)", generator_id, arg)
    await db.execute(
        "UPDATE generators SET first_pack = clock_timestamp() WHERE generator_id = $1 AND first_pack IS NULL",
        generator_id,
    )


async def queue_state(db: Db, generator_id: str) -> tuple[int, datetime | None]:
    """How many args are queued, and when the oldest of them was packed."""
    row = await db.fetchrow(
        """SELECT count(*) AS queued,
                  (SELECT added FROM generator_args WHERE generator_id = $1 ORDER BY arg_id LIMIT 1) AS oldest
             FROM generator_args WHERE generator_id = $1""",
        generator_id,
    )
    return int(row["queued"]), row["oldest"]


async def first_args(db: Db, generator_id: str, limit: int) -> list[Any]:
    """The first ``limit`` queued args (``arg_id``, ``arg``) in pack order."""
    return await db.fetch(
        "SELECT arg_id, arg FROM generator_args WHERE generator_id = $1 ORDER BY arg_id LIMIT $2",
        generator_id, limit,
    )


async def take(db: Db, generator_id: str, arg_ids: Sequence[int]) -> None:
    """With the generator locked: delete the args just submitted and record the run."""
    await db.execute(
        "DELETE FROM generator_args WHERE generator_id = $1 AND arg_id = ANY($2::bigint[])",
        generator_id, list(arg_ids),
    )
    await db.execute(
        "UPDATE generators SET last_run = clock_timestamp() WHERE generator_id = $1", generator_id
    )


async def timed_out_ids(db: Db, limit: int) -> list[str]:
    """Generators with a timeout whose oldest queued arg has waited longer than it."""
    rows = await db.fetch(
        """SELECT g.generator_id
             FROM generators g
             CROSS JOIN LATERAL (SELECT a.added FROM generator_args a WHERE a.generator_id = g.generator_id
                                  ORDER BY a.arg_id LIMIT 1) oldest
            WHERE g.timeout_s > 0 AND oldest.added <= clock_timestamp() - make_interval(secs => g.timeout_s)
            ORDER BY oldest.added, g.generator_id LIMIT $1""",
        limit,
    )
    return [r["generator_id"] for r in rows]
