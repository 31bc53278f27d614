"""The function registry and its execution statistics."""

from __future__ import annotations

from pycolonies.models import Function
from server.store import Executor as Db
from server.store import queries

SQL = queries.load("functions")

def _function(row) -> Function:
    return Function.from_wire(
        {
            "functionid": row["function_id"],
            "executorname": row["executor_name"],
            "executortype": row["executor_type"],
            "colonyname": row["colony_name"],
            "funcname": row["funcname"],
            "description": row["description"],
            "args": row["args"],
            "counter": row["counter"],
            "minwaittime": row["min_wait_time"],
            "maxwaittime": row["max_wait_time"],
            "minexectime": row["min_exec_time"],
            "maxexectime": row["max_exec_time"],
            "avgwaittime": row["avg_wait_time"],
            "avgexectime": row["avg_exec_time"],
            "locationname": row["location_name"],
        }
    )


async def add(db: Db, function: Function) -> Function:
    """Register a function; registering the same (executor, funcname) again updates it in place,
    keeping its id and statistics, so an executor can re-register on every start."""
    row = await db.fetchrow(
        SQL["add"],
        function.functionid,
        function.colonyname,
        function.executorname,
        function.executortype,
        function.funcname,
        function.description,
        [a.to_wire() for a in function.args],
        function.locationname,
    )
    return _function(row)


async def get(db: Db, function_id: str) -> Function | None:
    row = await db.fetchrow(SQL["get"], function_id)
    return _function(row) if row else None


async def list_for(db: Db, colony_name: str, executor_name: str = "") -> list[Function]:
    rows = await db.fetch(SQL["list_for"], colony_name, executor_name)
    return [_function(r) for r in rows]


async def remove(db: Db, function_id: str) -> bool:
    return (await db.execute(SQL["remove"], function_id)).endswith(" 1")
