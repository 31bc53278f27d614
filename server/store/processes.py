"""Processes: insert, assign, close, read, list and remove, each one conditional statement."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from pycolonies import wire
from pycolonies.crypto import sha3_hex
from pycolonies.models import Attribute, FuncSpec, Process
from server.store import Executor as Db

COLUMNS = (
    "process_id, colony_name, state, assigned_executor_id, initiator_id, initiator_name, priority_time, "
    "submission_time, start_time, end_time, wait_deadline, exec_deadline, retries, spec, "
    "wait_for_parents, parents, children, processgraph_id, input, output, errors"
)


def new_id() -> str:
    return sha3_hex(str(uuid.uuid4()))


def time_from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=(ns // 1000) % 1_000_000)


def to_process(row: Any, attributes: list[Attribute] | None = None) -> Process:
    spec = FuncSpec.from_wire(row["spec"])
    attributes = attributes or []
    state = row["state"]
    for attribute in attributes:
        attribute.state = state
    env = {a.key: a.value for a in attributes if a.attributetype == wire.ENV}
    if env:
        spec.env = {**spec.env, **env}
    return Process(
        processid=row["process_id"],
        initiatorid=row["initiator_id"],
        initiatorname=row["initiator_name"],
        assignedexecutorid=row["assigned_executor_id"],
        isassigned=bool(row["assigned_executor_id"]),
        state=state,
        prioritytime=row["priority_time"],
        submissiontime=row["submission_time"],
        starttime=row["start_time"],
        endtime=row["end_time"],
        waitdeadline=row["wait_deadline"],
        execdeadline=row["exec_deadline"],
        retries=row["retries"],
        attributes=attributes,
        spec=spec,
        waitforparents=row["wait_for_parents"],
        parents=list(row["parents"]),
        children=list(row["children"]),
        processgraphid=row["processgraph_id"],
        input=row["input"],
        output=row["output"],
        errors=row["errors"],
    )


async def _attributes_for(db: Db, process_ids: list[str]) -> dict[str, list[Attribute]]:
    rows = await db.fetch(
        "SELECT attribute_id, target_id, colony_name, processgraph_id, attribute_type, key, value "
        "FROM attributes WHERE target_id = ANY($1::text[]) ORDER BY added, attribute_id",
        process_ids,
    )
    found: dict[str, list[Attribute]] = defaultdict(list)
    for r in rows:
        found[r["target_id"]].append(
            Attribute(
                attributeid=r["attribute_id"],
                targetid=r["target_id"],
                targetcolonyname=r["colony_name"],
                targetprocessgraphid=r["processgraph_id"],
                attributetype=r["attribute_type"],
                key=r["key"],
                value=r["value"],
            )
        )
    return found


async def with_attributes(db: Db, rows: list[Any]) -> list[Process]:
    if not rows:
        return []
    attributes = await _attributes_for(db, [r["process_id"] for r in rows])
    return [to_process(r, attributes.get(r["process_id"])) for r in rows]


def attribute_id(target_id: str, key: str, attribute_type: int) -> str:
    return sha3_hex(f"{target_id}{key}{attribute_type}")


async def insert(
    db: Db,
    spec: FuncSpec,
    *,
    initiator_id: str,
    initiator_name: str,
    cpu_millis: int,
    memory_bytes: int,
    submitted_ns: int,
    processgraph_id: str = "",
    wait_for_parents: bool = False,
) -> Process:
    """Insert a WAITING process and its ENV attributes; the caller holds the transaction."""
    process_id = new_id()
    submitted = time_from_ns(submitted_ns)
    wait_deadline = submitted + timedelta(seconds=spec.maxwaittime) if spec.maxwaittime > 0 else None
    stored_spec = spec.to_wire()
    stored_spec["env"] = {}  # env lives in ENV attributes, merged back on read
    row = await db.fetchrow(
        f"""
        INSERT INTO processes (process_id, colony_name, executor_type, executor_names, location_name,
            cpu_millis, memory_bytes, initiator_id, initiator_name, funcname, label, priority,
            priority_time, submission_time, wait_deadline, max_wait_time, max_exec_time, max_retries,
            spec, processgraph_id, wait_for_parents)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                $20, $21)
        RETURNING {COLUMNS}
        """,
        process_id,
        spec.conditions.colonyname,
        spec.conditions.executortype,
        [n for n in (spec.conditions.executornames or []) if n],
        spec.conditions.locationname,
        cpu_millis,
        memory_bytes,
        initiator_id,
        initiator_name,
        spec.funcname,
        spec.label,
        spec.priority,
        submitted_ns - spec.priority * wire.PRIORITY_TIME_UNIT_NS,
        submitted,
        wait_deadline,
        spec.maxwaittime,
        spec.maxexectime,
        spec.maxretries,
        stored_spec,
        processgraph_id,
        wait_for_parents,
    )
    attributes: list[Attribute] = []
    if spec.env:
        attributes = [
            Attribute(
                attributeid=attribute_id(process_id, key, wire.ENV),
                targetid=process_id,
                targetcolonyname=spec.conditions.colonyname,
                targetprocessgraphid=processgraph_id,
                attributetype=wire.ENV,
                key=key,
                value=value,
            )
            for key, value in spec.env.items()
        ]
        await db.executemany(
            "INSERT INTO attributes (attribute_id, target_id, colony_name, processgraph_id, "
            "attribute_type, key, value) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [
                (a.attributeid, a.targetid, a.targetcolonyname, a.targetprocessgraphid, a.attributetype,
                 a.key, a.value)
                for a in attributes
            ],
        )
    return to_process(row, attributes)


_ASSIGN_SQL = f"""
WITH candidate AS (
    SELECT process_id FROM processes
     WHERE colony_name = $1 AND executor_type = $2 AND state = 0 AND NOT wait_for_parents
       AND (cardinality(executor_names) = 0 OR $3 = ANY(executor_names) OR executor_names = '{{*}}')
       AND (location_name = '' OR lower(location_name) = lower($4))
       AND cpu_millis <= $5 AND memory_bytes <= $6
     ORDER BY priority_time
     LIMIT 1
     FOR UPDATE SKIP LOCKED
)
UPDATE processes p
   SET state = 1, assigned_executor_id = $7, start_time = clock_timestamp(), end_time = NULL,
       exec_deadline = CASE WHEN p.max_exec_time > 0
                            THEN clock_timestamp() + make_interval(secs => p.max_exec_time) END
  FROM candidate
 WHERE p.process_id = candidate.process_id
RETURNING {", ".join("p." + c.strip() for c in COLUMNS.split(","))}
"""


async def assign_next(
    db: Db,
    *,
    colony_name: str,
    executor_type: str,
    executor_name: str,
    executor_id: str,
    location_name: str,
    cpu_limit: int,
    memory_limit: int,
) -> Process | None:
    """Atomically take the highest-priority ready process this executor may run."""
    row = await db.fetchrow(
        _ASSIGN_SQL,
        colony_name,
        executor_type,
        executor_name,
        location_name,
        cpu_limit,
        memory_limit,
        executor_id,
    )
    if row is None:
        return None
    return (await with_attributes(db, [row]))[0]


async def get_row(db: Db, process_id: str) -> Any:
    return await db.fetchrow(f"SELECT {COLUMNS} FROM processes WHERE process_id = $1", process_id)


async def get(db: Db, process_id: str) -> Process | None:
    row = await get_row(db, process_id)
    return (await with_attributes(db, [row]))[0] if row else None


# The assignee holds the process only until its execution deadline; after that the sweeper
# retries or fails it, and a late close must not race it.
_LEASE_HELD = "(exec_deadline IS NULL OR exec_deadline > clock_timestamp())"


def lease_expired(row: Any) -> bool:
    deadline = row["exec_deadline"]
    return deadline is not None and deadline <= datetime.now(UTC)


async def close_successful(db: Db, process_id: str, executor_id: str, output: list[Any] | None) -> Any:
    """RUNNING -> SUCCESS by its assignee. Returns the updated row, or None if refused."""
    return await db.fetchrow(
        f"""UPDATE processes SET state = 2, end_time = clock_timestamp(), exec_deadline = NULL,
                   output = COALESCE($3::jsonb, output)
             WHERE process_id = $1 AND state = 1 AND assigned_executor_id = $2 AND {_LEASE_HELD}
         RETURNING {COLUMNS}""",
        process_id,
        executor_id,
        output,
    )


async def close_failed(db: Db, process_id: str, executor_id: str, errors: list[Any]) -> Any:
    """RUNNING -> FAILED by its assignee. Returns the updated row, or None if refused."""
    return await db.fetchrow(
        f"""UPDATE processes SET state = 3, end_time = clock_timestamp(), exec_deadline = NULL,
                   errors = $3::jsonb
             WHERE process_id = $1 AND state = 1 AND assigned_executor_id = $2 AND {_LEASE_HELD}
         RETURNING {COLUMNS}""",
        process_id,
        executor_id,
        errors,
    )


async def set_output(db: Db, process_id: str, executor_id: str, output: list[Any]) -> bool:
    status = await db.execute(
        "UPDATE processes SET output = $3::jsonb "
        f"WHERE process_id = $1 AND state = 1 AND assigned_executor_id = $2 AND {_LEASE_HELD}",
        process_id,
        executor_id,
        output,
    )
    return status.endswith(" 1")


_ORDER_BY_STATE = {
    wire.WAITING: "priority_time ASC",
    wire.RUNNING: "start_time ASC",
    wire.SUCCESS: "end_time DESC",
    wire.FAILED: "end_time DESC",
    wire.CANCELLED: "end_time DESC",
}


async def list_by_state(
    db: Db,
    colony_name: str,
    state: int,
    count: int,
    *,
    executor_type: str = "",
    label: str = "",
    initiator_name: str = "",
) -> list[Process]:
    rows = await db.fetch(
        f"""SELECT {COLUMNS} FROM processes
             WHERE colony_name = $1 AND state = $2
               AND ($4 = '' OR executor_type = $4)
               AND ($5 = '' OR label = $5)
               AND ($6 = '' OR initiator_name = $6)
             ORDER BY {_ORDER_BY_STATE[state]}, process_id
             LIMIT $3""",
        colony_name,
        state,
        count,
        executor_type,
        label,
        initiator_name,
    )
    return await with_attributes(db, rows)


async def remove(db: Db, process_id: str) -> bool:
    """Delete a process that is neither running nor part of a workflow."""
    status = await db.execute(
        "DELETE FROM processes WHERE process_id = $1 AND state <> 1 AND processgraph_id = ''", process_id
    )
    return status.endswith(" 1")


async def remove_all(db: Db, colony_name: str, state: int) -> int:
    """Delete the colony's processes outside workflows: all of them (state -1) or one state."""
    status = await db.execute(
        "DELETE FROM processes WHERE colony_name = $1 AND processgraph_id = '' AND ($2 = -1 OR state = $2)",
        colony_name,
        state,
    )
    return int(status.split()[-1])


async def requeue_for_executor(db: Db, colony_name: str, executor_id: str) -> list[tuple[str, str]]:
    """Put an executor's RUNNING processes back to WAITING; return their (colony, executortype)."""
    rows = await db.fetch(
        """UPDATE processes SET state = 0, assigned_executor_id = '', start_time = NULL, end_time = NULL,
                  exec_deadline = NULL
            WHERE colony_name = $1 AND assigned_executor_id = $2 AND state = 1
        RETURNING colony_name, executor_type""",
        colony_name,
        executor_id,
    )
    return sorted({(r["colony_name"], r["executor_type"]) for r in rows})
