-- name: counts_by_type
-- Colony $1's processes counted by executor type and state, with the submission time of the
-- oldest waiting one per type.
SELECT executor_type, state, count(*) AS n,
       min(submission_time) FILTER (WHERE state = state_waiting()) AS oldest_waiting
  FROM processes
 WHERE colony_name = $1
 GROUP BY executor_type, state
 ORDER BY executor_type, state

-- name: ended_per_minute
-- Colony $1's processes that ended successful or failed within the last $2 minutes, counted per
-- minute ago (0 = the last minute) and state.
SELECT floor(extract(epoch FROM now() - end_time) / 60)::int AS minutes_ago, state, count(*) AS n
  FROM processes
 WHERE colony_name = $1 AND state IN (state_success(), state_failed())
   AND end_time > now() - make_interval(mins => $2)
 GROUP BY minutes_ago, state

-- name: oldest_waiting
-- The id of colony $1's process that has waited longest, if any.
SELECT process_id
  FROM processes
 WHERE colony_name = $1 AND state = state_waiting()
 ORDER BY submission_time, process_id
 LIMIT 1
