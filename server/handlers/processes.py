"""Process RPCs: submit, assign (long-poll), close, set output, cancel, get, list, remove."""

from __future__ import annotations

import time
from typing import Any

from pycolonies import wire
from pycolonies.models import FuncSpec
from server import auth
from server.context import Call
from server.domain import paging
from server.domain.resources import parse_cpu, parse_memory
from server.errors import BadRequest, Forbidden, NotFound
from server.handlers.common import member_row, removable_state
from server.params import require_count, require_name
from server.replay import records_replay
from server.scheduler.assign import NO_LIMIT, assign
from server.store import graphs
from server.store import processes as store
from server.store.executors import Member
from server.store.rows import to_process

MAX_INT32 = 2**31 - 1


@records_replay
async def submit(call: Call) -> Any:
    spec = call.msg.model("spec", FuncSpec)
    colony = spec.conditions.colonyname
    if not colony:
        raise BadRequest(
            "Invalid submitfuncspecmsg: spec.conditions.colonyname is required (Empty Colony name)"
        )
    validate_spec(spec, "spec")
    process = await store.insert(
        call.pool,
        spec,
        initiator_id=call.signer,
        cpu_millis=parse_cpu(spec.conditions.cpu),
        memory_bytes=parse_memory(spec.conditions.mem),
        submitted_ns=time.time_ns(),
        replay_key=call.replay_key,
    )
    if process is None:  # the signer is no member: say so
        await auth.require_member(call.pool, colony, call.signer)
        raise Forbidden(f"Access denied, not a member of Colony with name <{colony}>")
    return process


def validate_spec(spec: FuncSpec, path: str) -> None:
    """Refuse a spec the scheduler could never honour, naming the field."""
    require_name(spec.conditions.executortype, f"{path}.conditions.executortype")
    if not wire.MIN_PRIORITY <= spec.priority <= wire.MAX_PRIORITY:
        raise BadRequest(
            f"Invalid {path}.priority: {spec.priority} is outside [{wire.MIN_PRIORITY}, {wire.MAX_PRIORITY}]"
        )
    for field in ("maxwaittime", "maxexectime", "maxretries"):
        value = getattr(spec, field)
        if value < -1:
            raise BadRequest(f"Invalid {path}.{field}: must be -1 (no limit) or a non-negative number")
        if value > MAX_INT32:
            raise BadRequest(f"Invalid {path}.{field}: {value} exceeds the maximum of {MAX_INT32}")
    for field, parser in (("cpu", parse_cpu), ("mem", parse_memory), ("storage", parse_memory)):
        try:
            parser(getattr(spec.conditions, field))
        except ValueError as exc:
            raise BadRequest(f"Invalid {path}.conditions.{field}: {exc}") from exc


@records_replay
async def assign_process(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    timeout = call.msg.int("timeout")
    if not colony:
        raise BadRequest("Invalid assignprocessmsg: colonyname is required (Empty Colony name)")
    try:
        cpu = parse_cpu(call.msg.str("availablecpu")) or NO_LIMIT
        memory = parse_memory(call.msg.str("availablemem")) or NO_LIMIT
    except ValueError as exc:
        raise BadRequest(f"Invalid assignprocessmsg: {exc}") from exc
    started = time.perf_counter()
    try:
        process = await assign(
            call.pool,
            call.services.wakeups,
            colony_name=colony,
            executor_id=call.signer,
            executor_type=lambda: _executor_type(call, colony),
            timeout=timeout,
            replay_key=call.replay_key,
            cpu_limit=cpu,
            memory_limit=memory,
        )
    except NotFound:
        call.services.metrics.assign_wait("timeout", time.perf_counter() - started)
        raise
    call.services.metrics.assign_wait("assigned", time.perf_counter() - started)
    return process


async def _executor_type(call: Call, colony: str) -> str:
    """The signer's executor type; 403 unless it is an executor of ``colony``."""
    return (await auth.require_executor(call.pool, colony, call.signer)).executortype


async def _member_process(call: Call, process_id: str, action: str) -> tuple[Any, Member]:
    """Load a process and require the signer to be a member of its colony."""
    return await member_row(call, process_id, field="processid", kind="process", action=action,
                            load=store.get_row)


def _refuse_close(row: Any, signer: str, action: str) -> None:
    """Explain why a conditional close/update of ``row`` by ``signer`` matched nothing."""
    if row is None:
        raise NotFound(f"Failed to {action}, the process no longer exists")
    if not row["assigned_executor_id"] and row["state"] == wire.WAITING:
        raise Forbidden(f"Failed to {action}, process is not assigned")
    if row["assigned_executor_id"] != signer:
        raise Forbidden(f"Failed to {action}, access denied: the process is assigned to another executor")
    if row["state"] == wire.RUNNING and store.lease_expired(row):
        raise Forbidden(
            f"Failed to {action}, the execution deadline (maxexectime) has passed: the process is being "
            "retried or failed by the server"
        )
    names = {wire.WAITING: "waiting, not running", wire.SUCCESS: "already closed as successful",
             wire.FAILED: "already closed as failed", wire.CANCELLED: "cancelled"}
    raise BadRequest(f"Failed to {action}, the process is {names.get(row['state'], 'not running')}")


@records_replay
async def close_successful(call: Call) -> Any:
    await _close_successful(call)
    return {}


async def _close_successful(call: Call) -> None:
    """Close the message's ``processid`` as successful with its ``out``, in one transaction that
    records the request (replay protection); refused with the reason when it is not the signer's
    to close."""
    process_id = call.msg.str("processid")
    output = call.msg.list("out")
    if not process_id:
        raise BadRequest("Failed to close process as successful, processid is required")
    # One autocommit statement for a process outside workflows; a workflow member closes in a
    # transaction with the release of its children.
    closed = await store.close_successful(call.pool, process_id, call.signer, output or None, call.replay_key,
                                          standalone_only=True)
    if closed is store.IN_GRAPH:
        async with call.pool.acquire() as con, con.transaction():
            closed = await store.close_successful(con, process_id, call.signer, output or None,
                                                  call.replay_key)
            if closed is not None:
                await graphs.after_success(con, closed)
    if closed is None:
        await _explain_refusal(call, process_id, "close process as successful")


@records_replay
async def close_and_assign(call: Call) -> Any:
    """Our extension: ``closesuccessfulmsg`` and then ``assignprocessmsg`` in one round trip, for
    an executor whose slot is free again. The close commits first (its own transaction, which
    records the request); a refused close assigns nothing. ``timeout`` as in assign, except that 0
    or a negative one means "only a process that is ready now". Replies ``{"process": <the
    assigned process> | null}``."""
    colony = call.msg.str("colonyname")
    timeout = call.msg.int("timeout")
    if not colony:
        raise BadRequest("Invalid closeassignmsg: colonyname is required")
    await _close_successful(call)
    try:
        process = await assign(
            call.pool, call.services.wakeups, colony_name=colony, executor_id=call.signer,
            executor_type=lambda: _executor_type(call, colony), timeout=timeout if timeout > 0 else -1,
        )
    except NotFound:
        process = None
    return {"process": process}


@records_replay
async def close_failed(call: Call) -> Any:
    process_id = call.msg.str("processid")
    errors = call.msg.list("errors")
    if not process_id:
        raise BadRequest("Failed to close process as failed, processid is required")
    async with call.pool.acquire() as con, con.transaction():
        closed = await store.close_failed(con, process_id, call.signer, errors, call.replay_key)
        if closed is not None and closed["processgraph_id"]:
            await graphs.fail_descendants(con, [process_id], [closed["processgraph_id"]])
    if closed is None:
        await _explain_refusal(call, process_id, "close process as failed")
    return {}


async def set_output(call: Call) -> Any:
    process_id = call.msg.str("processid")
    output = call.msg.list("out")
    if not process_id:
        raise BadRequest("Failed to set output, processid is required")
    if not await store.set_output(call.pool, process_id, call.signer, output):
        await _explain_refusal(call, process_id, "set output")
    return {}


async def release_process(call: Call) -> Any:
    """The assigned executor gives a running process back to the queue (no retry is counted).
    An extension of the reference protocol, used by this project's executors when they shut down."""
    process_id = call.msg.str("processid")
    if not process_id:
        raise BadRequest("Failed to release process, processid is required")
    if not await store.release(call.pool, process_id, call.signer):
        await _explain_refusal(call, process_id, "release process")
    return {}


async def _explain_refusal(call: Call, process_id: str, action: str) -> None:
    """A conditional update by the assignee matched nothing: say why (the slow path only)."""
    row, _ = await _member_process(call, process_id, action)
    _refuse_close(row, call.signer, action)


async def get_process(call: Call) -> Any:
    process_id = call.msg.str("processid")
    row, _ = await _member_process(call, process_id, "get process")
    return to_process(row)


async def list_processes(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    count = require_count(call.msg.int("count"), "count", wire.MAX_COUNT)
    state = call.msg.int("state")
    if state not in (wire.WAITING, wire.RUNNING, wire.SUCCESS, wire.FAILED, wire.CANCELLED):
        raise BadRequest("Failed to get processes, invalid msg.State")
    return await store.list_by_state(call.pool, colony, state, count, **_list_filters(call))


def _list_filters(call: Call) -> dict[str, str]:
    """The optional filters of a process listing (each applied when not empty)."""
    return {"executor_type": call.msg.str("executortype"), "label": call.msg.str("label"),
            "initiator_name": call.msg.str("initiator")}


MAX_HISTORY_PROCESSES = 10_000
MAX_HISTORY_SECONDS = 10 * 365 * 86_400


async def get_process_history(call: Call) -> Any:
    """The colony's processes in ``state`` submitted in the last ``seconds``, oldest first; only
    those assigned to ``executorid`` when it is given. At most ``MAX_HISTORY_PROCESSES`` (the
    reference has no limit)."""
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    state = call.msg.int("state")
    if state not in (wire.WAITING, wire.RUNNING, wire.SUCCESS, wire.FAILED, wire.CANCELLED):
        raise BadRequest("Failed to get process history, invalid msg.State")
    seconds = call.msg.int("seconds")
    if not 0 <= seconds <= MAX_HISTORY_SECONDS:
        raise BadRequest(f"Invalid getprocesshistmsg: seconds must be between 0 and {MAX_HISTORY_SECONDS}")
    return await store.history(call.pool, colony, state, seconds, call.msg.str("executorid"),
                               MAX_HISTORY_PROCESSES)


async def find_processes(call: Call) -> Any:
    """``findprocessesmsg`` (ours): a page of processes in one state, every filter applied
    together; ``after`` is the ``next`` cursor of the page before (empty for the first)."""
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    count = require_count(call.msg.int("count", wire.MAX_COUNT), "count", wire.MAX_COUNT)
    state = call.msg.int("state")
    if state not in (wire.WAITING, wire.RUNNING, wire.SUCCESS, wire.FAILED, wire.CANCELLED):
        raise BadRequest(f"Invalid findprocessesmsg: state must be 0 to 4, got {state}")
    after = None
    if cursor := call.msg.str("after"):
        try:
            after = paging.decode(cursor, as_time=state != wire.WAITING)
        except paging.BadCursor as exc:
            raise BadRequest(f"Invalid findprocessesmsg: after is {exc}") from exc
    found, following = await store.page_by_state(call.pool, colony, state, count, after=after,
                                                  **_list_filters(call))
    return {"processes": found, "next": paging.encode(*following) if following else ""}


async def cancel_process(call: Call) -> Any:
    """WAITING or RUNNING -> CANCELLED. A running process's executor learns it from the process
    (or /pubsub) and its later close is refused; in a workflow, the process's pending descendants
    are cancelled too and the graph becomes CANCELLED."""
    process_id = call.msg.str("processid")
    row, _ = await _member_process(call, process_id, "cancel process")
    graph_id = row["processgraph_id"]
    async with call.pool.acquire() as con, con.transaction():
        if graph_id:
            await graphs.lock(con, graph_id)
        cancelled = await graphs.cancel_process(con, process_id)
        if cancelled and graph_id:
            await graphs.cancel_descendants(con, cancelled)
            await graphs.mark_cancelled(con, graph_id)
    if not cancelled:
        current = await store.get_row(call.pool, process_id)
        if current is None:
            raise NotFound(f"Failed to cancel process, process <{process_id}> not found")
        names = {wire.SUCCESS: "successful", wire.FAILED: "failed", wire.CANCELLED: "already cancelled"}
        raise BadRequest(f"Failed to cancel process, the process has ended ({names.get(current['state'])})")
    return {}


async def remove_process(call: Call) -> Any:
    process_id = call.msg.str("processid")
    row, _ = await _member_process(call, process_id, "remove process")
    if row["processgraph_id"]:
        raise BadRequest("Failed to remove process, the process is part of a workflow, remove the workflow")
    if not await store.remove(call.pool, process_id):
        current = await store.get_row(call.pool, process_id)
        if current is None:
            raise NotFound(f"Failed to remove process, process <{process_id}> not found")
        raise BadRequest("Failed to remove process, cannot remove a running process")
    return {}


async def remove_all_processes(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_colony_owner(call.pool, colony, call.signer)
    await store.remove_all(call.pool, colony, removable_state(call, "processes"))
    return {}


HANDLERS = {
    "submitfuncspecmsg": submit,
    "assignprocessmsg": assign_process,
    "closesuccessfulmsg": close_successful,
    "closeassignmsg": close_and_assign,
    "closefailedmsg": close_failed,
    "setoutputmsg": set_output,
    "releaseprocessmsg": release_process,
    "getprocessmsg": get_process,
    "getprocessesmsg": list_processes,
    "getprocesshistmsg": get_process_history,
    "findprocessesmsg": find_processes,
    "cancelprocessmsg": cancel_process,
    "removeprocessmsg": remove_process,
    "removeallprocessesmsg": remove_all_processes,
}
