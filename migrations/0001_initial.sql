-- Colonies, members, functions, processes, attributes and logs.
-- Times are timestamptz; NULL means "not set" (Go's zero time on the wire).

CREATE TABLE colonies (
    name        text PRIMARY KEY,
    colony_id   text NOT NULL UNIQUE
);

CREATE TABLE users (
    colony_name text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    name        text NOT NULL,
    user_id     text NOT NULL,
    email       text NOT NULL DEFAULT '',
    phone       text NOT NULL DEFAULT '',
    PRIMARY KEY (colony_name, name),
    UNIQUE (colony_name, user_id)
);

CREATE TABLE executors (
    colony_name       text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    name              text NOT NULL,
    executor_id       text NOT NULL,
    executor_type     text NOT NULL,
    state             smallint NOT NULL DEFAULT 0,
    require_func_reg  boolean NOT NULL DEFAULT false,
    commission_time   timestamptz NOT NULL DEFAULT now(),
    last_heard_from   timestamptz,
    location_name     text NOT NULL DEFAULT '',
    capabilities      jsonb NOT NULL DEFAULT '{"hardware": null, "software": null}',
    allocations       jsonb NOT NULL DEFAULT '{"projects": null}',
    PRIMARY KEY (colony_name, name)
);
CREATE INDEX executors_by_id ON executors (executor_id);

CREATE TABLE functions (
    function_id    text PRIMARY KEY,
    colony_name    text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    executor_name  text NOT NULL,
    executor_type  text NOT NULL,
    funcname       text NOT NULL,
    description    text NOT NULL DEFAULT '',
    args           jsonb NOT NULL DEFAULT '[]',
    location_name  text NOT NULL DEFAULT '',
    counter        bigint NOT NULL DEFAULT 0,
    min_wait_time  double precision NOT NULL DEFAULT 0,
    max_wait_time  double precision NOT NULL DEFAULT 0,
    min_exec_time  double precision NOT NULL DEFAULT 0,
    max_exec_time  double precision NOT NULL DEFAULT 0,
    avg_wait_time  double precision NOT NULL DEFAULT 0,
    avg_exec_time  double precision NOT NULL DEFAULT 0,
    FOREIGN KEY (colony_name, executor_name) REFERENCES executors (colony_name, name) ON DELETE CASCADE
);
CREATE UNIQUE INDEX functions_by_executor ON functions (colony_name, executor_name, funcname);

CREATE TABLE processes (
    process_id           text PRIMARY KEY,
    colony_name          text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    executor_type        text NOT NULL,
    executor_names       text[] NOT NULL DEFAULT '{}',
    location_name        text NOT NULL DEFAULT '',
    cpu_millis           bigint NOT NULL DEFAULT 0,
    memory_bytes         bigint NOT NULL DEFAULT 0,
    state                smallint NOT NULL DEFAULT 0,
    assigned_executor_id text NOT NULL DEFAULT '',
    initiator_id         text NOT NULL,
    initiator_name       text NOT NULL,
    funcname             text NOT NULL DEFAULT '',
    label                text NOT NULL DEFAULT '',
    priority             integer NOT NULL DEFAULT 0,
    priority_time        bigint NOT NULL,
    submission_time      timestamptz NOT NULL,
    start_time           timestamptz,
    end_time             timestamptz,
    wait_deadline        timestamptz,
    exec_deadline        timestamptz,
    max_wait_time        integer NOT NULL DEFAULT -1,
    max_exec_time        integer NOT NULL DEFAULT -1,
    max_retries          integer NOT NULL DEFAULT 0,
    retries              integer NOT NULL DEFAULT 0,
    spec                 jsonb NOT NULL,
    wait_for_parents     boolean NOT NULL DEFAULT false,
    parents              text[] NOT NULL DEFAULT '{}',
    children             text[] NOT NULL DEFAULT '{}',
    processgraph_id      text NOT NULL DEFAULT '',
    input                jsonb NOT NULL DEFAULT '[]',
    output               jsonb NOT NULL DEFAULT '[]',
    errors               jsonb NOT NULL DEFAULT '[]'
);
-- The assign hot path: only waiting, ready processes are in this index, so its cost does not
-- grow with history.
CREATE INDEX processes_ready ON processes (colony_name, executor_type, priority_time)
    WHERE state = 0 AND NOT wait_for_parents;
CREATE INDEX processes_by_state ON processes (colony_name, state, priority_time);
CREATE INDEX processes_running ON processes (assigned_executor_id) WHERE state = 1;
CREATE INDEX processes_finished ON processes (colony_name, state, end_time DESC) WHERE state >= 2;

CREATE TABLE attributes (
    attribute_id    text PRIMARY KEY,
    target_id       text NOT NULL REFERENCES processes (process_id) ON DELETE CASCADE,
    colony_name     text NOT NULL,
    processgraph_id text NOT NULL DEFAULT '',
    attribute_type  smallint NOT NULL,
    key             text NOT NULL,
    value           text NOT NULL,
    added           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attributes_by_target ON attributes (target_id);

CREATE TABLE logs (
    log_id        bigserial PRIMARY KEY,
    process_id    text NOT NULL DEFAULT '',
    colony_name   text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    executor_name text NOT NULL,
    message       text NOT NULL,
    ts            bigint NOT NULL
);
CREATE INDEX logs_by_process ON logs (process_id, ts);
CREATE INDEX logs_by_executor ON logs (colony_name, executor_name, ts);
