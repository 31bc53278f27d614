-- Identity rotation: a colony, user, executor or the server owner changes its id.

-- name: lock_id
-- Serialise the transactions that claim id $1 (so two rotations cannot both take it).
SELECT pg_advisory_xact_lock(hashtextextended($1, 0))

-- name: in_use
-- Whether id $1 is already some identity's: a colony's, a user's, an executor's (in any colony
-- and state) or the stored server id.
SELECT EXISTS (SELECT 1 FROM colonies WHERE colony_id = $1)
    OR EXISTS (SELECT 1 FROM users WHERE user_id = $1)
    OR EXISTS (SELECT 1 FROM executors WHERE executor_id = $1)
    OR EXISTS (SELECT 1 FROM server_identity WHERE server_id = $1)

-- name: server_id
-- The server owner's id after a rotation (no row: the configured id holds).
SELECT server_id FROM server_identity

-- name: change_server_id
-- The server id is now $2, if it still is $1 (with no rotation stored yet, the caller checked
-- that the configured id is $1; a racing first rotation makes this insert conflict and refuse).
INSERT INTO server_identity (server_id) VALUES ($2)
ON CONFLICT (singleton) DO UPDATE SET server_id = EXCLUDED.server_id, changed_at = now()
 WHERE server_identity.server_id = $1
RETURNING server_id

-- name: change_colony_id
-- Colony $1's id is now $3, if it still is $2.
UPDATE colonies SET colony_id = $3 WHERE name = $1 AND colony_id = $2

-- name: change_user_id
-- The user of colony $1 with id $2 now has id $3; its name.
UPDATE users SET user_id = $3 WHERE colony_name = $1 AND user_id = $2 RETURNING name

-- name: change_executor_id
-- The executors of colony $1 with id $2 (one identity, also any unregistered record of it) now
-- have id $3; their names.
UPDATE executors SET executor_id = $3 WHERE colony_name = $1 AND executor_id = $2 RETURNING name

-- name: hand_over
-- What member id $2 of colony $1 holds passes to its new id $3: the processes assigned to it
-- (it may close them with the new key), and what it initiated (processes, workflows, and the
-- crons and generators that submit in its name).
WITH processes_moved AS (
    UPDATE processes
       SET assigned_executor_id = CASE WHEN assigned_executor_id = $2 THEN $3 ELSE assigned_executor_id END,
           initiator_id = CASE WHEN initiator_id = $2 THEN $3 ELSE initiator_id END
     WHERE colony_name = $1 AND (assigned_executor_id = $2 OR initiator_id = $2)
    RETURNING 1),
graphs_moved AS (
    UPDATE processgraphs SET initiator_id = $3 WHERE colony_name = $1 AND initiator_id = $2 RETURNING 1),
crons_moved AS (
    UPDATE crons SET initiator_id = $3 WHERE colony_name = $1 AND initiator_id = $2 RETURNING 1),
generators_moved AS (
    UPDATE generators SET initiator_id = $3 WHERE colony_name = $1 AND initiator_id = $2 RETURNING 1)
SELECT (SELECT count(*) FROM processes_moved) AS processes,
       (SELECT count(*) FROM graphs_moved) AS processgraphs,
       (SELECT count(*) FROM crons_moved) AS crons,
       (SELECT count(*) FROM generators_moved) AS generators
