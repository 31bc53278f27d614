-- Blueprints (the reference's declarative resources): a colony owner's definitions of a kind (a
-- JSON Schema for the spec and the executor type that reconciles it), the members' blueprints of
-- those kinds, and the history of every change. A change and the reconcile process it submits
-- are written in one transaction (server/store/blueprints.py).

CREATE TABLE blueprint_definitions (
    definition_id text PRIMARY KEY,
    colony_name   text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    name          text NOT NULL,
    kind          text NOT NULL,
    -- The whole definition as the client sent it (metadata, spec.names, spec.schema, spec.handler).
    data          jsonb NOT NULL,
    added         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (colony_name, name),
    UNIQUE (colony_name, kind)
);

CREATE TABLE blueprints (
    blueprint_id  text PRIMARY KEY,
    colony_name   text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    name          text NOT NULL,
    kind          text NOT NULL,
    -- Text, not a reference: locations live in a table of their own.
    location_name text NOT NULL DEFAULT '',
    generation    bigint NOT NULL DEFAULT 1,
    -- metadata (without the fields above), handler, spec and status of the wire object.
    metadata      jsonb NOT NULL DEFAULT '{}',
    handler       jsonb,
    spec          jsonb NOT NULL DEFAULT '{}',
    status        jsonb NOT NULL DEFAULT '{}',
    created       timestamptz NOT NULL DEFAULT now(),
    updated       timestamptz NOT NULL DEFAULT now(),
    last_reconcile_process_id text NOT NULL DEFAULT '',
    last_reconcile_time       timestamptz,
    UNIQUE (colony_name, name)
);
CREATE INDEX blueprints_by_kind ON blueprints (colony_name, kind, location_name);

CREATE TABLE blueprint_history (
    history_id   text PRIMARY KEY,
    blueprint_id text NOT NULL,
    colony_name  text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    name         text NOT NULL,
    kind         text NOT NULL,
    generation   bigint NOT NULL,
    spec         jsonb NOT NULL,
    status       jsonb NOT NULL,
    changed_by   text NOT NULL,
    change_type  text NOT NULL,
    -- The reconcile process this change submitted.
    process_id   text NOT NULL DEFAULT '',
    recorded     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX blueprint_history_by_blueprint ON blueprint_history (blueprint_id, recorded DESC);
