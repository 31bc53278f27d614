-- Processes: insert, assign, close, read, list and remove, each one conditional statement.
-- Shared functions (state_waiting(), notify_ready(), ...) are defined in
-- migrations/0005_sql_functions.sql. A statement that records its request for replay protection
-- inserts it into seen_requests in a CTE ("recorded"), changes state only when the request is
-- new ("fresh"), and reports "fresh" (server.store.seen_requests.check_recorded).

-- name: insert_process
-- Insert a WAITING process and its ENV attributes, if the initiator is a member of the colony (an
-- approved executor or a user, whose name becomes initiator_name); a ready process wakes its
-- queue's waiters on commit when $4 says so. No row of the process when nothing was inserted.
-- $1 the process (new_process as JSON, initiator_name unset), $2 its ENV attributes
-- (new_env_attribute[] as JSON), $3 the replay key (NULL: not recorded), $4 wake the queue
WITH recorded AS (  -- the replay record of this request ($3; NULL: not recorded)
    INSERT INTO seen_requests (signature) SELECT $3::text WHERE $3::text IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING 1),
fresh AS (SELECT $3::text IS NULL OR EXISTS (SELECT 1 FROM recorded) AS ok),
member AS (
    SELECT name FROM colony_member($1::jsonb ->> 'colony_name', $1::jsonb ->> 'initiator_id')),
inserted AS (  -- nothing is inserted unless the initiator is a member and the request is new
    SELECT * FROM insert_processes((
        SELECT jsonb_build_array($1::jsonb || jsonb_build_object('initiator_name', member.name))
          FROM member
         WHERE member.name IS NOT NULL AND (SELECT ok FROM fresh)))),
env AS (
    INSERT INTO attributes (attribute_id, target_id, colony_name, processgraph_id, attribute_type, key, value)
    SELECT e.attribute_id, inserted.process_id, inserted.colony_name, inserted.processgraph_id,
           attribute_env(), e.key, e.value
      FROM inserted, jsonb_populate_recordset(NULL::new_env_attribute, $2::jsonb) AS e
    RETURNING 1),
wake AS (
    SELECT notify_ready(colony_name, executor_type) FROM inserted WHERE $4 AND NOT wait_for_parents),
event AS (
    SELECT notify_process_changed(process_id, state, colony_name, executor_type) FROM inserted)
SELECT (SELECT ok FROM fresh) AS fresh, inserted.*,
       (SELECT count(*) FROM env) AS env_count, (SELECT count(*) FROM wake) AS woken,
       (SELECT count(*) FROM event) AS events
  FROM (VALUES (1)) AS one (x)
  LEFT JOIN inserted ON true

-- name: member_name
-- The name under which $2 acts in colony $1 (no row if it is no member).
SELECT name FROM colony_member($1, $2)

-- name: assign_next
-- Take the highest-priority ready process that the approved executor $2 of colony $1 may run
-- (its type, its name or location when the process names them, within cpu $3 and memory $4),
-- stamp the executor's liveness, and say whether ready processes of its type remain (ones it may
-- not run, or locked ones) and whether the colony's assignments are paused (then nothing is
-- taken). $5 is the replay key. When nothing is taken, signer_executor_type is the approved
-- executor's type (the queue to wait on; NULL: the signer is no approved executor of the colony).
WITH recorded AS (  -- the replay record of this request ($5; NULL: not recorded)
    INSERT INTO seen_requests (signature) SELECT $5::text WHERE $5::text IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING 1),
fresh AS (SELECT $5::text IS NULL OR EXISTS (SELECT 1 FROM recorded) AS ok),
paused AS (SELECT coalesce((SELECT assignments_paused FROM colonies WHERE name = $1), false) AS yes),
me AS (
    SELECT name, executor_type, location_name FROM executors
     WHERE colony_name = $1 AND executor_id = $2 AND state = executor_approved()
     ORDER BY name
     LIMIT 1),
alive AS (
    UPDATE executors SET last_heard_from = clock_timestamp()
     WHERE colony_name = $1 AND executor_id = $2 AND state = executor_approved()
       AND (last_heard_from IS NULL OR last_heard_from < clock_timestamp() - interval '1 second')
    RETURNING 1),
candidate AS (
    SELECT p.process_id FROM processes p, me
     WHERE p.colony_name = $1 AND p.executor_type = me.executor_type
       AND p.state = state_waiting() AND NOT p.wait_for_parents
       AND (cardinality(p.executor_names) = 0 OR me.name = ANY (p.executor_names)
            OR p.executor_names = '{*}')
       AND (p.location_name = '' OR lower(p.location_name) = lower(me.location_name))
       AND p.cpu_millis <= $3 AND p.memory_bytes <= $4
       AND (SELECT ok FROM fresh) AND NOT (SELECT yes FROM paused)
     ORDER BY p.priority_time
     LIMIT 1
       FOR UPDATE OF p SKIP LOCKED),
taken AS (
    UPDATE processes p
       SET state = state_running(), assigned_executor_id = $2, start_time = clock_timestamp(),
           end_time = NULL,
           exec_deadline = CASE WHEN p.max_exec_time > 0
                                THEN clock_timestamp() + make_interval(secs => p.max_exec_time) END
      FROM candidate
     WHERE p.process_id = candidate.process_id
    RETURNING p.*),
event AS (
    SELECT notify_process_changed(process_id, state, colony_name, executor_type) FROM taken)
SELECT (SELECT ok FROM fresh) AS fresh, (SELECT count(*) FROM event) AS events,
       (SELECT yes FROM paused) AS paused,
       CASE WHEN taken.process_id IS NULL THEN  -- only probed when nothing was taken
           EXISTS (SELECT 1 FROM processes r, me
                    WHERE r.colony_name = $1 AND r.executor_type = me.executor_type
                      AND r.state = state_waiting() AND NOT r.wait_for_parents)
       END AS ready_left,
       CASE WHEN taken.process_id IS NULL THEN (SELECT executor_type FROM me) END AS signer_executor_type,
       taken.*, d.attributes, d.parents, d.children  -- attributes and edges: assigning changes neither
  FROM (VALUES (1)) AS one (x)
  LEFT JOIN taken ON true
  LEFT JOIN LATERAL process_details(taken.process_id) d ON taken.process_id IS NOT NULL

-- name: get
-- Process $1 with its attributes, parents and children.
SELECT p.*, d.attributes, d.parents, d.children
  FROM processes p
 CROSS JOIN LATERAL process_details(p.process_id) d
 WHERE p.process_id = $1

-- name: close_successful
-- RUNNING -> SUCCESS by its assignee $2 (still an approved executor, lease held), with output $3
-- (NULL: keep the output set so far), folding the run into its function's statistics (running
-- means). A workflow process share-locks its graph first, so that a cancellation (which locks the
-- graph exclusively, then its processes) waits for the close instead of deadlocking with it.
-- $4 is the replay key. No row of the process when the close was refused.
-- $5 (standalone only): touch nothing, not even the replay record, if the process is a workflow
-- member (column in_graph), whose close must run in a transaction with the release of its
-- children; a process outside workflows then closes in this one autocommit statement.
WITH target AS (SELECT q.processgraph_id <> '' AS in_graph FROM processes q WHERE q.process_id = $1),
deferred AS (SELECT $5::boolean AND coalesce((SELECT in_graph FROM target), false) AS yes),
recorded AS (  -- the replay record of this request ($4; NULL: not recorded)
    INSERT INTO seen_requests (signature)
    SELECT $4::text WHERE $4::text IS NOT NULL AND NOT (SELECT yes FROM deferred)
    ON CONFLICT DO NOTHING
    RETURNING 1),
fresh AS (SELECT $4::text IS NULL OR EXISTS (SELECT 1 FROM recorded) OR (SELECT yes FROM deferred) AS ok),
graph AS (
    SELECT g.processgraph_id FROM processgraphs g
     WHERE NOT $5::boolean
       AND g.processgraph_id = (SELECT q.processgraph_id FROM processes q WHERE q.process_id = $1)
       FOR SHARE OF g),
closed AS (
    UPDATE processes p
       SET state = state_success(), end_time = clock_timestamp(), exec_deadline = NULL,
           output = coalesce($3::jsonb, output)
     WHERE process_id = $1 AND state = state_running() AND assigned_executor_id = $2
       AND lease_held(exec_deadline) AND is_approved_executor(p.colony_name, $2)
       AND (processgraph_id = '' OR processgraph_id = (SELECT processgraph_id FROM graph))
       AND NOT (SELECT yes FROM deferred) AND (SELECT ok FROM fresh)
    RETURNING *),
run AS (
    SELECT closed.colony_name, closed.funcname, e.name AS executor_name,
           extract(epoch FROM closed.start_time - closed.submission_time)::float8 AS wait_s,
           extract(epoch FROM closed.end_time - closed.start_time)::float8 AS exec_s
      FROM closed
      JOIN executors e ON e.colony_name = closed.colony_name AND e.executor_id = $2),
stats AS (
    UPDATE functions f
       SET counter = f.counter + 1,
           min_wait_time = CASE WHEN f.counter = 0 THEN run.wait_s ELSE least(f.min_wait_time, run.wait_s) END,
           max_wait_time = greatest(f.max_wait_time, run.wait_s),
           min_exec_time = CASE WHEN f.counter = 0 THEN run.exec_s ELSE least(f.min_exec_time, run.exec_s) END,
           max_exec_time = greatest(f.max_exec_time, run.exec_s),
           avg_wait_time = f.avg_wait_time + (run.wait_s - f.avg_wait_time) / (f.counter + 1),
           avg_exec_time = f.avg_exec_time + (run.exec_s - f.avg_exec_time) / (f.counter + 1)
      FROM run
     WHERE f.colony_name = run.colony_name AND f.executor_name = run.executor_name
       AND f.funcname = run.funcname
    RETURNING 1),
event AS (
    SELECT notify_process_changed(process_id, state, colony_name, executor_type) FROM closed)
SELECT (SELECT ok FROM fresh) AS fresh, (SELECT yes FROM deferred) AS in_graph, closed.*,
       (SELECT count(*) FROM stats) AS functions_updated, (SELECT count(*) FROM event) AS events
  FROM (VALUES (1)) AS one (x)
  LEFT JOIN closed ON true

-- name: close_failed
-- RUNNING -> FAILED by its assignee $2 (still an approved executor, lease held) with errors $3,
-- locking its graph first, if any (the failure then cascades to its descendants). $4 is the
-- replay key. No row of the process when the close was refused.
WITH recorded AS (  -- the replay record of this request ($4; NULL: not recorded)
    INSERT INTO seen_requests (signature) SELECT $4::text WHERE $4::text IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING 1),
fresh AS (SELECT $4::text IS NULL OR EXISTS (SELECT 1 FROM recorded) AS ok),
graph AS (
    SELECT g.processgraph_id FROM processgraphs g
     WHERE g.processgraph_id = (SELECT q.processgraph_id FROM processes q WHERE q.process_id = $1)
       FOR UPDATE OF g),
closed AS (
    UPDATE processes p
       SET state = state_failed(), end_time = clock_timestamp(), exec_deadline = NULL, errors = $3::jsonb
     WHERE process_id = $1 AND state = state_running() AND assigned_executor_id = $2
       AND lease_held(exec_deadline) AND is_approved_executor(p.colony_name, $2)
       AND (processgraph_id = '' OR processgraph_id = (SELECT processgraph_id FROM graph))
       AND (SELECT ok FROM fresh)
    RETURNING *),
event AS (
    SELECT notify_process_changed(process_id, state, colony_name, executor_type) FROM closed)
SELECT (SELECT ok FROM fresh) AS fresh, (SELECT count(*) FROM event) AS events, closed.*
  FROM (VALUES (1)) AS one (x)
  LEFT JOIN closed ON true

-- name: release
-- RUNNING -> WAITING by its assignee $2 (still an approved executor, lease held), without
-- counting a retry: the executor gives process $1 back (e.g. it is shutting down). Its queue's
-- waiters are woken on commit.
WITH released AS (
    UPDATE processes p
       SET state = state_waiting(), assigned_executor_id = '', start_time = NULL, exec_deadline = NULL,
           wait_deadline = CASE WHEN max_wait_time > 0
                                THEN clock_timestamp() + make_interval(secs => max_wait_time) END
     WHERE process_id = $1 AND state = state_running() AND assigned_executor_id = $2
       AND lease_held(exec_deadline) AND is_approved_executor(p.colony_name, $2)
    RETURNING process_id, state, colony_name, executor_type),
wake AS (
    SELECT notify_ready(colony_name, executor_type) FROM released),
event AS (
    SELECT notify_process_changed(process_id, state, colony_name, executor_type) FROM released)
SELECT (SELECT count(*) FROM released) AS released, (SELECT count(*) FROM wake) AS woken,
       (SELECT count(*) FROM event) AS events

-- name: set_output
-- Set the output of running process $1 by its assignee $2 (still an approved executor, lease held).
UPDATE processes p
   SET output = $3::jsonb
 WHERE process_id = $1 AND state = state_running() AND assigned_executor_id = $2
   AND lease_held(exec_deadline) AND is_approved_executor(p.colony_name, $2)

-- name: list_waiting
-- Up to $2 waiting processes of colony $1, next to run first; $3 executortype, $4 label and
-- $5 initiator name filter when not ''. A page after the process with priority time $6 and id $7
-- (the first page: NULL, '').
SELECT p.*, d.attributes, d.parents, d.children
  FROM processes p
 CROSS JOIN LATERAL process_details(p.process_id) d
 WHERE p.colony_name = $1 AND p.state = state_waiting()
   AND ($3 = '' OR p.executor_type = $3) AND ($4 = '' OR p.label = $4) AND ($5 = '' OR p.initiator_name = $5)
   AND ($6::bigint IS NULL OR (p.priority_time, p.process_id) > ($6::bigint, $7::text))
 ORDER BY p.priority_time, p.process_id
 LIMIT $2

-- name: list_running
-- Up to $2 running processes of colony $1, longest running first; filters and paging as
-- list_waiting (a page after start time $6 and id $7).
SELECT p.*, d.attributes, d.parents, d.children
  FROM processes p
 CROSS JOIN LATERAL process_details(p.process_id) d
 WHERE p.colony_name = $1 AND p.state = state_running()
   AND ($3 = '' OR p.executor_type = $3) AND ($4 = '' OR p.label = $4) AND ($5 = '' OR p.initiator_name = $5)
   AND ($6::timestamptz IS NULL OR (p.start_time, p.process_id) > ($6::timestamptz, $7::text))
 ORDER BY p.start_time, p.process_id
 LIMIT $2

-- name: list_ended
-- Up to $2 processes of colony $1 that ended in state $8 (success, failed or cancelled), the
-- latest first; filters and paging as list_waiting (a page before end time $6 and id $7).
SELECT p.*, d.attributes, d.parents, d.children
  FROM processes p
 CROSS JOIN LATERAL process_details(p.process_id) d
 WHERE p.colony_name = $1 AND p.state = $8 AND p.state >= state_success()
   AND ($3 = '' OR p.executor_type = $3) AND ($4 = '' OR p.label = $4) AND ($5 = '' OR p.initiator_name = $5)
   AND ($6::timestamptz IS NULL OR (p.end_time, p.process_id) < ($6::timestamptz, $7::text))
 ORDER BY p.end_time DESC, p.process_id DESC
 LIMIT $2

-- name: remove
-- Delete process $1 if it is neither running nor part of a workflow.
DELETE FROM processes
 WHERE process_id = $1 AND state <> state_running() AND processgraph_id = ''

-- name: remove_all
-- Delete colony $1's processes outside workflows: all of them ($2 = -1) or those in state $2.
DELETE FROM processes
 WHERE colony_name = $1 AND processgraph_id = '' AND ($2 = -1 OR state = $2)

-- name: requeue_for_executor
-- Put the RUNNING processes of executor $2 of colony $1 back to WAITING; their (colony, type).
WITH requeued AS (
    UPDATE processes
       SET state = state_waiting(), assigned_executor_id = '', start_time = NULL, end_time = NULL,
           exec_deadline = NULL
     WHERE colony_name = $1 AND assigned_executor_id = $2 AND state = state_running()
    RETURNING process_id, state, colony_name, executor_type),
event AS (
    SELECT notify_process_changed(process_id, state, colony_name, executor_type) FROM requeued)
SELECT colony_name, executor_type, (SELECT count(*) FROM event) AS events
  FROM requeued

-- name: counts_by_queue
-- For the metrics scrape, in one statement whose cost follows the live processes, not history:
-- the waiting and running processes per colony, executor type, state and whether they wait for
-- parents, with the age in seconds of each group's oldest submission (from processes_by_state);
-- then the ended ones (successful, failed, cancelled) per colony and state only, executor type ''
-- (an index-only scan of processes_finished: by type it would read every ended row).
SELECT colony_name, executor_type, state, wait_for_parents, count(*) AS n,
       extract(epoch FROM now() - min(submission_time))::float8 AS oldest_age_s
  FROM processes
 WHERE state IN (state_waiting(), state_running())
 GROUP BY colony_name, executor_type, state, wait_for_parents
UNION ALL
SELECT colony_name, '', state, false, count(*), NULL
  FROM processes
 WHERE state >= state_success()
 GROUP BY colony_name, state

-- name: history
-- Colony $1's processes in state $2 submitted in the last $3 seconds, oldest first; only those
-- assigned to executor $4 unless it is ''; at most $5.
SELECT p.*, d.attributes, d.parents, d.children
  FROM processes p
 CROSS JOIN LATERAL process_details(p.process_id) d
 WHERE p.colony_name = $1 AND p.state = $2
   AND p.submission_time > now() - make_interval(secs => $3)
   AND ($4 = '' OR p.assigned_executor_id = $4)
 ORDER BY p.submission_time, p.process_id
 LIMIT $5
