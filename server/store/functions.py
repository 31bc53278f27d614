"""The function registry and its execution statistics."""

from __future__ import annotations

from pycolonies.models import Function
from server.store import Executor as Db

_COLUMNS = (
    "function_id, colony_name, executor_name, executor_type, funcname, description, args, location_name, "
    "counter, min_wait_time, max_wait_time, min_exec_time, max_exec_time, avg_wait_time, avg_exec_time"
)


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
        f"""INSERT INTO functions (function_id, colony_name, executor_name, executor_type, funcname,
                                   description, args, location_name)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (colony_name, executor_name, funcname) DO UPDATE
                SET executor_type = EXCLUDED.executor_type, description = EXCLUDED.description,
                    args = EXCLUDED.args, location_name = EXCLUDED.location_name
            RETURNING {_COLUMNS}""",
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
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM functions WHERE function_id = $1", function_id)
    return _function(row) if row else None


async def list_for(db: Db, colony_name: str, executor_name: str = "") -> list[Function]:
    rows = await db.fetch(
        f"""SELECT {_COLUMNS} FROM functions
             WHERE colony_name = $1 AND ($2 = '' OR executor_name = $2)
             ORDER BY executor_name, funcname, function_id""",
        colony_name,
        executor_name,
    )
    return [_function(r) for r in rows]


async def remove(db: Db, function_id: str) -> bool:
    return (await db.execute("DELETE FROM functions WHERE function_id = $1", function_id)).endswith(" 1")


# Folds one successful run into its function's statistics (true running means). Used as a CTE
# after the close: ``closed`` holds the closed process, ``$2`` is the closing executor's id.
RECORD_RUN = """
UPDATE functions f SET
    counter = f.counter + 1,
    min_wait_time = CASE WHEN f.counter = 0 THEN run.wait_s
                         ELSE least(f.min_wait_time, run.wait_s) END,
    max_wait_time = greatest(f.max_wait_time, run.wait_s),
    min_exec_time = CASE WHEN f.counter = 0 THEN run.exec_s
                         ELSE least(f.min_exec_time, run.exec_s) END,
    max_exec_time = greatest(f.max_exec_time, run.exec_s),
    avg_wait_time = f.avg_wait_time + (run.wait_s - f.avg_wait_time) / (f.counter + 1),
    avg_exec_time = f.avg_exec_time + (run.exec_s - f.avg_exec_time) / (f.counter + 1)
FROM (SELECT closed.colony_name, closed.funcname, e.name AS executor_name,
             extract(epoch FROM closed.start_time - closed.submission_time)::float8 AS wait_s,
             extract(epoch FROM closed.end_time - closed.start_time)::float8 AS exec_s
        FROM closed JOIN executors e ON e.colony_name = closed.colony_name AND e.executor_id = $2) run
WHERE f.colony_name = run.colony_name AND f.executor_name = run.executor_name AND f.funcname = run.funcname
"""
