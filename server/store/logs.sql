-- Process and executor logs (timestamps are Unix nanoseconds).

-- name: add
INSERT INTO logs (process_id, colony_name, executor_name, message, ts) VALUES ($1, $2, $3, $4, $5)

-- name: process_logs
-- Up to $4 log entries of process $2 in colony $1 after time $3, oldest first.
SELECT process_id, colony_name, executor_name, message, ts FROM logs
 WHERE colony_name = $1 AND process_id = $2 AND ts > $3
 ORDER BY ts, log_id
 LIMIT $4

-- name: latest_process_logs
-- The newest $4 log entries of process $2 in colony $1 after time $3, newest first.
SELECT process_id, colony_name, executor_name, message, ts FROM logs
 WHERE colony_name = $1 AND process_id = $2 AND ts > $3
 ORDER BY ts DESC, log_id DESC
 LIMIT $4

-- name: executor_logs
-- Up to $4 log entries of executor $2 in colony $1 after time $3, oldest first.
SELECT process_id, colony_name, executor_name, message, ts FROM logs
 WHERE colony_name = $1 AND executor_name = $2 AND ts > $3
 ORDER BY ts, log_id
 LIMIT $4

-- name: latest_executor_logs
-- The newest $4 log entries of executor $2 in colony $1 after time $3, newest first.
SELECT process_id, colony_name, executor_name, message, ts FROM logs
 WHERE colony_name = $1 AND executor_name = $2 AND ts > $3
 ORDER BY ts DESC, log_id DESC
 LIMIT $4

-- name: search
-- Colony $1's newest $4 log entries after time $2 that match the ILIKE pattern $3.
SELECT process_id, colony_name, executor_name, message, ts FROM logs
 WHERE colony_name = $1 AND ts > $2 AND message ILIKE $3
 ORDER BY ts DESC, log_id DESC
 LIMIT $4
