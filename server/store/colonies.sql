-- Colonies and colony statistics.

-- name: get
SELECT name, colony_id FROM colonies WHERE name = $1

-- name: list_all
SELECT name, colony_id FROM colonies ORDER BY name

-- name: add
-- Insert colony $1 with id $2; nothing if the name or id is taken.
INSERT INTO colonies (name, colony_id) VALUES ($1, $2) ON CONFLICT DO NOTHING

-- name: remove
-- Delete colony $1 and, by cascade, everything in it.
DELETE FROM colonies WHERE name = $1

-- name: statistics
-- Counts for colony $1, or server-wide when $1 is NULL.
WITH workflow_states AS (
    SELECT graph_state(g.processgraph_id, g.state) AS state
      FROM processgraphs g
     WHERE $1::text IS NULL OR g.colony_name = $1)
SELECT
    (SELECT count(*) FROM colonies WHERE $1::text IS NULL OR name = $1) AS colonies,
    (SELECT count(*) FROM executors WHERE $1::text IS NULL OR colony_name = $1) AS executors,
    (SELECT count(*) FROM executors
      WHERE ($1::text IS NULL OR colony_name = $1) AND state = executor_approved()) AS activeexecutors,
    (SELECT count(*) FROM executors
      WHERE ($1::text IS NULL OR colony_name = $1) AND state = executor_unregistered()) AS unregisteredexecutors,
    count(*) FILTER (WHERE p.state = state_waiting()) AS waitingprocesses,
    count(*) FILTER (WHERE p.state = state_running()) AS runningprocesses,
    count(*) FILTER (WHERE p.state = state_success()) AS successfulprocesses,
    count(*) FILTER (WHERE p.state = state_failed()) AS failedprocesses,
    count(*) FILTER (WHERE p.state = state_cancelled()) AS cancelledprocesses,
    (SELECT count(*) FILTER (WHERE w.state = state_waiting()) FROM workflow_states w) AS waitingworkflows,
    (SELECT count(*) FILTER (WHERE w.state = state_running()) FROM workflow_states w) AS runningworkflows,
    (SELECT count(*) FILTER (WHERE w.state = state_success()) FROM workflow_states w) AS successfulworkflows,
    (SELECT count(*) FILTER (WHERE w.state = state_failed()) FROM workflow_states w) AS failedworkflows,
    (SELECT count(*) FILTER (WHERE w.state = state_cancelled()) FROM workflow_states w) AS cancelledworkflows
  FROM processes p
 WHERE $1::text IS NULL OR p.colony_name = $1
