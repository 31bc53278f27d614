-- Set-based deadline updates (see server/store/deadlines.py): every expired process at once,
-- through the partial deadline indexes.

-- name: retry_expired_leases
-- Running processes past their execution deadline with retries left go back to WAITING, one
-- retry used; their (colony, executortype) and whether they wait for parents.
WITH requeued AS (
    UPDATE processes
       SET state = state_waiting(), assigned_executor_id = '', retries = retries + 1,
           start_time = NULL, end_time = NULL, exec_deadline = NULL,
           wait_deadline = CASE WHEN max_wait_time > 0
                                THEN clock_timestamp() + make_interval(secs => max_wait_time) END
     WHERE state = state_running() AND exec_deadline IS NOT NULL AND exec_deadline <= clock_timestamp()
       AND (max_retries < 0 OR retries < max_retries)
    RETURNING process_id, state, colony_name, executor_type, wait_for_parents),
event AS (
    SELECT notify_process_changed(process_id, state, colony_name, executor_type) FROM requeued)
SELECT colony_name, executor_type, wait_for_parents, (SELECT count(*) FROM event) AS events
  FROM requeued

-- name: fail_exhausted_leases
-- Running processes past their execution deadline with no retries left FAIL; their ids and graphs.
WITH failed AS (
    UPDATE processes
       SET state = state_failed(), end_time = clock_timestamp(), exec_deadline = NULL,
           errors = jsonb_build_array(format(
               'Maximum execution time limit exceeded (maxexectime %s s; %s of %s retries used)',
               max_exec_time, retries, max_retries))
     WHERE state = state_running() AND exec_deadline IS NOT NULL AND exec_deadline <= clock_timestamp()
       AND max_retries >= 0 AND retries >= max_retries
    RETURNING process_id, state, colony_name, executor_type, processgraph_id),
event AS (
    SELECT notify_process_changed(process_id, state, colony_name, executor_type) FROM failed)
SELECT process_id, processgraph_id, (SELECT count(*) FROM event) AS events
  FROM failed

-- name: fail_expired_waits
-- Waiting processes past their wait deadline FAIL; their ids and graphs.
WITH failed AS (
    UPDATE processes
       SET state = state_failed(), end_time = clock_timestamp(), wait_deadline = NULL,
           errors = jsonb_build_array(format(
               'Maximum waiting time limit exceeded (maxwaittime %s s)', max_wait_time))
     WHERE state = state_waiting() AND wait_deadline IS NOT NULL AND wait_deadline <= clock_timestamp()
    RETURNING process_id, state, colony_name, executor_type, processgraph_id),
event AS (
    SELECT notify_process_changed(process_id, state, colony_name, executor_type) FROM failed)
SELECT process_id, processgraph_id, (SELECT count(*) FROM event) AS events
  FROM failed
