-- The SQL that several statements share, as functions, so that every statement in
-- server/store/*.sql reads whole: named states, wake-ups and events, membership,
-- and a process's or graph's derived fields. Changing one of them is a new migration that
-- replaces it (CREATE OR REPLACE).

-- States. One set of names for the numbers the wire protocol uses (pycolonies.wire);
-- tests/integration/test_sql_functions.py checks that they agree. The planner folds these calls
-- into constants, so partial indexes on e.g. "state = 0" still match "state = state_waiting()".
CREATE FUNCTION state_waiting()   RETURNS smallint IMMUTABLE PARALLEL SAFE LANGUAGE sql AS 'SELECT 0::smallint';
CREATE FUNCTION state_running()   RETURNS smallint IMMUTABLE PARALLEL SAFE LANGUAGE sql AS 'SELECT 1::smallint';
CREATE FUNCTION state_success()   RETURNS smallint IMMUTABLE PARALLEL SAFE LANGUAGE sql AS 'SELECT 2::smallint';
CREATE FUNCTION state_failed()    RETURNS smallint IMMUTABLE PARALLEL SAFE LANGUAGE sql AS 'SELECT 3::smallint';
CREATE FUNCTION state_cancelled() RETURNS smallint IMMUTABLE PARALLEL SAFE LANGUAGE sql AS 'SELECT 4::smallint';

CREATE FUNCTION executor_pending()      RETURNS smallint IMMUTABLE PARALLEL SAFE LANGUAGE sql AS 'SELECT 0::smallint';
CREATE FUNCTION executor_approved()     RETURNS smallint IMMUTABLE PARALLEL SAFE LANGUAGE sql AS 'SELECT 1::smallint';
CREATE FUNCTION executor_rejected()     RETURNS smallint IMMUTABLE PARALLEL SAFE LANGUAGE sql AS 'SELECT 2::smallint';
CREATE FUNCTION executor_unregistered() RETURNS smallint IMMUTABLE PARALLEL SAFE LANGUAGE sql AS 'SELECT 3::smallint';

-- The attribute type of a process's environment variables (pycolonies.wire.ENV).
CREATE FUNCTION attribute_env() RETURNS smallint IMMUTABLE PARALLEL SAFE LANGUAGE sql AS 'SELECT 3::smallint';


-- Wake the executors waiting for work of (colony, executortype). NOTIFY is delivered when the
-- calling transaction commits, to every replica; the channel is server.store.wakeups.CHANNEL.
CREATE FUNCTION notify_ready(colony_name text, executor_type text) RETURNS void LANGUAGE sql AS $$
    SELECT pg_notify('colonies_ready', colony_name || chr(31) || executor_type)
$$;

-- Announce that a process entered ``state`` (realtime subscriptions; server.store.events).
CREATE FUNCTION notify_process_changed(process_id text, state smallint, colony_name text, executor_type text)
RETURNS void LANGUAGE sql AS $$
    SELECT pg_notify('colonies_process', concat_ws(chr(31), process_id, state::text, colony_name, executor_type))
$$;


-- The name under which member_id acts in the colony: an approved executor's name before a
-- user's; no row if it is no member. Call it in FROM, where the planner inlines it.
CREATE FUNCTION colony_member(colony text, member_id text) RETURNS TABLE (name text) STABLE LANGUAGE sql AS $$
    SELECT m.name FROM (
        SELECT e.name, 0 AS preference FROM executors e
         WHERE e.colony_name = colony AND e.executor_id = member_id AND e.state = executor_approved()
        UNION ALL
        SELECT u.name, 1 FROM users u WHERE u.colony_name = colony AND u.user_id = member_id
    ) m
    ORDER BY m.preference, m.name
    LIMIT 1
$$;

CREATE FUNCTION is_approved_executor(colony text, member_id text) RETURNS boolean STABLE LANGUAGE sql AS $$
    SELECT EXISTS (SELECT 1 FROM executors
                    WHERE colony_name = colony AND executor_id = member_id AND state = executor_approved())
$$;

-- An assignee holds its process until the execution deadline; after it, the deadline sweeper
-- retries or fails the process, and a late close must not race it.
CREATE FUNCTION lease_held(exec_deadline timestamptz) RETURNS boolean LANGUAGE sql AS $$
    SELECT exec_deadline IS NULL OR exec_deadline > clock_timestamp()
$$;


-- A process's derived fields: its attributes as one JSON array (wire shape, oldest first) and, in
-- a workflow, its parents (in dependency order) and children. Call it in FROM, as in
-- "CROSS JOIN LATERAL process_details(p.process_id) d": there the planner inlines it like a
-- subquery (a scalar function with subqueries would run as a separate plan for every row).
CREATE FUNCTION process_details(process_id text)
RETURNS TABLE (attributes jsonb, parents text[], children text[]) STABLE LANGUAGE sql AS $$
    SELECT (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'attributeid', a.attribute_id, 'targetid', a.target_id,
                        'targetcolonyname', a.colony_name, 'targetprocessgraphid', a.processgraph_id,
                        'attributetype', a.attribute_type, 'key', a.key, 'value', a.value)
                        ORDER BY a.added, a.attribute_id), '[]'::jsonb)
              FROM attributes a
             WHERE a.target_id = process_id),
           (SELECT coalesce(array_agg(e.parent_id ORDER BY e.edge_id), '{}')
              FROM process_edges e
             WHERE e.child_id = process_id),
           (SELECT coalesce(array_agg(e.child_id ORDER BY e.edge_id), '{}')
              FROM process_edges e
             WHERE e.parent_id = process_id)
$$;


-- A graph's wire state. Its stored state is WAITING while it is active, FAILED or CANCELLED once
-- it ended that way; an active graph is SUCCESS when all its processes succeeded, RUNNING once
-- one started, WAITING before. (The IN lists keep these index scans on (processgraph_id, state).)
CREATE FUNCTION graph_state(graph_id text, stored_state smallint) RETURNS smallint STABLE LANGUAGE sql AS $$
    SELECT CASE
        WHEN stored_state <> state_waiting() THEN stored_state
        WHEN NOT EXISTS (SELECT 1 FROM processes m
                          WHERE m.processgraph_id = graph_id
                            AND m.state IN (state_waiting(), state_running(), state_failed(), state_cancelled()))
            THEN state_success()
        WHEN EXISTS (SELECT 1 FROM processes m
                      WHERE m.processgraph_id = graph_id AND m.state IN (state_running(), state_success()))
            THEN state_running()
        ELSE state_waiting()
    END
$$;

-- Whether the graph exists and has not ended (it is WAITING or RUNNING).
CREATE FUNCTION graph_is_active(graph_id text) RETURNS boolean STABLE LANGUAGE sql AS $$
    SELECT EXISTS (SELECT 1 FROM processgraphs g
                    WHERE g.processgraph_id = graph_id
                      AND graph_state(g.processgraph_id, g.state) IN (state_waiting(), state_running()))
$$;

-- Graphs as they are read: the wire state, and start and end times from their processes.
CREATE VIEW graph_summaries AS
SELECT g.processgraph_id, g.colony_name, g.initiator_id, g.initiator_name, g.root_process_ids,
       g.state AS stored_state, s.state, g.submission_time,
       coalesce(g.end_time,
                CASE WHEN s.state = state_success()
                     THEN (SELECT max(m.end_time) FROM processes m WHERE m.processgraph_id = g.processgraph_id)
                END) AS end_time,
       (SELECT min(m.start_time) FROM processes m WHERE m.processgraph_id = g.processgraph_id) AS start_time
  FROM processgraphs g
 CROSS JOIN LATERAL (SELECT graph_state(g.processgraph_id, g.state) AS state) s;


-- How many packed args a generator has queued.
CREATE FUNCTION generator_queue_size(generator_id text) RETURNS bigint STABLE LANGUAGE sql AS $$
    SELECT count(*) FROM generator_args a WHERE a.generator_id = generator_queue_size.generator_id
$$;


-- A new process as the store inserts it: server.store.processes.new_process builds it as a JSON
-- object with these keys, and jsonb_populate_record(NULL::new_process, ...) reads it, so an
-- insert names its values instead of numbering two dozen parameters.
CREATE TYPE new_process AS (
    process_id       text,
    colony_name      text,
    executor_type    text,
    executor_names   text[],
    location_name    text,
    cpu_millis       bigint,
    memory_bytes     bigint,
    initiator_id     text,
    initiator_name   text,
    funcname         text,
    label            text,
    priority         integer,
    priority_time    bigint,
    submission_time  timestamptz,
    wait_deadline    timestamptz,
    max_wait_time    integer,
    max_exec_time    integer,
    max_retries      integer,
    spec             jsonb,
    processgraph_id  text,
    wait_for_parents boolean,
    input            jsonb
);

-- A process's ENV attribute as the store inserts it (attribute_id, target_id, key, value).
CREATE TYPE new_env_attribute AS (
    attribute_id text,
    target_id    text,
    key          text,
    value        text
);

-- Insert the processes of ``rows`` (a JSON array of new_process objects); the inserted rows.
-- Every statement that creates processes (submit, workflow submit, add_child) goes through it.
CREATE FUNCTION insert_processes(rows jsonb) RETURNS SETOF processes LANGUAGE sql AS $$
    INSERT INTO processes (process_id, colony_name, executor_type, executor_names, location_name,
                           cpu_millis, memory_bytes, initiator_id, initiator_name, funcname, label,
                           priority, priority_time, submission_time, wait_deadline, max_wait_time,
                           max_exec_time, max_retries, spec, processgraph_id, wait_for_parents, input)
    SELECT new.process_id, new.colony_name, new.executor_type, new.executor_names, new.location_name,
           new.cpu_millis, new.memory_bytes, new.initiator_id, new.initiator_name, new.funcname, new.label,
           new.priority, new.priority_time, new.submission_time, new.wait_deadline, new.max_wait_time,
           new.max_exec_time, new.max_retries, new.spec, new.processgraph_id, new.wait_for_parents,
           new.input
      FROM jsonb_populate_recordset(NULL::new_process, rows) AS new
    RETURNING *
$$;
