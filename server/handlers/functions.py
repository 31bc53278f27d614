"""Function registry RPCs: an executor registers the functions it offers; members list them."""

from __future__ import annotations

from typing import Any

from pycolonies.models import Function
from server import auth
from server.context import Call
from server.errors import BadRequest, Forbidden, NotFound
from server.params import require_name
from server.store import executors as executor_store
from server.store import functions as store
from server.store.processes import new_id


async def add_function(call: Call) -> Any:
    function = call.msg.model("fun", Function)
    require_name(function.funcname, "fun.funcname")
    await auth.require_member(call.pool, function.colonyname, call.signer)
    executor = await executor_store.get(call.pool, function.colonyname, function.executorname)
    if executor is None or executor.executorid != call.signer:
        raise Forbidden("Not allowed to add a function to another executor")
    function.functionid = new_id()
    function.executortype = function.executortype or executor.executortype
    function.locationname = executor.locationname
    return await store.add(call.pool, function)


async def list_functions(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    return await store.list_for(call.pool, colony, call.msg.str("executorname"))


async def remove_function(call: Call) -> Any:
    function_id = call.msg.str("functionid")
    if not function_id:
        raise BadRequest("Invalid removefunctionmsg: functionid is required")
    function = await store.get(call.pool, function_id)
    if function is None:
        raise NotFound(f"Failed to remove function, function <{function_id}> not found")
    await auth.require_member(call.pool, function.colonyname, call.signer)
    executor = await executor_store.get(call.pool, function.colonyname, function.executorname)
    if executor is None or executor.executorid != call.signer:
        raise Forbidden("Not allowed to remove a function of another executor")
    await store.remove(call.pool, function_id)
    return {}


HANDLERS = {
    "addfunctionmsg": add_function,
    "getfunctionsmsg": list_functions,
    "removefunctionmsg": remove_function,
}
