-- Process graphs (workflows): submit, resolution after a close, cascades, add_child, reads,
-- removal. The locking rules are in the docstring of server/store/graphs.py; graph_state(),
-- graph_summaries and the other shared SQL are in migrations/0005_sql_functions.sql.

-- name: insert_graph
-- A new active graph: $1 id, $2 colony, $3 initiator id, $4 initiator name, $5 root process ids,
-- $6 submission time.
INSERT INTO processgraphs (processgraph_id, colony_name, initiator_id, initiator_name, root_process_ids,
                           state, submission_time)
VALUES ($1, $2, $3, $4, $5, state_waiting(), $6)

-- name: insert_graph_processes
-- The graph's processes ($1: new_process[] as JSON) and their ENV attributes ($2:
-- new_env_attribute[] as JSON); the ready ones (the roots) wake their queues on commit.
WITH inserted AS (
    SELECT * FROM insert_processes($1::jsonb)),
env AS (
    INSERT INTO attributes (attribute_id, target_id, colony_name, processgraph_id, attribute_type, key, value)
    SELECT e.attribute_id, e.target_id, p.colony_name, p.processgraph_id, attribute_env(), e.key, e.value
      FROM jsonb_populate_recordset(NULL::new_env_attribute, $2::jsonb) AS e
      JOIN inserted p ON p.process_id = e.target_id
    RETURNING 1),
wake AS (
    SELECT notify_ready(q.colony_name, q.executor_type)
      FROM (SELECT DISTINCT colony_name, executor_type FROM inserted WHERE NOT wait_for_parents) q),
event AS (
    SELECT notify_process_changed(process_id, state, colony_name, executor_type) FROM inserted)
SELECT (SELECT count(*) FROM inserted) AS inserted, (SELECT count(*) FROM env) AS env_count,
       (SELECT count(*) FROM wake) AS woken, (SELECT count(*) FROM event) AS events

-- name: insert_edges
-- Edges parent $1[i] -> child $2[i], numbered in the order given (a child's parents in that
-- order are its dependency order).
INSERT INTO process_edges (parent_id, child_id)
SELECT e.parent_id, e.child_id
  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS e (parent_id, child_id, ord)
 ORDER BY e.ord

-- name: lock
-- Lock graph $1 for the rest of the transaction; its id, colony and (wire) state.
SELECT g.processgraph_id, g.colony_name, g.state AS stored_state,
       graph_state(g.processgraph_id, g.state) AS state
  FROM processgraphs g
 WHERE g.processgraph_id = $1
   FOR UPDATE OF g

-- name: lock_graphs_of_expired
-- Lock (in id order) the graphs whose processes the deadline sweeper is about to change.
SELECT 1
  FROM processgraphs
 WHERE processgraph_id IN (
        SELECT processgraph_id FROM processes
         WHERE processgraph_id <> ''
           AND ((state = state_running() AND exec_deadline IS NOT NULL AND exec_deadline <= clock_timestamp())
             OR (state = state_waiting() AND wait_deadline IS NOT NULL AND wait_deadline <= clock_timestamp())))
 ORDER BY processgraph_id
   FOR UPDATE

-- name: count_parent_done
-- Process $1 succeeded: each of its waiting children counts one more parent done (under the
-- child's row lock); returns the children with their counts and number of parents.
UPDATE processes c
   SET done_parents = c.done_parents + 1
 WHERE c.process_id IN (SELECT e.child_id FROM process_edges e WHERE e.parent_id = $1)
   AND c.state = state_waiting() AND c.wait_for_parents
RETURNING c.process_id, c.done_parents,
          (SELECT count(*) FROM process_edges e WHERE e.child_id = c.process_id) AS parents

-- name: release_ready_children
-- Of the processes $1, those whose parents have all succeeded become ready, with their parents'
-- outputs (in dependency order) as input; their queues wake on commit. A statement of its own
-- after count_parent_done, so that its snapshot is taken after that statement's row locks were
-- granted: every other parent's close, and every add_child feeding the child (which held locks
-- on the child's row until it committed), is visible.
WITH ready AS (
    UPDATE processes c
       SET wait_for_parents = false,
           input = coalesce((
               SELECT jsonb_agg(o.elem ORDER BY e.edge_id, o.ord)
                 FROM process_edges e
                 JOIN processes pp ON pp.process_id = e.parent_id
                CROSS JOIN LATERAL jsonb_array_elements(
                          CASE jsonb_typeof(pp.output) WHEN 'array' THEN pp.output ELSE '[]'::jsonb END)
                      WITH ORDINALITY AS o (elem, ord)
                WHERE e.child_id = c.process_id), '[]'::jsonb),
           wait_deadline = CASE WHEN c.max_wait_time > 0
                                THEN clock_timestamp() + make_interval(secs => c.max_wait_time) END
     WHERE c.process_id = ANY ($1::text[]) AND c.state = state_waiting() AND c.wait_for_parents
       AND c.done_parents >= (SELECT count(*) FROM process_edges e WHERE e.child_id = c.process_id)
    RETURNING c.process_id, c.state, c.colony_name, c.executor_type),
wake AS (
    SELECT notify_ready(q.colony_name, q.executor_type)
      FROM (SELECT DISTINCT colony_name, executor_type FROM ready) q),
event AS (
    SELECT notify_process_changed(process_id, state, colony_name, executor_type) FROM ready)
SELECT (SELECT count(*) FROM ready) AS ready, (SELECT count(*) FROM wake) AS woken,
       (SELECT count(*) FROM event) AS events

-- name: settle_descendants
-- The pending descendants of the processes $1 end in state $2, each with the error $3 (a format
-- with the name and id of the first of those processes, by name, that blocks it).
WITH RECURSIVE seeds AS (
    SELECT process_id, coalesce(nullif(spec->>'nodename', ''), funcname) AS name
      FROM processes
     WHERE process_id = ANY ($1::text[])),
down (process_id, cause_id, cause_name) AS (
    SELECT e.child_id, s.process_id, s.name
      FROM seeds s
      JOIN process_edges e ON e.parent_id = s.process_id
    UNION
    SELECT e.child_id, d.cause_id, d.cause_name
      FROM down d
      JOIN process_edges e ON e.parent_id = d.process_id),
cause AS (
    SELECT DISTINCT ON (process_id) process_id, cause_id, cause_name
      FROM down
     ORDER BY process_id, cause_name, cause_id),
settled AS (
    UPDATE processes p
       SET state = $2, end_time = clock_timestamp(), wait_deadline = NULL, exec_deadline = NULL,
           errors = jsonb_build_array(format($3, cause.cause_name, cause.cause_id))
      FROM cause
     WHERE p.process_id = cause.process_id AND p.state = state_waiting()
    RETURNING p.process_id, p.state, p.colony_name, p.executor_type),
event AS (
    SELECT notify_process_changed(process_id, state, colony_name, executor_type) FROM settled)
SELECT (SELECT count(*) FROM settled) AS settled, (SELECT count(*) FROM event) AS events

-- name: mark_failed
-- The active graphs $1 are FAILED.
UPDATE processgraphs
   SET state = state_failed(), end_time = clock_timestamp()
 WHERE processgraph_id = ANY ($1::text[]) AND state = state_waiting()

-- name: mark_cancelled
-- The graph $1, if active, is CANCELLED.
UPDATE processgraphs
   SET state = state_cancelled(), end_time = clock_timestamp()
 WHERE processgraph_id = $1 AND state = state_waiting()

-- name: cancel_processes
-- The WAITING/RUNNING processes among $1 -> CANCELLED (a running one keeps its assignee, whose
-- close is then refused); the ids cancelled.
WITH cancelled AS (
    UPDATE processes
       SET state = state_cancelled(), end_time = clock_timestamp(), exec_deadline = NULL, wait_deadline = NULL
     WHERE process_id = ANY ($1::text[]) AND state IN (state_waiting(), state_running())
    RETURNING process_id, state, colony_name, executor_type),
event AS (
    SELECT notify_process_changed(process_id, state, colony_name, executor_type) FROM cancelled)
SELECT process_id, (SELECT count(*) FROM event) AS events
  FROM cancelled

-- name: unfinished_members
-- The WAITING/RUNNING processes of graph $1.
SELECT process_id FROM processes WHERE processgraph_id = $1 AND state IN (state_waiting(), state_running())

-- name: add_child
-- A new WAITING process ($4: new_process as JSON; $5 its new_env_attribute[] as JSON) that waits
-- for process $2 of graph $1, checked under share locks on the graph, the parent and child $3:
-- the graph is active, the parent belongs to it and has not ended (and, unless $7 is '', is
-- assigned to $7), child $3 (unless '') belongs to it and has not started. With $6 (insert) the
-- new process goes between the parent and all its children; otherwise it is one more child of
-- the parent, and also a parent of child $3 when given. No row when a check failed.
WITH graph AS (
    SELECT g.processgraph_id FROM processgraphs g
     WHERE g.processgraph_id = $1 AND g.state = state_waiting()
       FOR SHARE OF g),
parent AS (
    SELECT p.process_id
      FROM processes p, graph
     WHERE p.process_id = $2 AND p.processgraph_id = graph.processgraph_id
       AND p.state IN (state_waiting(), state_running()) AND ($7::text = '' OR p.assigned_executor_id = $7)
       FOR SHARE OF p),
child AS (  -- checked in "inserted", so that this lookup is by primary key only
    SELECT c.process_id, c.processgraph_id, c.state, c.wait_for_parents
      FROM processes c
     WHERE c.process_id = $3
       FOR SHARE OF c),
inserted AS (  -- nothing is inserted unless the checks pass
    SELECT * FROM insert_processes((
        SELECT jsonb_build_array($4::jsonb)
          FROM parent
         WHERE $3 = '' OR EXISTS (SELECT 1 FROM child
                                   WHERE child.processgraph_id = $1
                                     AND ($6 OR (child.state = state_waiting() AND child.wait_for_parents)))))),
env AS (
    INSERT INTO attributes (attribute_id, target_id, colony_name, processgraph_id, attribute_type, key, value)
    SELECT e.attribute_id, inserted.process_id, inserted.colony_name, $1, attribute_env(), e.key, e.value
      FROM inserted, jsonb_populate_recordset(NULL::new_env_attribute, $5::jsonb) AS e
    RETURNING 1),
below_parent AS (
    INSERT INTO process_edges (parent_id, child_id)
    SELECT $2, inserted.process_id FROM inserted
    RETURNING 1),
spliced AS (  -- insert: the parent's old children now wait for the new process instead (same place)
    UPDATE process_edges e
       SET parent_id = inserted.process_id
      FROM inserted
     WHERE $6 AND e.parent_id = $2
    RETURNING 1),
joined AS (  -- beside: the given child also waits for the new process (its last parent)
    INSERT INTO process_edges (parent_id, child_id)
    SELECT inserted.process_id, $3 FROM inserted
     WHERE NOT $6 AND $3 <> ''
    RETURNING 1)
SELECT inserted.*, ARRAY[$2] AS parents,
       CASE WHEN $6 THEN (SELECT d.children FROM process_details($2) d)  -- as before the splice:
            -- this statement's snapshot (only an insert needs them: a map's children add up)
            WHEN $3 = '' THEN '{}'::text[]
            ELSE ARRAY[$3]
       END AS children,
       (SELECT count(*) FROM env) AS env_count, (SELECT count(*) FROM below_parent) AS edges,
       (SELECT count(*) FROM spliced) AS spliced, (SELECT count(*) FROM joined) AS joined
  FROM inserted

-- name: get
-- Graph $1 as it is read (graph_summaries).
SELECT * FROM graph_summaries WHERE processgraph_id = $1

-- name: colony_of
-- The colony of graph $1.
SELECT colony_name FROM processgraphs WHERE processgraph_id = $1

-- name: member_states
-- The state of each process of graph $1.
SELECT process_id, state FROM processes WHERE processgraph_id = $1

-- name: graph_of_process
-- The graph process $1 belongs to ('' for none, NULL for no such process).
SELECT processgraph_id FROM processes WHERE process_id = $1

-- name: member_processes
-- The processes of the graphs $1, with their node names.
SELECT processgraph_id, process_id, coalesce(nullif(spec->>'nodename', ''), funcname) AS nodename, state
  FROM processes
 WHERE processgraph_id = ANY ($1::text[])
 ORDER BY priority_time, process_id

-- name: member_edges
-- The edges between the processes of the graphs $1, in edge order.
SELECT e.parent_id, e.child_id
  FROM process_edges e
  JOIN processes p ON p.process_id = e.child_id
 WHERE p.processgraph_id = ANY ($1::text[])
 ORDER BY e.edge_id

-- name: list_by_state
-- Up to $3 of colony $1's graphs in (wire) state $2, latest first.
SELECT * FROM graph_summaries
 WHERE colony_name = $1 AND state = $2
 ORDER BY submission_time DESC, processgraph_id
 LIMIT $3

-- name: has_running_member
-- Whether graph $1 has a running process.
SELECT EXISTS (SELECT 1 FROM processes WHERE processgraph_id = $1 AND state = state_running())

-- name: remove_processes
-- Delete the processes of graph $1 (locked, none running).
DELETE FROM processes WHERE processgraph_id = $1

-- name: remove
-- Delete graph $1 (after its processes).
DELETE FROM processgraphs WHERE processgraph_id = $1

-- name: remove_all
-- Delete colony $1's graphs in (wire) state $2 (-1: any) that have no running process, with their
-- processes (graphs locked elsewhere are skipped); their ids.
WITH doomed AS (
    SELECT g.processgraph_id FROM processgraphs g
     WHERE g.colony_name = $1 AND ($2 = -1 OR graph_state(g.processgraph_id, g.state) = $2)
       AND NOT EXISTS (SELECT 1 FROM processes m
                        WHERE m.processgraph_id = g.processgraph_id AND m.state = state_running())
       FOR UPDATE OF g SKIP LOCKED),
gone AS (
    DELETE FROM processes WHERE processgraph_id IN (SELECT processgraph_id FROM doomed))
DELETE FROM processgraphs
 WHERE processgraph_id IN (SELECT processgraph_id FROM doomed)
RETURNING processgraph_id
