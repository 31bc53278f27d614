-- Executors: registration, approval state, liveness, membership lookups.

-- name: add
-- Register executor $3 named $2 in colony $1 as PENDING ($4 type, $5 require function
-- registration, $6 location, $7 capabilities, $8 allocations). A name whose executor is
-- UNREGISTERED is re-used in place; no row if the name is taken or the id is another name's.
INSERT INTO executors (colony_name, name, executor_id, executor_type, state, require_func_reg,
                       commission_time, location_name, capabilities, allocations)
SELECT $1, $2, $3, $4, executor_pending(), $5, now(), $6, $7, $8
 WHERE NOT EXISTS (SELECT 1 FROM executors
                    WHERE colony_name = $1 AND executor_id = $3 AND name <> $2
                      AND state <> executor_unregistered())
ON CONFLICT (colony_name, name) DO UPDATE
   SET executor_id = EXCLUDED.executor_id, executor_type = EXCLUDED.executor_type,
       state = executor_pending(), require_func_reg = EXCLUDED.require_func_reg, commission_time = now(),
       last_heard_from = NULL, location_name = EXCLUDED.location_name,
       capabilities = EXCLUDED.capabilities, allocations = EXCLUDED.allocations
 WHERE executors.state = executor_unregistered()
RETURNING *

-- name: get
SELECT * FROM executors WHERE colony_name = $1 AND name = $2

-- name: get_by_id
-- Executor $2 of colony $1 (a registered one before an unregistered one of the same id).
SELECT * FROM executors
 WHERE colony_name = $1 AND executor_id = $2
 ORDER BY state = executor_unregistered(), name
 LIMIT 1

-- name: list_for_colony
SELECT * FROM executors WHERE colony_name = $1 ORDER BY name

-- name: set_state
-- Executor $2 of colony $1 is now in state $3 (approved or rejected), unless it is UNREGISTERED
-- (then it must register again).
UPDATE executors SET state = $3
 WHERE colony_name = $1 AND name = $2 AND state <> executor_unregistered()

-- name: unregister
-- Executor $2 of colony $1 is UNREGISTERED (soft delete); its row as it was.
UPDATE executors SET state = executor_unregistered()
 WHERE colony_name = $1 AND name = $2
RETURNING *

-- name: remove_functions
-- Delete the functions that executor $2 of colony $1 registered.
DELETE FROM functions WHERE colony_name = $1 AND executor_name = $2

-- name: find_member
-- Every identity signer $2 has in colony $1: executor rows first (approved first), then users.
SELECT *
  FROM (SELECT 'executor' AS kind, name, executor_id AS member_id, state, executor_type, location_name
          FROM executors
         WHERE colony_name = $1 AND executor_id = $2
        UNION ALL
        SELECT 'user', name, user_id, executor_approved(), '', ''
          FROM users
         WHERE colony_name = $1 AND user_id = $2) m
 ORDER BY kind, state <> executor_approved(), name

-- name: mark_alive
-- Stamp the liveness of approved executor $2 of colony $1.
UPDATE executors SET last_heard_from = clock_timestamp()
 WHERE colony_name = $1 AND executor_id = $2 AND state = executor_approved()

-- name: update_capabilities
-- Executor $2 of colony $1, if its id is $3 (it changes only itself), now has capabilities $4.
UPDATE executors SET capabilities = $4
 WHERE colony_name = $1 AND name = $2 AND executor_id = $3

-- name: report_allocations
-- Executor $2 of colony $1, if its id is $3 (it reports only itself), now has allocations $4.
UPDATE executors SET allocations = $4
 WHERE colony_name = $1 AND name = $2 AND executor_id = $3

-- name: list_registered
-- The executors of colony $1 that are not unregistered (the hosts of its nodes).
SELECT * FROM executors
 WHERE colony_name = $1 AND state <> executor_unregistered()
 ORDER BY name
