"""Processes: insert, assign, close, read, list and remove, each one conditional statement."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pycolonies import wire
from pycolonies.codec import WireDict
from pycolonies.crypto import sha3_hex
from pycolonies.models import Attribute, FuncSpec
from server.domain.priority import priority_time
from server.store import Executor as Db
from server.store import events, seen_requests, wakeups
from server.store import functions as function_stats
from server.store.rows import to_process

COLUMNS = (
    "process_id, colony_name, executor_type, state, assigned_executor_id, initiator_id, initiator_name, "
    "priority_time, submission_time, start_time, end_time, wait_deadline, exec_deadline, retries, spec, "
    "wait_for_parents, processgraph_id, input, output, errors"
)


def new_id() -> str:
    return sha3_hex(str(uuid.uuid4()))


def time_from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=(ns // 1000) % 1_000_000)


# The process's attributes as one JSON array, so a full read is one statement (alias ``p``).
ATTRIBUTES_SUBQUERY = """(SELECT coalesce(jsonb_agg(jsonb_build_object(
        'attributeid', a.attribute_id, 'targetid', a.target_id, 'targetcolonyname', a.colony_name,
        'targetprocessgraphid', a.processgraph_id, 'attributetype', a.attribute_type,
        'key', a.key, 'value', a.value) ORDER BY a.added, a.attribute_id), '[]'::jsonb)
    FROM attributes a WHERE a.target_id = p.process_id) AS attributes"""
# A workflow process's parents (in dependency order) and children, from the edges table.
EDGES_SUBQUERIES = """(SELECT coalesce(array_agg(e.parent_id ORDER BY e.edge_id), '{}')
    FROM process_edges e WHERE e.child_id = p.process_id) AS parents,
    (SELECT coalesce(array_agg(e.child_id ORDER BY e.edge_id), '{}')
    FROM process_edges e WHERE e.parent_id = p.process_id) AS children"""
FULL_COLUMNS = (", ".join(f"p.{c.strip()}" for c in COLUMNS.split(",")) + ", " + ATTRIBUTES_SUBQUERY + ", "
                + EDGES_SUBQUERIES)


def stored_spec(spec: FuncSpec) -> tuple[dict[str, Any], dict[str, str]]:
    """The spec as the processes table keeps it, and its env: env lives in ENV attributes and
    is merged back when the process is read."""
    stored = spec.to_wire()
    env = stored.pop("env", None) or {}
    stored["env"] = {}
    return stored, env


def executor_names(spec: FuncSpec) -> list[str]:
    return [n for n in (spec.conditions.executornames or []) if n]


def attribute_id(target_id: str, key: str, attribute_type: int) -> str:
    return sha3_hex(f"{target_id}{key}{attribute_type}")


async def insert(
    db: Db,
    spec: FuncSpec,
    *,
    initiator_id: str,
    cpu_millis: int,
    memory_bytes: int,
    submitted_ns: int,
    processgraph_id: str = "",
    wait_for_parents: bool = False,
    announce: bool = True,
    replay_key: str | None = None,
) -> WireDict | None:
    """Insert a WAITING process with its ENV attributes in one statement; with ``announce`` its
    queue's waiters are woken when the statement's transaction commits.

    The initiator must be a member of the colony (an approved executor or a user), whose name
    becomes ``initiatorname``; otherwise nothing is inserted and None is returned.
    """
    process_id = new_id()
    submitted = time_from_ns(submitted_ns)
    wait_deadline = submitted + timedelta(seconds=spec.maxwaittime) if spec.maxwaittime > 0 else None
    stored, env = stored_spec(spec)
    env_keys = list(env)
    row = await db.fetchrow(
        f"""
        WITH {seen_requests.SEEN_CTE.format(key="$27")},
        member AS ({MEMBER_NAME_SQL.format(colony="$2", signer="$8")}),
        p AS (
            INSERT INTO processes (process_id, colony_name, executor_type, executor_names, location_name,
                cpu_millis, memory_bytes, initiator_id, initiator_name, funcname, label, priority,
                priority_time, submission_time, wait_deadline, max_wait_time, max_exec_time, max_retries,
                spec, processgraph_id, wait_for_parents)
            SELECT $1, $2, $3, $4, $5, $6, $7, $8, member.name, $9, $10, $11, $12, $13, $14, $15, $16,
                   $17, $18, $19, $20
              FROM member
             WHERE {seen_requests.REQUEST_IS_FRESH.format(key="$27")}
            RETURNING {COLUMNS}),
        env AS (
            INSERT INTO attributes (attribute_id, target_id, colony_name, processgraph_id, attribute_type,
                                    key, value)
            SELECT e.id, $1, $2, $19, {wire.ENV}, e.key, e.value
              FROM unnest($21::text[], $22::text[], $23::text[]) AS e(id, key, value), p
            RETURNING 1),
        wake AS (SELECT pg_notify($24, $25) FROM p WHERE $26),
        event AS (SELECT {events.notify_sql("p")} FROM p)
        SELECT (SELECT count(*) FROM seen) AS seen, p.*, (SELECT count(*) FROM env) AS env_count,
               (SELECT count(*) FROM wake) AS woken, (SELECT count(*) FROM event) AS events
          FROM (VALUES (1)) AS one (x) LEFT JOIN p ON true
        """,
        process_id,
        spec.conditions.colonyname,
        spec.conditions.executortype,
        executor_names(spec),
        spec.conditions.locationname,
        cpu_millis,
        memory_bytes,
        initiator_id,
        spec.funcname,
        spec.label,
        spec.priority,
        priority_time(spec, submitted_ns),
        submitted,
        wait_deadline,
        spec.maxwaittime,
        spec.maxexectime,
        spec.maxretries,
        stored,
        processgraph_id,
        wait_for_parents,
        [attribute_id(process_id, key, wire.ENV) for key in env_keys],
        env_keys,
        [env[key] for key in env_keys],
        wakeups.CHANNEL,
        wakeups.topic(spec.conditions.colonyname, spec.conditions.executortype),
        announce and not wait_for_parents,
        replay_key,
    )
    seen_requests.check_recorded(row, replay_key)
    if row["process_id"] is None:
        return None
    attributes = [
        Attribute(
            attributeid=attribute_id(process_id, key, wire.ENV),
            targetid=process_id,
            targetcolonyname=spec.conditions.colonyname,
            targetprocessgraphid=processgraph_id,
            attributetype=wire.ENV,
            key=key,
            value=env[key],
        )
        for key in env_keys
    ]
    return to_process(row, attributes)


# The signer's name, if it is an approved executor (preferred) or a user of the colony.
MEMBER_NAME_SQL = """
    SELECT name FROM (
        SELECT name, 0 AS preference FROM executors
         WHERE colony_name = {colony} AND executor_id = {signer} AND state = 1
        UNION ALL
        SELECT name, 1 FROM users WHERE colony_name = {colony} AND user_id = {signer}
    ) m ORDER BY preference, name LIMIT 1"""



async def member_name(db: Db, colony_name: str, member_id: str) -> str | None:
    """The name under which ``member_id`` acts in the colony (an approved executor's name before a
    user's), or None if it is no member."""
    return await db.fetchval(MEMBER_NAME_SQL.format(colony="$1", signer="$2"), colony_name, member_id)


_ASSIGN_SQL = f"""
WITH {seen_requests.SEEN_CTE.format(key="$5")},
me AS (
    SELECT name, executor_type, location_name FROM executors
     WHERE colony_name = $1 AND executor_id = $2 AND state = 1
     ORDER BY name LIMIT 1
),
alive AS (
    UPDATE executors SET last_heard_from = clock_timestamp()
     WHERE colony_name = $1 AND executor_id = $2 AND state = 1
       AND (last_heard_from IS NULL OR last_heard_from < clock_timestamp() - interval '1 second')
    RETURNING 1
),
candidate AS (
    SELECT p.process_id FROM processes p, me
     WHERE p.colony_name = $1 AND p.executor_type = me.executor_type AND p.state = 0
       AND NOT p.wait_for_parents
       AND (cardinality(p.executor_names) = 0 OR me.name = ANY(p.executor_names)
            OR p.executor_names = '{{*}}')
       AND (p.location_name = '' OR lower(p.location_name) = lower(me.location_name))
       AND p.cpu_millis <= $3 AND p.memory_bytes <= $4
       AND {seen_requests.REQUEST_IS_FRESH.format(key="$5")}
     ORDER BY p.priority_time
     LIMIT 1
     FOR UPDATE OF p SKIP LOCKED
),
taken AS (
    UPDATE processes p
       SET state = 1, assigned_executor_id = $2, start_time = clock_timestamp(), end_time = NULL,
           exec_deadline = CASE WHEN p.max_exec_time > 0
                                THEN clock_timestamp() + make_interval(secs => p.max_exec_time) END
      FROM candidate
     WHERE p.process_id = candidate.process_id
    RETURNING {FULL_COLUMNS}
),
event AS (SELECT {events.notify_sql("taken")} FROM taken)
SELECT (SELECT count(*) FROM seen) AS seen, (SELECT count(*) FROM event) AS events,
       CASE WHEN taken.process_id IS NULL THEN  -- only probed when nothing was taken
           EXISTS (SELECT 1 FROM processes r, me
                    WHERE r.colony_name = $1 AND r.executor_type = me.executor_type AND r.state = 0
                      AND NOT r.wait_for_parents)
       END AS ready_left,
       taken.*
  FROM (VALUES (1)) AS one (x) LEFT JOIN taken ON true
"""


async def assign_next(
    db: Db,
    *,
    colony_name: str,
    executor_id: str,
    cpu_limit: int,
    memory_limit: int,
    replay_key: str | None = None,
) -> tuple[WireDict | None, bool]:
    """Atomically take the highest-priority ready process that the approved executor
    ``executor_id`` may run (and stamp its liveness); None if there is none, or if the signer is
    not an approved executor of the colony. ``replay_key`` records the request (first attempt).
    Also says whether ready processes of its type remain (ones it may not run, or locked ones)."""
    row = await db.fetchrow(_ASSIGN_SQL, colony_name, executor_id, cpu_limit, memory_limit, replay_key)
    seen_requests.check_recorded(row, replay_key)
    process = to_process(row) if row["process_id"] is not None else None
    return process, bool(row["ready_left"])


async def get_row(db: Db, process_id: str) -> Any:
    """The process row including its attributes (``to_process(row)`` builds the Process)."""
    return await db.fetchrow(f"SELECT {FULL_COLUMNS} FROM processes p WHERE p.process_id = $1", process_id)


async def get(db: Db, process_id: str) -> WireDict | None:
    row = await get_row(db, process_id)
    return to_process(row) if row else None


# The assignee holds the process only until its execution deadline; after that the sweeper
# retries or fails it, and a late close must not race it.
_LEASE_HELD = "(exec_deadline IS NULL OR exec_deadline > clock_timestamp())"
# ... and only while it is still an approved executor of the process's colony.
_APPROVED_ASSIGNEE = (
    "EXISTS (SELECT 1 FROM executors e WHERE e.colony_name = p.colony_name AND e.executor_id = $2 "
    f"AND e.state = {wire.APPROVED})"
)


# A CTE ``graph`` locking the graph of process $1, if any (``mode`` SHARE or UPDATE), before the
# statement's UPDATE of the process uses it: graph rows are locked before process rows everywhere.
_LOCK_GRAPH = """graph AS (
            SELECT g.processgraph_id FROM processgraphs g
             WHERE g.processgraph_id = (SELECT q.processgraph_id FROM processes q WHERE q.process_id = $1)
               FOR {mode} OF g)"""
_IN_LOCKED_GRAPH = "(processgraph_id = '' OR processgraph_id = (SELECT processgraph_id FROM graph))"


def lease_expired(row: Any) -> bool:
    deadline = row["exec_deadline"]
    return deadline is not None and deadline <= datetime.now(UTC)


async def close_successful(
    db: Db, process_id: str, executor_id: str, output: list[Any] | None, replay_key: str | None = None
) -> Any:
    """RUNNING -> SUCCESS by its assignee (still an approved executor, lease not expired), folding
    the run into its function's statistics. Returns the updated row, or None if refused. Run it in a
    transaction and release the process's children next (``graphs.after_success``). A workflow
    process share-locks its graph first, so that a cancellation (which locks the graph
    exclusively, then its processes) waits for the close instead of deadlocking with it."""
    row = await db.fetchrow(
        f"""
        WITH {seen_requests.SEEN_CTE.format(key="$4")},
        {_LOCK_GRAPH.format(mode="SHARE")},
        closed AS (
            UPDATE processes p SET state = 2, end_time = clock_timestamp(), exec_deadline = NULL,
                   output = COALESCE($3::jsonb, output)
             WHERE process_id = $1 AND state = 1 AND assigned_executor_id = $2 AND {_LEASE_HELD}
               AND {_APPROVED_ASSIGNEE} AND {seen_requests.REQUEST_IS_FRESH.format(key="$4")}
               AND {_IN_LOCKED_GRAPH}
         RETURNING {COLUMNS}, funcname),
        stats AS (
            {function_stats.RECORD_RUN}
            RETURNING 1),
        event AS (SELECT {events.notify_sql("closed")} FROM closed)
        SELECT (SELECT count(*) FROM seen) AS seen, closed.*,
               (SELECT count(*) FROM stats) AS functions_updated, (SELECT count(*) FROM event) AS events
          FROM (VALUES (1)) AS one (x) LEFT JOIN closed ON true
        """,
        process_id,
        executor_id,
        output,
        replay_key,
    )
    seen_requests.check_recorded(row, replay_key)
    return row if row["process_id"] is not None else None


async def close_failed(
    db: Db, process_id: str, executor_id: str, errors: list[Any], replay_key: str | None = None
) -> Any:
    """RUNNING -> FAILED by its assignee, locking its graph first, if any (run it in a transaction
    and cascade the failure next). Returns the updated row, or None if refused."""
    row = await db.fetchrow(
        f"""
        WITH {seen_requests.SEEN_CTE.format(key="$4")},
        {_LOCK_GRAPH.format(mode="UPDATE")},
        closed AS (
            UPDATE processes p SET state = 3, end_time = clock_timestamp(), exec_deadline = NULL,
                   errors = $3::jsonb
             WHERE process_id = $1 AND state = 1 AND assigned_executor_id = $2 AND {_LEASE_HELD}
               AND {_APPROVED_ASSIGNEE} AND {seen_requests.REQUEST_IS_FRESH.format(key="$4")}
               AND {_IN_LOCKED_GRAPH}
         RETURNING {COLUMNS}),
        event AS (SELECT {events.notify_sql("closed")} FROM closed)
        SELECT (SELECT count(*) FROM seen) AS seen, (SELECT count(*) FROM event) AS events, closed.*
          FROM (VALUES (1)) AS one (x) LEFT JOIN closed ON true
        """,
        process_id,
        executor_id,
        errors,
        replay_key,
    )
    seen_requests.check_recorded(row, replay_key)
    return row if row["process_id"] is not None else None


async def release(db: Db, process_id: str, executor_id: str) -> bool:
    """RUNNING -> WAITING by its assignee (still an approved executor, lease not expired), without
    counting a retry: the executor gives the process back (e.g. it is shutting down). Waiting
    executors are woken when the statement commits."""
    row = await db.fetchrow(
        f"""
        WITH released AS (
            UPDATE processes p SET state = 0, assigned_executor_id = '', start_time = NULL,
                   exec_deadline = NULL,
                   wait_deadline = CASE WHEN max_wait_time > 0
                                        THEN clock_timestamp() + make_interval(secs => max_wait_time) END
             WHERE process_id = $1 AND state = 1 AND assigned_executor_id = $2 AND {_LEASE_HELD}
               AND {_APPROVED_ASSIGNEE}
         RETURNING process_id, state, colony_name, executor_type),
        wake AS ({wakeups.wake_sql("released")}),
        event AS (SELECT {events.notify_sql("released")} FROM released)
        SELECT (SELECT count(*) FROM released) AS released, (SELECT count(*) FROM wake) AS woken,
               (SELECT count(*) FROM event) AS events
        """,
        process_id,
        executor_id,
    )
    return bool(row["released"])


async def set_output(db: Db, process_id: str, executor_id: str, output: list[Any]) -> bool:
    status = await db.execute(
        "UPDATE processes p SET output = $3::jsonb "
        f"WHERE process_id = $1 AND state = 1 AND assigned_executor_id = $2 AND {_LEASE_HELD} "
        f"AND {_APPROVED_ASSIGNEE}",
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
) -> list[WireDict]:
    rows = await db.fetch(
        f"""SELECT {FULL_COLUMNS} FROM processes p
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
    return [to_process(r) for r in rows]


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
        f"""WITH requeued AS (
            UPDATE processes SET state = 0, assigned_executor_id = '', start_time = NULL, end_time = NULL,
                   exec_deadline = NULL
             WHERE colony_name = $1 AND assigned_executor_id = $2 AND state = 1
         RETURNING process_id, state, colony_name, executor_type),
        event AS (SELECT {events.notify_sql("requeued")} FROM requeued)
        SELECT colony_name, executor_type, (SELECT count(*) FROM event) AS events FROM requeued""",
        colony_name,
        executor_id,
    )
    return sorted({(r["colony_name"], r["executor_type"]) for r in rows})
