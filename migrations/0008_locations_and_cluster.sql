-- Locations of a colony, the server id after a rotation, and the live server processes (replicas).

-- A colony's named locations (the reference's LOCATIONS); an executor and a process's conditions
-- refer to one by name, which is not validated (as in the reference).
CREATE TABLE locations (
    colony_name text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    name        text NOT NULL,
    location_id text NOT NULL,
    description text NOT NULL DEFAULT '',
    long        double precision NOT NULL DEFAULT 0,
    lat         double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (colony_name, name),
    UNIQUE (location_id)
);

-- The server owner's id once changeserveridmsg has rotated it. It overrides the configured one
-- (COLONIES_SERVER_ID, the id of COLONIES_SERVER_PRVKEY or the data dir's key) on every replica
-- and across restarts; at most one row.
CREATE TABLE server_identity (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    server_id  text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

-- Every running server process sharing this database records itself here and stamps
-- heartbeat_at periodically; it deletes its row on a clean shutdown. Rows without a recent
-- heartbeat are stale (a killed process) and are not listed; old ones are deleted.
-- sweeper_backend_pid is the PostgreSQL backend of its deadline sweeper's connection, to tell
-- which replica holds the sweeper's advisory lock (the leader).
CREATE TABLE server_nodes (
    node_id             text PRIMARY KEY,
    name                text NOT NULL,
    host                text NOT NULL,
    port                integer NOT NULL,
    pid                 integer NOT NULL,
    started_at          timestamptz NOT NULL DEFAULT now(),
    heartbeat_at        timestamptz NOT NULL DEFAULT now(),
    sweeper_backend_pid integer NULL
);
CREATE INDEX server_nodes_by_heartbeat ON server_nodes (heartbeat_at);
