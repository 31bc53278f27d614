"""Workflow RPCs: submit a graph, add a child at run time, read, list, cancel and remove graphs."""

from __future__ import annotations

import time
from typing import Any

from pycolonies import wire
from pycolonies.codec import FieldError, from_wire
from pycolonies.models import FuncSpec, Workflow
from server import auth
from server.context import Call
from server.domain.graph_plan import PlanError, plan_workflow
from server.errors import BadRequest, Forbidden, NotFound
from server.handlers.common import member_row, removable_state
from server.handlers.processes import validate_spec
from server.params import require_count
from server.store import graphs as store
from server.store import processes as process_store
from server.store.rows import to_graph

STATE_NAMES = {wire.WAITING: "waiting", wire.RUNNING: "running", wire.SUCCESS: "successful",
               wire.FAILED: "failed", wire.CANCELLED: "cancelled"}


def validate_workflow(workflow: Workflow, path: str = "spec") -> list[Any]:
    """Refuse a workflow that could never run, naming the field; its planned nodes otherwise."""
    if not workflow.colonyname:
        raise BadRequest(f"Invalid {path}.colonyname: a workflow needs a colony name")
    for i, spec in enumerate(workflow.functionspecs):
        spec.conditions.colonyname = workflow.colonyname
        validate_spec(spec, f"{path}.functionspecs[{i}]")
    try:
        return plan_workflow(workflow.functionspecs, f"{path}.functionspecs")
    except PlanError as exc:
        raise BadRequest(str(exc)) from exc


async def submit_workflow(call: Call) -> Any:
    workflow = call.msg.model("spec", Workflow)
    nodes = validate_workflow(workflow)
    colony = workflow.colonyname
    async with call.pool.acquire() as con, con.transaction():
        graph = await store.insert_workflow(
            con,
            colony_name=colony,
            initiator_id=call.signer,
            specs=workflow.functionspecs,
            nodes=nodes,
            submitted_ns=time.time_ns(),
        )
    if graph is None:
        await auth.require_member(call.pool, colony, call.signer)
        raise Forbidden(f"Access denied, not a member of Colony with name <{colony}>")
    return graph


async def _member_graph(call: Call, action: str) -> Any:
    row, _ = await member_row(call, call.msg.str("processgraphid"), field="processgraphid",
                              kind="process graph", action=action, load=store.get_row)
    return row


async def get_processgraph(call: Call) -> Any:
    row = await _member_graph(call, "get process graph")
    members = (await store.members(call.pool, [row["processgraph_id"]]))[row["processgraph_id"]]
    nodes, edges = store.layout(members, row["root_process_ids"])
    return to_graph(row, store.process_ids(row, members), nodes, edges)


async def list_processgraphs(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    count = require_count(call.msg.int("count"), "count", wire.MAX_COUNT)
    state = call.msg.int("state")
    if state not in STATE_NAMES:
        raise BadRequest("Failed to get process graphs, invalid state (0 waiting, 1 running, 2 successful, "
                         "3 failed, 4 cancelled)")
    rows = await store.list_by_state(call.pool, colony, state, count)
    members = await store.members(call.pool, [r["processgraph_id"] for r in rows])
    return [to_graph(r, store.process_ids(r, members[r["processgraph_id"]])) for r in rows]


async def remove_processgraph(call: Call) -> Any:
    row = await _member_graph(call, "remove process graph")
    graph_id = row["processgraph_id"]
    async with call.pool.acquire() as con, con.transaction():
        if await store.lock(con, graph_id) is None:
            raise NotFound(f"Failed to remove process graph, process graph <{graph_id}> not found")
        if await store.has_running_member(con, graph_id):
            raise BadRequest(
                "Failed to remove process graph, some of its processes are running; cancel it first"
            )
        await store.remove(con, graph_id)
    return {}


async def remove_all_processgraphs(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_colony_owner(call.pool, colony, call.signer)
    await store.remove_all(call.pool, colony, removable_state(call, "process graphs"))
    return {}


async def cancel_processgraph(call: Call) -> Any:
    row = await _member_graph(call, "cancel process graph")
    graph_id = row["processgraph_id"]
    async with call.pool.acquire() as con, con.transaction():
        locked = await store.lock(con, graph_id)
        if locked is None:
            raise NotFound(f"Failed to cancel process graph, process graph <{graph_id}> not found")
        if locked["state"] in (wire.SUCCESS, wire.CANCELLED):
            raise BadRequest(
                f"Failed to cancel process graph, it has already ended ({STATE_NAMES[locked['state']]})"
            )
        await store.cancel_graph(con, graph_id)
    return {}


async def add_child(call: Call) -> Any:
    graph_id = call.msg.str("processgraphid")
    parent_id = call.msg.str("parentprocessid")
    child_id = call.msg.str("childprocessid")
    insert = call.msg.bool("insert")
    spec = call.msg.model("spec", FuncSpec)
    for value, field in ((graph_id, "processgraphid"), (parent_id, "parentprocessid")):
        if not value:
            raise BadRequest(f"Failed to add child, {field} is required")
    if not spec.nodename:
        raise BadRequest("Failed to add child, spec.nodename is required")
    colony = await store.colony_of(call.pool, graph_id)
    if colony is None:
        raise NotFound(f"Failed to add child, process graph <{graph_id}> not found")
    member = await auth.require_member(call.pool, colony, call.signer)
    if spec.conditions.colonyname and spec.conditions.colonyname != colony:
        raise BadRequest(
            f"Failed to add child, spec.conditions.colonyname <{spec.conditions.colonyname}> is not the "
            f"colony of the process graph <{colony}>"
        )
    spec.conditions.colonyname = colony
    validate_spec(spec, "spec")
    child = await store.add_child(
        call.pool,
        graph_id=graph_id,
        parent_id=parent_id,
        child_id=child_id,
        insert=insert,
        spec=spec,
        initiator_id=call.signer,
        initiator_name=member.name,
        required_assignee=call.signer if member.kind == "executor" else "",
        submitted_ns=time.time_ns(),
    )
    if child is None:
        await _explain_add_child_refusal(call, graph_id, parent_id, child_id, insert, member.kind)
    return child


MAX_CHILDREN = 10_000  # specs in one addchildrenmsg


async def add_children(call: Call) -> Any:
    """Our extension: the ``addchildmsg`` of a map step for many children at once, in one
    transaction (all or none). ``specs[i]`` carries its nodename; the first is added with
    ``insert`` and the others beside it (``insert`` false), each also a parent of
    ``childprocessid`` when given, as the tutorial's loop of ``add_child`` calls does. Replies
    with the new processes, in order."""
    graph_id = call.msg.str("processgraphid")
    parent_id = call.msg.str("parentprocessid")
    child_id = call.msg.str("childprocessid")
    insert = call.msg.bool("insert")
    specs = call.msg.list("specs") or []
    for value, field in ((graph_id, "processgraphid"), (parent_id, "parentprocessid")):
        if not value:
            raise BadRequest(f"Failed to add children, {field} is required")
    if not specs or len(specs) > MAX_CHILDREN:
        raise BadRequest(f"Failed to add children, specs must hold 1 to {MAX_CHILDREN} function specs")
    colony = await store.colony_of(call.pool, graph_id)
    if colony is None:
        raise NotFound(f"Failed to add children, process graph <{graph_id}> not found")
    member = await auth.require_member(call.pool, colony, call.signer)
    models = []
    for index, data in enumerate(specs):
        path = f"specs[{index}]"
        if not isinstance(data, dict):
            raise BadRequest(f"Failed to add children, {path} must be a function spec (an object)")
        try:
            spec = from_wire(FuncSpec, data, path)
        except FieldError as exc:
            raise BadRequest(f"Invalid addchildrenmsg: {exc}") from exc
        if not spec.nodename:
            raise BadRequest(f"Failed to add children, {path}.nodename is required")
        if spec.conditions.colonyname and spec.conditions.colonyname != colony:
            raise BadRequest(f"Failed to add children, {path}.conditions.colonyname "
                             f"<{spec.conditions.colonyname}> is not the colony of the process graph "
                             f"<{colony}>")
        spec.conditions.colonyname = colony
        validate_spec(spec, path)
        models.append(spec)
    submitted = time.time_ns()
    assignee = call.signer if member.kind == "executor" else ""
    children = []
    try:
        async with call.pool.acquire() as con, con.transaction():
            for index, spec in enumerate(models):
                child = await store.add_child(
                    con, graph_id=graph_id, parent_id=parent_id, child_id=child_id,
                    insert=insert and index == 0, spec=spec, initiator_id=call.signer,
                    initiator_name=member.name, required_assignee=assignee, submitted_ns=submitted + index,
                )
                if child is None:
                    raise _Refused
                children.append(child)
    except _Refused:  # rolled back: none was added
        await _explain_add_child_refusal(call, graph_id, parent_id, child_id, insert, member.kind)
    return children


class _Refused(Exception):
    """A conditional add of a child matched nothing: roll the others back."""


async def _explain_add_child_refusal(
    call: Call, graph_id: str, parent_id: str, child_id: str, insert: bool, member_kind: str
) -> None:
    """The conditional add_child matched nothing: say why (the slow path only)."""
    graph = await store.get_row(call.pool, graph_id)
    if graph is None:
        raise NotFound(f"Failed to add child, process graph <{graph_id}> not found")
    if graph["state"] not in (wire.WAITING, wire.RUNNING):
        raise BadRequest(
            f"Failed to add child, the process graph has already ended ({STATE_NAMES[graph['state']]})"
        )
    parent = await process_store.get_row(call.pool, parent_id)
    if parent is None or parent["processgraph_id"] != graph_id:
        raise BadRequest(
            f"Failed to add child, parent process <{parent_id}> is not part of process graph <{graph_id}>"
        )
    if parent["state"] not in (wire.WAITING, wire.RUNNING):
        raise BadRequest(f"Failed to add child, the parent process is {STATE_NAMES[parent['state']]}; "
                         "children can only be added to a waiting or running process")
    if member_kind == "executor" and parent["assigned_executor_id"] != call.signer:
        raise Forbidden("Failed to add child, only the executor the parent process is assigned to (or a "
                        "user of the colony) may add children to it")
    if child_id:
        child = await process_store.get_row(call.pool, child_id)
        if child is None or child["processgraph_id"] != graph_id:
            raise BadRequest(
                f"Failed to add child, child process <{child_id}> is not part of process graph <{graph_id}>"
            )
        if not insert and not (child["state"] == wire.WAITING and child["wait_for_parents"]):
            raise BadRequest("Failed to add child, the child process has already started or ended; it "
                             "can no longer get a new parent")
    raise BadRequest("Failed to add child, the process graph changed while adding; try again")


HANDLERS = {
    "submitworkflowspecmsg": submit_workflow,
    "getprocessgraphmsg": get_processgraph,
    "getprocessgraphsmsg": list_processgraphs,
    "removeprocessgraphmsg": remove_processgraph,
    "removeallprocessgraphsmsg": remove_all_processgraphs,
    "cancelprocessgraphmsg": cancel_processgraph,
    "addchildmsg": add_child,
    "addchildrenmsg": add_children,
}
