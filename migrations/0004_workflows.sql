-- Workflows (process graphs), crons and generators.

CREATE TABLE processgraphs (
    processgraph_id   text PRIMARY KEY,
    colony_name       text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    initiator_id      text NOT NULL,
    initiator_name    text NOT NULL,
    root_process_ids  text[] NOT NULL DEFAULT '{}',
    state             smallint NOT NULL DEFAULT 0,
    submission_time   timestamptz NOT NULL,
    start_time        timestamptz,
    end_time          timestamptz
);
CREATE INDEX processgraphs_by_state ON processgraphs (colony_name, state, submission_time DESC);
-- Workflow edges, one row per (parent, child). A child's parents in edge_id order are its
-- dependency order: the order in which their outputs make up its input. Rows, not arrays, so
-- that adding a child at run time never rewrites a growing list.
CREATE TABLE process_edges (
    edge_id    bigserial PRIMARY KEY,
    parent_id  text NOT NULL,
    child_id   text NOT NULL REFERENCES processes (process_id) ON DELETE CASCADE,
    UNIQUE (child_id, parent_id)
);
CREATE INDEX process_edges_by_parent ON process_edges (parent_id, edge_id);
-- Before workflows existed these were always empty.
ALTER TABLE processes DROP COLUMN parents, DROP COLUMN children;
-- How many parents of a workflow process have succeeded; it becomes ready when all have.
ALTER TABLE processes ADD COLUMN done_parents integer NOT NULL DEFAULT 0;

-- A graph's members, found by the graph id every process of it carries.
CREATE INDEX processes_by_graph ON processes (processgraph_id, state) WHERE processgraph_id <> '';

CREATE TABLE crons (
    cron_id                     text PRIMARY KEY,
    colony_name                 text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    name                        text NOT NULL,
    cron_expression             text NOT NULL DEFAULT '',
    interval_s                  integer NOT NULL DEFAULT -1,
    random                      boolean NOT NULL DEFAULT false,
    next_run                    timestamptz,
    last_run                    timestamptz,
    workflow_spec               text NOT NULL,
    prev_processgraph_id        text NOT NULL DEFAULT '',
    wait_for_prev_processgraph  boolean NOT NULL DEFAULT false,
    initiator_id                text NOT NULL,
    initiator_name              text NOT NULL,
    UNIQUE (colony_name, name)
);
CREATE INDEX crons_due ON crons (next_run);

CREATE TABLE generators (
    generator_id    text PRIMARY KEY,
    colony_name     text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    name            text NOT NULL,
    workflow_spec   text NOT NULL,
    trigger         integer NOT NULL,
    timeout_s       integer NOT NULL DEFAULT -1,
    first_pack      timestamptz,
    last_run        timestamptz,
    initiator_id    text NOT NULL,
    initiator_name  text NOT NULL,
    UNIQUE (colony_name, name)
);

-- Packed arguments, in the order they were packed.
CREATE TABLE generator_args (
    arg_id        bigserial PRIMARY KEY,
    generator_id  text NOT NULL REFERENCES generators (generator_id) ON DELETE CASCADE,
    arg           text NOT NULL,
    added         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX generator_args_by_generator ON generator_args (generator_id, arg_id);
