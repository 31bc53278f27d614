-- The function registry and its execution statistics (folded in by processes.sql's
-- close_successful).

-- name: add
-- Register function $5 of executor $3 in colony $2 ($1 id, $4 executor type, $6 description,
-- $7 args, $8 location); the same (executor, funcname) again updates it in place, keeping its id
-- and statistics.
INSERT INTO functions (function_id, colony_name, executor_name, executor_type, funcname, description,
                       args, location_name)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (colony_name, executor_name, funcname) DO UPDATE
   SET executor_type = EXCLUDED.executor_type, description = EXCLUDED.description,
       args = EXCLUDED.args, location_name = EXCLUDED.location_name
RETURNING *

-- name: get
SELECT * FROM functions WHERE function_id = $1

-- name: list_for
-- Colony $1's functions, of executor $2 unless ''.
SELECT * FROM functions
 WHERE colony_name = $1 AND ($2 = '' OR executor_name = $2)
 ORDER BY executor_name, funcname, function_id

-- name: remove
DELETE FROM functions WHERE function_id = $1
