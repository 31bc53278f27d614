-- Crons: a stored workflow spec and a schedule (see server/store/crons.py).

-- name: insert
-- A new cron ($1 id, $2 colony, $3 name, $4 cron expression, $5 interval in seconds, $6 random,
-- $7 next run, $8 workflow spec, $9 wait for the previous graph, $10 initiator id, $11 initiator
-- name); no row if the colony already has a cron with this name.
INSERT INTO crons (cron_id, colony_name, name, cron_expression, interval_s, random, next_run,
                   workflow_spec, wait_for_prev_processgraph, initiator_id, initiator_name)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (colony_name, name) DO NOTHING
RETURNING *

-- name: get
SELECT * FROM crons WHERE cron_id = $1

-- name: list_for_colony
-- Up to $2 of colony $1's crons, by name.
SELECT * FROM crons WHERE colony_name = $1 ORDER BY name LIMIT $2

-- name: remove
DELETE FROM crons WHERE cron_id = $1 RETURNING true

-- name: due_ids
-- Up to $1 crons whose next run has passed (or was never computed) and that are not blocked by
-- an active previous graph, most overdue first.
SELECT cron_id
  FROM crons
 WHERE (next_run IS NULL OR next_run <= clock_timestamp())
   AND NOT (wait_for_prev_processgraph AND graph_is_active(prev_processgraph_id))
 ORDER BY next_run NULLS FIRST, cron_id
 LIMIT $1

-- name: lock
-- Lock cron $1 for the rest of the transaction: its row plus "now" (the database clock).
SELECT *, clock_timestamp() AS now FROM crons WHERE cron_id = $1 FOR UPDATE

-- name: lock_if_free
-- As lock, but no row if the cron is locked (being fired elsewhere).
SELECT *, clock_timestamp() AS now FROM crons WHERE cron_id = $1 FOR UPDATE SKIP LOCKED

-- name: previous_active
-- Whether the previous graph of cron $1 exists and has not ended.
SELECT graph_is_active(prev_processgraph_id) FROM crons WHERE cron_id = $1

-- name: graph_roots
-- The root processes of graph $1.
SELECT root_process_ids FROM processgraphs WHERE processgraph_id = $1

-- name: graph_outputs
-- The processes of graph $1 with their outputs and children.
SELECT p.process_id, p.output, d.children
  FROM processes p
 CROSS JOIN LATERAL process_details(p.process_id) d
 WHERE p.processgraph_id = $1
 ORDER BY p.priority_time, p.process_id

-- name: record_run
-- Cron $1 ran at $2 and created graph $4; it runs next at $3.
UPDATE crons SET last_run = $2, next_run = $3, prev_processgraph_id = $4 WHERE cron_id = $1 RETURNING *

-- name: reschedule
-- Cron $1 runs next at $2.
UPDATE crons SET next_run = $2 WHERE cron_id = $1 RETURNING *
