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
successful is computed from its processes when it is read (the SQL function ``graph_state``).
The statements are in ``graphs.sql``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pycolonies import wire
from pycolonies.codec import WireDict
from pycolonies.models import FuncSpec
from server.domain import graph_plan
from server.domain.resources import parse_cpu, parse_memory
from server.store import Executor as Db
from server.store import processes as process_store
from server.store import queries
from server.store.rows import to_graph, to_process

SQL = queries.load("graphs")
FINAL_STATES = (wire.SUCCESS, wire.FAILED, wire.CANCELLED)

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
    initiator_name = await process_store.member_name(db, colony_name, initiator_id)
    if initiator_name is None:
        return None
    graph_id = process_store.new_id()
    ids = [process_store.new_id() for _ in specs]
    rows: list[dict[str, Any]] = []
    env_rows: list[dict[str, str]] = []
    for spec, node, process_id in zip(specs, nodes, ids, strict=True):
        spec.conditions.colonyname = colony_name
        stored, env = process_store.stored_spec(spec)
        if node.is_root and root_args is not None:
            stored["args"] = list(root_args)
        rows.append(process_store.new_process(
            spec, process_id=process_id, initiator_id=initiator_id, initiator_name=initiator_name,
            submitted_ns=submitted_ns, cpu_millis=parse_cpu(spec.conditions.cpu),
            memory_bytes=parse_memory(spec.conditions.mem), processgraph_id=graph_id,
            wait_for_parents=not node.is_root, stored=stored,
            input=root_input if node.is_root else None,
        ))
        env_rows.extend(process_store.env_attributes(process_id, env))
    roots = [ids[n.index] for n in nodes if n.is_root]
    submitted = process_store.time_from_ns(submitted_ns)
    await db.execute(
        SQL["insert_graph"], graph_id, colony_name, initiator_id, initiator_name, roots, submitted
    )
    await db.fetchrow(SQL["insert_graph_processes"], rows, env_rows)
    edges = [(ids[parent], ids[node.index]) for node in nodes for parent in node.parents]
    if edges:
        await db.execute(SQL["insert_edges"], [p for p, _ in edges], [c for _, c in edges])
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
    """Lock the graph row for the rest of the transaction; its id, colony and (wire) state."""
    return await db.fetchrow(SQL["lock"], graph_id)


async def lock_graphs_of_expired(db: Db) -> None:
    """Lock (in id order) the graphs whose processes the deadline sweeper is about to change."""
    await db.execute(SQL["lock_graphs_of_expired"])


async def after_success(db: Db, process: Any) -> int:
    """In the closing transaction: each child counts one more parent done; those whose parents
    have all succeeded become ready, with their parents' outputs (in dependency order) as input,
    and their executors are woken. Returns the number of children made ready."""
    counted = await db.fetch(SQL["count_parent_done"], process["process_id"])
    # only a hint: an add_child may have fed the child meanwhile; the release decides, with a fresh look
    ready = [r["process_id"] for r in counted if r["done_parents"] >= r["parents"]]
    if ready:
        await db.fetchrow(SQL["release_ready_children"], ready)
    return len(ready)


async def fail_descendants(db: Db, failed_ids: Sequence[str], graph_ids: Sequence[str]) -> None:
    """With the graphs locked: the pending descendants of processes that failed for good fail
    too, with an error naming the failed ancestor (processes that already ran keep their state),
    and the graphs are FAILED (unless already ended)."""
    if failed_ids:
        await db.fetchrow(
            SQL["settle_descendants"], list(failed_ids), wire.FAILED,
            "Not run: its ancestor <%s> (process %s) failed",
        )
    await db.execute(SQL["mark_failed"], list(graph_ids))


async def cancel_descendants(db: Db, cancelled_ids: Sequence[str]) -> None:
    await db.fetchrow(
        SQL["settle_descendants"], list(cancelled_ids), wire.CANCELLED,
        "Cancelled: its ancestor <%s> (process %s) was cancelled",
    )


async def cancel_process(db: Db, process_id: str) -> list[str]:
    """WAITING/RUNNING -> CANCELLED (a running one keeps its assignee, whose close is then refused);
    for a graph member, lock the graph first. Returns the ids cancelled ([] if it had ended)."""
    return [r["process_id"] for r in await db.fetch(SQL["cancel_processes"], [process_id])]


async def cancel_graph(db: Db, graph_id: str) -> int:
    """With the graph locked: cancel every waiting or running member; an active graph becomes
    CANCELLED (a FAILED one stays FAILED). Returns the number of processes cancelled. (The lock
    keeps members from being added or closed meanwhile.)"""
    unfinished = [r["process_id"] for r in await db.fetch(SQL["unfinished_members"], graph_id)]
    cancelled = await db.fetch(SQL["cancel_processes"], unfinished) if unfinished else []
    await mark_cancelled(db, graph_id)
    return len(cancelled)


async def mark_cancelled(db: Db, graph_id: str) -> None:
    await db.execute(SQL["mark_cancelled"], graph_id)


# -- add_child ------------------------------------------------------------------------------------


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
    stored, env = process_store.stored_spec(spec)
    new = process_store.new_process(
        spec, process_id=process_store.new_id(), initiator_id=initiator_id, initiator_name=initiator_name,
        submitted_ns=submitted_ns, cpu_millis=parse_cpu(spec.conditions.cpu),
        memory_bytes=parse_memory(spec.conditions.mem), processgraph_id=graph_id, wait_for_parents=True,
        stored=stored,
    )
    env_rows = process_store.env_attributes(new["process_id"], env)
    row = await db.fetchrow(
        SQL["add_child"], graph_id, parent_id, child_id, new, env_rows, insert, required_assignee
    )
    if row is None:
        return None
    return to_process(row, process_store.env_attribute_models(new, env))


# -- reads ----------------------------------------------------------------------------------------


async def get_row(db: Db, graph_id: str) -> Any:
    return await db.fetchrow(SQL["get"], graph_id)


async def colony_of(db: Db, graph_id: str) -> str | None:
    return await db.fetchval(SQL["colony_of"], graph_id)


async def member_states(db: Db, graph_id: str) -> dict[str, int]:
    return {r["process_id"]: r["state"] for r in await db.fetch(SQL["member_states"], graph_id)}


async def graph_of_process(db: Db, process_id: str) -> str | None:
    return await db.fetchval(SQL["graph_of_process"], process_id)


async def members(db: Db, graph_ids: Sequence[str]) -> dict[str, list[Member]]:
    """Each graph's processes with their edges (parents in dependency order)."""
    rows = await db.fetch(SQL["member_processes"], list(graph_ids))
    edges = await db.fetch(SQL["member_edges"], list(graph_ids))
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


async def list_by_state(db: Db, colony_name: str, state: int, count: int) -> list[Any]:
    return await db.fetch(SQL["list_by_state"], colony_name, state, count)


async def has_running_member(db: Db, graph_id: str) -> bool:
    return bool(await db.fetchval(SQL["has_running_member"], graph_id))


async def remove(db: Db, graph_id: str) -> None:
    """With the graph locked and no member running: delete it and its processes."""
    await db.execute(SQL["remove_processes"], graph_id)
    await db.execute(SQL["remove"], graph_id)


async def remove_all(db: Db, colony_name: str, state: int) -> int:
    """Delete the colony's graphs in ``state`` (-1: all) that have no running process, with their
    processes. Returns how many graphs were deleted."""
    return len(await db.fetch(SQL["remove_all"], colony_name, state))
