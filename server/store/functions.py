"""The function registry and its execution statistics."""

from __future__ import annotations

from pycolonies.models import Function
from server.store import Executor as Db
from server.store import queries
from server.store.rows import to_function

SQL = queries.load("functions")

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
    return to_function(row)


async def get(db: Db, function_id: str) -> Function | None:
    row = await db.fetchrow(SQL["get"], function_id)
    return to_function(row) if row else None


async def list_for(db: Db, colony_name: str, executor_name: str = "") -> list[Function]:
    rows = await db.fetch(SQL["list_for"], colony_name, executor_name)
    return [to_function(r) for r in rows]


async def remove(db: Db, function_id: str) -> bool:
    return (await db.execute(SQL["remove"], function_id)).endswith(" 1")
