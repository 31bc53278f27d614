"""Process graphs (workflows): submit, resolution after a close, cascades, add_child, reads, removal.

Edges are rows of ``process_edges`` (a child's parents in ``edge_id`` order are its dependency
order). Concurrency: a child counts its parents that have succeeded (``done_parents``); each
successful close increments its children's counters under their row locks, so concurrent closes
of a child's parents serialize on the child, and the next statement (a fresh snapshot) sees every
other parent's committed output. add_child holds share locks on the graph, the parent and the
child it feeds, so adds run side by side while a close of that parent or a count on that child
waits for them. Changes that touch many processes of a graph (failure cascades, cancellation)
lock the graph row exclusively first. A graph's stored state is WAITING while it is active and
FAILED/CANCELLED once it ends that way; whether an active graph is waiting, running or
successful is computed from its processes when it is read (``EFFECTIVE_STATE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pycolonies import wire
from pycolonies.codec import WireDict
from pycolonies.models import Attribute, FuncSpec
from server.domain import graph_plan
from server.domain.priority import priority_time
from server.domain.resources import parse_cpu, parse_memory
from server.store import Executor as Db
from server.store import events, wakeups
from server.store import processes as process_store
from server.store.rows import to_graph, to_process

FINAL_STATES = (wire.SUCCESS, wire.FAILED, wire.CANCELLED)

# A graph's processes in states other than SUCCESS, and ones that started (IN lists keep these
# index scans on (processgraph_id, state)).
_UNFINISHED = ("EXISTS (SELECT 1 FROM processes m WHERE m.processgraph_id = g.processgraph_id "
               "AND m.state IN (0, 1, 3, 4))")
_STARTED = ("EXISTS (SELECT 1 FROM processes m WHERE m.processgraph_id = g.processgraph_id "
            "AND m.state IN (1, 2))")
# The wire state of graph ``g``.
EFFECTIVE_STATE = f"""CASE WHEN g.state <> 0 THEN g.state WHEN NOT {_UNFINISHED} THEN 2
    WHEN {_STARTED} THEN 1 ELSE 0 END"""
GRAPH_COLUMNS = f"""g.processgraph_id, g.colony_name, g.initiator_id, g.initiator_name, g.root_process_ids,
    g.state AS stored_state, {EFFECTIVE_STATE} AS state, g.submission_time,
    coalesce(g.end_time, CASE WHEN g.state = 0 AND NOT {_UNFINISHED}
        THEN (SELECT max(m.end_time) FROM processes m WHERE m.processgraph_id = g.processgraph_id) END)
        AS end_time,
    (SELECT min(m.start_time) FROM processes m WHERE m.processgraph_id = g.processgraph_id) AS start_time"""

STATE_COLOURS = {
    wire.WAITING: "#eee8d8",
    wire.RUNNING: "#4689cd",
    wire.SUCCESS: "#92d050",
    wire.FAILED: "#cb4239",
    wire.CANCELLED: "#f5a623",
}


@dataclass
class Member:
    process_id: str
    nodename: str
    state: int
    parents: list[str]
    children: list[str]


# -- submit ---------------------------------------------------------------------------------------


async def insert_workflow(
    db: Db,
    *,
    colony_name: str,
    initiator_id: str,
    specs: Sequence[FuncSpec],
    nodes: Sequence[graph_plan.Node],
    submitted_ns: int,
    root_input: list[Any] | None = None,
    root_args: list[Any] | None = None,
) -> WireDict | None:
    """Create the graph and all its processes; call inside a transaction. Roots are ready at once
    (their executors are woken on commit), the others wait for their parents. ``root_input`` and
    ``root_args`` replace the roots' input and args (crons, generators). Returns the graph, or
    None when the initiator is not a member of the colony (nothing is written)."""
    initiator_name = await db.fetchval(
        process_store.MEMBER_NAME_SQL.format(colony="$1", signer="$2"), colony_name, initiator_id
    )
    if initiator_name is None:
        return None
    graph_id = process_store.new_id()
    submitted = process_store.time_from_ns(submitted_ns)
    ids = [process_store.new_id() for _ in specs]
    rows: list[dict[str, Any]] = []
    env_rows: list[dict[str, Any]] = []
    for spec, node, process_id in zip(specs, nodes, ids, strict=True):
        spec.conditions.colonyname = colony_name
        stored, env = process_store.stored_spec(spec)
        if node.is_root and root_args is not None:
            stored["args"] = list(root_args)
        ready = node.is_root
        rows.append({
            "process_id": process_id,
            "executor_type": spec.conditions.executortype,
            "executor_names": process_store.executor_names(spec),
            "location_name": spec.conditions.locationname,
            "cpu_millis": parse_cpu(spec.conditions.cpu),
            "memory_bytes": parse_memory(spec.conditions.mem),
            "funcname": spec.funcname,
            "label": spec.label,
            "priority": spec.priority,
            "priority_time": priority_time(spec, submitted_ns),
            "wait_deadline": (
                (submitted + timedelta(seconds=spec.maxwaittime)).isoformat()
                if ready and spec.maxwaittime > 0 else None
            ),
            "max_wait_time": spec.maxwaittime,
            "max_exec_time": spec.maxexectime,
            "max_retries": spec.maxretries,
            "spec": stored,
            "wait_for_parents": not ready,
            "input": list(root_input) if ready and root_input is not None else [],
        })
        for key, value in env.items():
            env_rows.append({
                "attribute_id": process_store.attribute_id(process_id, key, wire.ENV),
                "target_id": process_id,
                "key": key,
                "value": value,
            })
    roots = [ids[n.index] for n in nodes if n.is_root]
    await db.execute(
        """INSERT INTO processgraphs (processgraph_id, colony_name, initiator_id, initiator_name,
                                      root_process_ids, state, submission_time)
           VALUES ($1, $2, $3, $4, $5, 0, $6)""",
        graph_id, colony_name, initiator_id, initiator_name, roots, submitted,
    )
    await db.execute(
        f"""
        WITH inserted AS (
            INSERT INTO processes (process_id, colony_name, executor_type, executor_names, location_name,
                cpu_millis, memory_bytes, initiator_id, initiator_name, funcname, label, priority,
                priority_time, submission_time, wait_deadline, max_wait_time, max_exec_time, max_retries,
                spec, processgraph_id, wait_for_parents, input)
            SELECT r.process_id, $2, r.executor_type, r.executor_names, r.location_name, r.cpu_millis,
                   r.memory_bytes, $3, $4, r.funcname, r.label, r.priority, r.priority_time, $5,
                   r.wait_deadline, r.max_wait_time, r.max_exec_time, r.max_retries, r.spec, $6,
                   r.wait_for_parents, r.input
              FROM jsonb_to_recordset($1::jsonb) AS r(
                   process_id text, executor_type text, executor_names text[], location_name text,
                   cpu_millis bigint, memory_bytes bigint, funcname text, label text, priority integer,
                   priority_time bigint, wait_deadline timestamptz, max_wait_time integer,
                   max_exec_time integer, max_retries integer, spec jsonb, wait_for_parents boolean,
                   input jsonb)
            RETURNING process_id, state, colony_name, executor_type, wait_for_parents),
        env AS (
            INSERT INTO attributes (attribute_id, target_id, colony_name, processgraph_id, attribute_type,
                                    key, value)
            SELECT e.attribute_id, e.target_id, $2, $6, {wire.ENV}, e.key, e.value
              FROM jsonb_to_recordset($7::jsonb) AS e(attribute_id text, target_id text, key text, value text)
            RETURNING 1),
        to_wake AS (SELECT colony_name, executor_type FROM inserted WHERE NOT wait_for_parents),
        wake AS ({wakeups.wake_sql("to_wake")}),
        event AS (SELECT {events.notify_sql("inserted")} FROM inserted)
        SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM env), (SELECT count(*) FROM wake),
               (SELECT count(*) FROM event)
        """,
        rows, colony_name, initiator_id, initiator_name, submitted, graph_id, env_rows,
    )
    edges = [(ids[parent], ids[node.index]) for node in nodes for parent in node.parents]
    if edges:
        await db.execute(
            """INSERT INTO process_edges (parent_id, child_id)
               SELECT e.parent_id, e.child_id FROM unnest($1::text[], $2::text[]) WITH ORDINALITY
                      AS e (parent_id, child_id, ord) ORDER BY e.ord""",
            [p for p, _ in edges], [c for _, c in edges],
        )
    children = {pid: [ids[c] for c in node.children] for pid, node in zip(ids, nodes, strict=True)}
    return to_graph(
        {
            "processgraph_id": graph_id,
            "colony_name": colony_name,
            "initiator_id": initiator_id,
            "initiator_name": initiator_name,
            "root_process_ids": roots,
            "state": wire.WAITING,
            "submission_time": submitted,
            "start_time": None,
            "end_time": None,
        },
        graph_plan.reachable_order(roots, children),
    )


# -- locking and resolution -----------------------------------------------------------------------


async def lock(db: Db, graph_id: str) -> Any:
    """Lock the graph row for the rest of the transaction; its id, colony and (effective) state."""
    return await db.fetchrow(
        f"""SELECT g.processgraph_id, g.colony_name, g.state AS stored_state, {EFFECTIVE_STATE} AS state
              FROM processgraphs g WHERE g.processgraph_id = $1 FOR UPDATE OF g""",
        graph_id,
    )


async def lock_graphs_of_expired(db: Db) -> None:
    """Lock (in id order) the graphs whose processes the deadline sweeper is about to change."""
    await db.execute(
        """SELECT 1 FROM processgraphs WHERE processgraph_id IN (
               SELECT processgraph_id FROM processes
                WHERE processgraph_id <> ''
                  AND ((state = 1 AND exec_deadline IS NOT NULL AND exec_deadline <= clock_timestamp())
                    OR (state = 0 AND wait_deadline IS NOT NULL AND wait_deadline <= clock_timestamp())))
            ORDER BY processgraph_id FOR UPDATE"""
    )


_COUNT_PARENT_DONE = """
UPDATE processes c SET done_parents = c.done_parents + 1
 WHERE c.process_id IN (SELECT e.child_id FROM process_edges e WHERE e.parent_id = $1)
   AND c.state = 0 AND c.wait_for_parents
RETURNING c.process_id, c.done_parents,
          (SELECT count(*) FROM process_edges e WHERE e.child_id = c.process_id) AS parents
"""

# A separate statement, so its snapshot is taken after the row locks of _COUNT_PARENT_DONE were
# granted: every other parent's close, and every add_child feeding the child (which held locks on
# the child's row until it committed), is visible.
_RELEASE = f"""
WITH ready AS (
    UPDATE processes c
       SET wait_for_parents = false,
           input = coalesce((
               SELECT jsonb_agg(o.elem ORDER BY e.edge_id, o.ord)
                 FROM process_edges e
                 JOIN processes pp ON pp.process_id = e.parent_id
                 CROSS JOIN LATERAL jsonb_array_elements(
                     CASE jsonb_typeof(pp.output) WHEN 'array' THEN pp.output ELSE '[]'::jsonb END)
                     WITH ORDINALITY AS o (elem, ord)
                WHERE e.child_id = c.process_id), '[]'::jsonb),
           wait_deadline = CASE WHEN c.max_wait_time > 0
                                THEN clock_timestamp() + make_interval(secs => c.max_wait_time) END
     WHERE c.process_id = ANY($1::text[]) AND c.state = 0 AND c.wait_for_parents
       AND c.done_parents >= (SELECT count(*) FROM process_edges e WHERE e.child_id = c.process_id)
    RETURNING c.process_id, c.state, c.colony_name, c.executor_type),
wake AS ({wakeups.wake_sql("ready")}),
event AS (SELECT {events.notify_sql("ready")} FROM ready)
SELECT (SELECT count(*) FROM ready) AS ready, (SELECT count(*) FROM wake), (SELECT count(*) FROM event)
"""


async def after_success(db: Db, process: Any) -> int:
    """In the closing transaction: each child counts one more parent done; those whose parents
    have all succeeded become ready, with their parents' outputs (in dependency order) as input,
    and their executors are woken. Returns the number of children made ready."""
    counted = await db.fetch(_COUNT_PARENT_DONE, process["process_id"])
    # only a hint: an add_child may have fed the child meanwhile; _RELEASE decides, with a fresh look
    ready = [r["process_id"] for r in counted if r["done_parents"] >= r["parents"]]
    if ready:
        await db.fetchval(_RELEASE, ready)
    return len(ready)


# Pending descendants of the seed processes, each with the first seed (by name) that blocks it.
_SETTLE_DESCENDANTS = f"""
WITH RECURSIVE seeds AS (
    SELECT process_id, coalesce(nullif(spec->>'nodename', ''), funcname) AS name
      FROM processes WHERE process_id = ANY($1::text[])),
down (process_id, cause_id, cause_name) AS (
    SELECT e.child_id, s.process_id, s.name FROM seeds s JOIN process_edges e ON e.parent_id = s.process_id
    UNION
    SELECT e.child_id, d.cause_id, d.cause_name
      FROM down d JOIN process_edges e ON e.parent_id = d.process_id),
cause AS (
    SELECT DISTINCT ON (process_id) process_id, cause_id, cause_name FROM down
     ORDER BY process_id, cause_name, cause_id),
settled AS (
    UPDATE processes p
       SET state = $2, end_time = clock_timestamp(), wait_deadline = NULL, exec_deadline = NULL,
           errors = jsonb_build_array(format($3, cause.cause_name, cause.cause_id))
      FROM cause
     WHERE p.process_id = cause.process_id AND p.state = {wire.WAITING}
    RETURNING p.process_id, p.state, p.colony_name, p.executor_type),
event AS (SELECT {events.notify_sql("settled")} FROM settled)
SELECT (SELECT count(*) FROM settled), (SELECT count(*) FROM event)
"""


async def fail_descendants(db: Db, failed_ids: Sequence[str], graph_ids: Sequence[str]) -> None:
    """With the graphs locked: the pending descendants of processes that failed for good fail
    too, with an error naming the failed ancestor (processes that already ran keep their state),
    and the graphs are FAILED (unless already ended)."""
    if failed_ids:
        await db.execute(
            _SETTLE_DESCENDANTS, list(failed_ids), wire.FAILED,
            "Not run: its ancestor <%s> (process %s) failed",
        )
    await db.execute(
        f"""UPDATE processgraphs SET state = {wire.FAILED}, end_time = clock_timestamp()
             WHERE processgraph_id = ANY($1::text[]) AND state = 0""",
        list(graph_ids),
    )


async def cancel_descendants(db: Db, cancelled_ids: Sequence[str]) -> None:
    await db.execute(
        _SETTLE_DESCENDANTS, list(cancelled_ids), wire.CANCELLED,
        "Cancelled: its ancestor <%s> (process %s) was cancelled",
    )


_CANCEL_PROCESSES = f"""
WITH cancelled AS (
    UPDATE processes SET state = {wire.CANCELLED}, end_time = clock_timestamp(), exec_deadline = NULL,
           wait_deadline = NULL
     WHERE {{where}} AND state IN ({wire.WAITING}, {wire.RUNNING})
    RETURNING process_id, state, colony_name, executor_type, processgraph_id),
event AS (SELECT {events.notify_sql("cancelled")} FROM cancelled)
SELECT process_id, processgraph_id, (SELECT count(*) FROM event) AS events FROM cancelled
"""


async def cancel_process(db: Db, process_id: str) -> list[str]:
    """WAITING/RUNNING -> CANCELLED (a running one keeps its assignee, whose close is then refused);
    for a graph member, lock the graph first. Returns the ids cancelled ([] if it had ended)."""
    rows = await db.fetch(_CANCEL_PROCESSES.format(where="process_id = $1"), process_id)
    return [r["process_id"] for r in rows]


async def cancel_graph(db: Db, graph_id: str) -> int:
    """With the graph locked: cancel every waiting or running member; an active graph becomes
    CANCELLED (a FAILED one stays FAILED). Returns the number of processes cancelled."""
    rows = await db.fetch(_CANCEL_PROCESSES.format(where="processgraph_id = $1"), graph_id)
    await mark_cancelled(db, graph_id)
    return len(rows)


async def mark_cancelled(db: Db, graph_id: str) -> None:
    await db.execute(
        f"""UPDATE processgraphs SET state = {wire.CANCELLED}, end_time = clock_timestamp()
             WHERE processgraph_id = $1 AND state = 0""",
        graph_id,
    )


# -- add_child ------------------------------------------------------------------------------------


_ADD_CHILD = f"""
WITH graph AS (
    SELECT g.processgraph_id FROM processgraphs g
     WHERE g.processgraph_id = $1 AND g.state = 0 FOR SHARE OF g),
parent AS (
    SELECT p.process_id,
           (SELECT coalesce(array_agg(e.child_id ORDER BY e.edge_id), '{{}}') FROM process_edges e
             WHERE e.parent_id = p.process_id) AS children
      FROM processes p, graph
     WHERE p.process_id = $2 AND p.processgraph_id = graph.processgraph_id
       AND p.state IN ({wire.WAITING}, {wire.RUNNING}) AND ($5::text = '' OR p.assigned_executor_id = $5)
       FOR SHARE OF p),
child AS (  -- checked in ``new``, so that this lookup is by primary key only
    SELECT c.process_id, c.processgraph_id, c.state, c.wait_for_parents FROM processes c
     WHERE c.process_id = $3 FOR SHARE OF c),
new AS (
    INSERT INTO processes (process_id, colony_name, executor_type, executor_names, location_name,
        cpu_millis, memory_bytes, initiator_id, initiator_name, funcname, label, priority, priority_time,
        submission_time, max_wait_time, max_exec_time, max_retries, spec, processgraph_id,
        wait_for_parents)
    SELECT $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $1, true
      FROM parent
     WHERE $3 = '' OR EXISTS (SELECT 1 FROM child WHERE child.processgraph_id = $1
                                AND ($4 OR (child.state = {wire.WAITING} AND child.wait_for_parents)))
    RETURNING {process_store.COLUMNS}),
env AS (
    INSERT INTO attributes (attribute_id, target_id, colony_name, processgraph_id, attribute_type, key, value)
    SELECT e.attribute_id, new.process_id, $7, $1, {wire.ENV}, e.key, e.value
      FROM new, unnest($24::text[], $25::text[], $26::text[]) AS e (attribute_id, key, value)
    RETURNING 1),
below_parent AS (
    INSERT INTO process_edges (parent_id, child_id) SELECT $2, new.process_id FROM new
    RETURNING 1),
spliced AS (  -- insert: the parent's old children now wait for the new process instead (same place)
    UPDATE process_edges e SET parent_id = new.process_id
      FROM new WHERE $4 AND e.parent_id = $2
    RETURNING 1),
joined AS (  -- beside: the given child also waits for the new process (its last parent)
    INSERT INTO process_edges (parent_id, child_id) SELECT new.process_id, $3 FROM new
     WHERE NOT $4 AND $3 <> ''
    RETURNING 1)
SELECT new.*, ARRAY[$2] AS parents,
       CASE WHEN $4 THEN (SELECT children FROM parent) WHEN $3 = '' THEN '{{}}'::text[] ELSE ARRAY[$3] END
           AS children,
       (SELECT count(*) FROM env) AS env_count, (SELECT count(*) FROM below_parent) AS edges,
       (SELECT count(*) FROM spliced) AS spliced, (SELECT count(*) FROM joined) AS joined
  FROM new
"""


async def add_child(
    db: Db,
    *,
    graph_id: str,
    parent_id: str,
    child_id: str,
    insert: bool,
    spec: FuncSpec,
    initiator_id: str,
    initiator_name: str,
    required_assignee: str,
    submitted_ns: int,
) -> WireDict | None:
    """A new WAITING process that waits for ``parent_id``, in one statement that share-locks the
    graph, the parent and ``child_id`` and checks everything under those locks: the graph is
    active, the parent belongs to it and has not ended (and is assigned to ``required_assignee``
    when given), ``child_id`` belongs to it too and has not started. ``insert`` splices the new
    process between the parent and all its children; otherwise it is an extra child of the
    parent, and also a parent of ``child_id`` when given. Returns the new process, or None if a
    check failed."""
    process_id = process_store.new_id()
    stored, env = process_store.stored_spec(spec)
    env_ids = [process_store.attribute_id(process_id, key, wire.ENV) for key in env]
    row = await db.fetchrow(
        _ADD_CHILD,
        graph_id, parent_id, child_id, insert, required_assignee,
        process_id, spec.conditions.colonyname, spec.conditions.executortype,
        process_store.executor_names(spec), spec.conditions.locationname,
        parse_cpu(spec.conditions.cpu), parse_memory(spec.conditions.mem), initiator_id, initiator_name,
        spec.funcname, spec.label, spec.priority, priority_time(spec, submitted_ns),
        process_store.time_from_ns(submitted_ns), spec.maxwaittime, spec.maxexectime, spec.maxretries,
        stored, env_ids, list(env), list(env.values()),
    )
    if row is None:
        return None
    attributes = [
        Attribute(attributeid=attribute_id, targetid=process_id, targetcolonyname=spec.conditions.colonyname,
                  targetprocessgraphid=graph_id, attributetype=wire.ENV, key=key, value=value)
        for attribute_id, (key, value) in zip(env_ids, env.items(), strict=True)
    ]
    return to_process(row, attributes)


# -- reads ----------------------------------------------------------------------------------------


async def get_row(db: Db, graph_id: str) -> Any:
    return await db.fetchrow(
        f"SELECT {GRAPH_COLUMNS} FROM processgraphs g WHERE g.processgraph_id = $1", graph_id
    )


async def colony_of(db: Db, graph_id: str) -> str | None:
    return await db.fetchval("SELECT colony_name FROM processgraphs WHERE processgraph_id = $1", graph_id)


async def members(db: Db, graph_ids: Sequence[str]) -> dict[str, list[Member]]:
    """Each graph's processes with their edges (parents in dependency order)."""
    rows = await db.fetch(
        """SELECT processgraph_id, process_id, coalesce(nullif(spec->>'nodename', ''), funcname) AS nodename,
                  state
             FROM processes WHERE processgraph_id = ANY($1::text[]) ORDER BY priority_time, process_id""",
        list(graph_ids),
    )
    edges = await db.fetch(
        """SELECT e.parent_id, e.child_id FROM process_edges e
             JOIN processes p ON p.process_id = e.child_id
            WHERE p.processgraph_id = ANY($1::text[]) ORDER BY e.edge_id""",
        list(graph_ids),
    )
    found: dict[str, list[Member]] = {gid: [] for gid in graph_ids}
    by_id: dict[str, Member] = {}
    for r in rows:
        member = Member(r["process_id"], r["nodename"], r["state"], [], [])
        by_id[member.process_id] = member
        found[r["processgraph_id"]].append(member)
    for e in edges:
        child, parent = by_id.get(e["child_id"]), by_id.get(e["parent_id"])
        if child is not None:
            child.parents.append(e["parent_id"])
        if parent is not None:
            parent.children.append(e["child_id"])
    return found


def process_ids(row: Any, graph_members: list[Member]) -> list[str]:
    """Every member, those reachable from the roots first in depth-first order (as the reference)."""
    children = {m.process_id: m.children for m in graph_members}
    order = graph_plan.reachable_order(row["root_process_ids"], children)
    seen = set(order)
    return order + [m.process_id for m in graph_members if m.process_id not in seen]


def layout(graph_members: list[Member], roots: Sequence[str]) -> tuple[list[Any], list[Any]]:
    """A process graph's ``nodes`` and ``edges`` for drawing it, in the reference server's shape: levels by
    depth, siblings spread by 200 px."""
    by_id = {m.process_id: m for m in graph_members}
    depth = graph_plan.depths(roots, {m.process_id: m.children for m in graph_members})
    levels: dict[int, list[Member]] = {}
    for m in graph_members:
        levels.setdefault(depth.get(m.process_id, 0), []).append(m)
    widest = max((len(level) for level in levels.values()), default=1)
    nodes: list[Any] = []
    for level, level_members in sorted(levels.items()):
        offset = (widest - len(level_members)) * 100
        for i, m in enumerate(level_members):
            kind = "input" if not m.parents else ("output" if not m.children else "")
            nodes.append({
                "id": m.process_id,
                "data": {"label": m.nodename},
                "position": {"x": offset + i * 200, "y": level * 80},
                "type": kind,
                "style": {"color": "", "background": STATE_COLOURS.get(m.state, "")},
            })
    edges = [
        {"id": f"{m.process_id}-{child}", "source": m.process_id, "target": child,
         "animated": m.state == wire.RUNNING}
        for m in graph_members for child in m.children if child in by_id
    ]
    return nodes, edges


def _state_filter(state: int) -> str:
    if state in (wire.FAILED, wire.CANCELLED):
        return f"g.state = {state}"
    if state == wire.SUCCESS:
        return f"g.state = 0 AND NOT {_UNFINISHED}"
    started = _STARTED if state == wire.RUNNING else f"NOT {_STARTED}"
    return f"g.state = 0 AND {_UNFINISHED} AND {started}"


async def list_by_state(db: Db, colony_name: str, state: int, count: int) -> list[Any]:
    return await db.fetch(
        f"""SELECT {GRAPH_COLUMNS} FROM processgraphs g
             WHERE g.colony_name = $1 AND {_state_filter(state)}
             ORDER BY g.submission_time DESC, g.processgraph_id LIMIT $2""",
        colony_name,
        count,
    )


async def has_running_member(db: Db, graph_id: str) -> bool:
    return bool(await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM processes WHERE processgraph_id = $1 AND state = 1)", graph_id
    ))


async def remove(db: Db, graph_id: str) -> None:
    """With the graph locked and no member running: delete it and its processes."""
    await db.execute("DELETE FROM processes WHERE processgraph_id = $1", graph_id)
    await db.execute("DELETE FROM processgraphs WHERE processgraph_id = $1", graph_id)


async def remove_all(db: Db, colony_name: str, state: int) -> int:
    """Delete the colony's graphs in ``state`` (-1: all) that have no running process, with their
    processes. Returns how many graphs were deleted."""
    condition = "true" if state == wire.NOTSET else _state_filter(state)
    rows = await db.fetch(
        f"""
        WITH doomed AS (
            SELECT g.processgraph_id FROM processgraphs g
             WHERE g.colony_name = $1 AND {condition}
               AND NOT EXISTS (SELECT 1 FROM processes m
                                WHERE m.processgraph_id = g.processgraph_id AND m.state = 1)
               FOR UPDATE OF g SKIP LOCKED),
        gone AS (DELETE FROM processes WHERE processgraph_id IN (SELECT processgraph_id FROM doomed))
        DELETE FROM processgraphs WHERE processgraph_id IN (SELECT processgraph_id FROM doomed)
        RETURNING processgraph_id
        """,
        colony_name,
    )
    return len(rows)

