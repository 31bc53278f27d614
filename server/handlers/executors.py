"""Executor RPCs: the colony owner registers, approves, rejects and removes; members read."""

from __future__ import annotations

from typing import Any

from pycolonies import wire
from pycolonies.models import Allocations, Capabilities, Executor
from server import auth
from server.context import Call
from server.errors import BadRequest, Forbidden, NotFound
from server.params import require_id, require_name
from server.store import executors as store
from server.store import processes as process_store
from server.store import wakeups


async def add_executor(call: Call) -> Any:
    executor = call.msg.model("executor", Executor)
    await auth.require_colony_owner(call.pool, executor.colonyname, call.signer)
    require_name(executor.executorname, "executor.executorname")
    require_name(executor.executortype, "executor.executortype")
    require_id(executor.executorid, "executor.executorid")
    async with call.pool.acquire() as con, con.transaction():
        previous = await store.get(con, executor.colonyname, executor.executorname)
        result = await store.add(con, executor)
        if result.executor is None:
            if result.conflict == "name":
                raise BadRequest(
                    f"Executor with name <{executor.executorname}> in Colony <{executor.colonyname}> "
                    "already exists"
                )
            raise BadRequest(
                f"Executor with id <{executor.executorid}> in Colony <{executor.colonyname}> already exists"
            )
        if previous is not None:
            # A re-registered name starts clean: whatever its old identity held goes back to the queue.
            await _requeue(con, executor.colonyname, previous.executorid)
    return result.executor


async def _requeue(con, colony_name: str, executor_id: str) -> None:
    for colony, executortype in await process_store.requeue_for_executor(con, colony_name, executor_id):
        await wakeups.announce(con, colony, executortype)


async def _set_state(call: Call, state: int) -> Any:
    colony, name = call.msg.str("colonyname"), call.msg.required_str("executorname")
    await auth.require_colony_owner(call.pool, colony, call.signer)
    if not await store.set_state(call.pool, colony, name, state):
        if await store.get(call.pool, colony, name) is None:
            raise NotFound(f"Executor with name <{name}> not found in Colony <{colony}>")
        raise BadRequest(f"Executor <{name}> is unregistered; register it again with addexecutormsg")
    return {}


async def approve_executor(call: Call) -> Any:
    return await _set_state(call, wire.APPROVED)


async def reject_executor(call: Call) -> Any:
    return await _set_state(call, wire.REJECTED)


async def remove_executor(call: Call) -> Any:
    colony, name = call.msg.str("colonyname"), call.msg.required_str("executorname")
    await auth.require_colony_owner(call.pool, colony, call.signer)
    async with call.pool.acquire() as con, con.transaction():
        removed = await store.unregister(con, colony, name)
        if removed is None:
            raise NotFound(f"Executor with name <{name}> not found in Colony <{colony}>")
        await _requeue(con, colony, removed.executorid)
    return {}


async def list_executors(call: Call) -> Any:
    """Members (any executor state) and, unlike the reference, the colony's owner, who approves
    and rejects them (the dashboard shows the owner this list)."""
    colony = call.msg.str("colonyname")
    if not await auth.is_colony_owner(call.pool, colony, call.signer):
        await auth.require_member(call.pool, colony, call.signer, approved=False)
    return await store.list_for_colony(call.pool, colony)


async def get_executor(call: Call) -> Any:
    colony, name = call.msg.str("colonyname"), call.msg.str("executorname")
    await auth.require_member(call.pool, colony, call.signer)
    executor = await store.get(call.pool, colony, name)
    if executor is None:
        raise NotFound(f"Executor with name <{name}> not found in Colony <{colony}>")
    return executor


async def heartbeat(call: Call) -> Any:
    """An executor says it is alive while it works (assign polls say so too). An extension of
    the reference protocol, used by this project's executors."""
    colony = call.msg.str("colonyname")
    if not colony:
        raise BadRequest("Invalid heartbeatmsg: colonyname is required")
    if not await store.mark_alive(call.services.relaxed_pool, colony, call.signer):
        raise Forbidden(f"Access denied, the signer is not an approved executor of Colony <{colony}>")
    return {}


async def get_executor_by_id(call: Call) -> Any:
    colony, executor_id = call.msg.str("colonyname"), call.msg.str("executorid")
    await auth.require_member(call.pool, colony, call.signer)
    executor = await store.get_by_id(call.pool, colony, executor_id)
    if executor is None:
        raise NotFound(f"Executor with id <{executor_id}> not found in Colony <{colony}>")
    return executor


async def _own_executor(call: Call) -> tuple[str, str]:
    """The colony and name of the executor the request names, which must be the signer itself
    (an executor of the colony in any state: MEMBER* + SELF-EXEC)."""
    colony, name = call.msg.str("colonyname"), call.msg.required_str("executorname")
    await auth.require_member(call.pool, colony, call.signer, approved=False)
    executor = await store.get(call.pool, colony, name)
    if executor is None:
        raise NotFound(f"Executor with name <{name}> not found in Colony <{colony}>")
    if executor.executorid != call.signer:
        raise Forbidden(f"Access denied, only executor <{name}> itself may change its capabilities "
                        "or allocations")
    return colony, name


async def update_executor(call: Call) -> Any:
    """An executor replaces its own capabilities (hardware and software)."""
    capabilities = call.msg.model("capabilities", Capabilities)
    colony, name = await _own_executor(call)
    if not await store.update_capabilities(call.pool, colony, name, call.signer, capabilities):
        raise Forbidden(f"Access denied, executor <{name}> changed its id meanwhile")
    return {}


async def report_allocation(call: Call) -> Any:
    """An executor reports its own allocations (per project: allocated and used cpu, gpu, storage)."""
    allocations = call.msg.model("allocations", Allocations)
    colony, name = await _own_executor(call)
    if not await store.report_allocations(call.pool, colony, name, call.signer, allocations):
        raise Forbidden(f"Access denied, executor <{name}> changed its id meanwhile")
    return {}


HANDLERS = {
    "addexecutormsg": add_executor,
    "approveexecutormsg": approve_executor,
    "rejectexecutormsg": reject_executor,
    "removeexecutormsg": remove_executor,
    "getexecutorsmsg": list_executors,
    "getexecutormsg": get_executor,
    "getexecutorbyidmsg": get_executor_by_id,
    "heartbeatmsg": heartbeat,
    "updateexecutormsg": update_executor,
    "reportallocationmsg": report_allocation,
}
