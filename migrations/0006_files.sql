-- Colony files (ColonyFS metadata): revisions of named files under labels, and snapshots that
-- freeze the latest revisions under a label. The bytes live in blob storage; a row's ref says
-- where, without credentials.

-- The reference's FILE_SEQ: one global order of revisions ("latest" = the highest).
CREATE SEQUENCE file_sequence;

CREATE TABLE files (
    file_id      text PRIMARY KEY,
    colony_name  text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    label        text NOT NULL,
    name         text NOT NULL,
    size         bigint NOT NULL DEFAULT 0,
    sequence_nr  bigint NOT NULL DEFAULT nextval('file_sequence'),
    checksum     text NOT NULL DEFAULT '',
    checksum_alg text NOT NULL DEFAULT '',
    ref          jsonb NOT NULL,
    added        timestamptz NOT NULL DEFAULT now(),
    -- Our extension: key/value metadata set at upload, and the process that produced the file.
    metadata     jsonb NOT NULL DEFAULT '{}',
    process_id   text NOT NULL DEFAULT '',
    -- Removed, but kept because a snapshot still holds it (it is gone from labels).
    removed      boolean NOT NULL DEFAULT false
);
CREATE INDEX files_by_label ON files (colony_name, label, name, sequence_nr DESC) WHERE NOT removed;
-- Which revisions refer to a blob of the embedded store (to collect blobs nothing refers to).
CREATE INDEX files_by_metadata ON files USING gin (metadata jsonb_path_ops) WHERE NOT removed;
CREATE INDEX files_by_process ON files (colony_name, process_id) WHERE process_id <> '' AND NOT removed;
CREATE INDEX files_by_object ON files (colony_name, (ref -> 's3object' ->> 'object'));

CREATE TABLE snapshots (
    snapshot_id text PRIMARY KEY,
    colony_name text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    label       text NOT NULL,
    name        text NOT NULL,
    file_ids    text[] NOT NULL,
    added       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (colony_name, name)
);
CREATE INDEX snapshots_by_file ON snapshots USING gin (file_ids);

-- The embedded blob store (when no S3 is configured): a file's bytes in 1 MiB chunks, so every
-- server replica serves them and an upload is visible only once it has committed whole.
CREATE TABLE blobs (
    colony_name text NOT NULL REFERENCES colonies (name) ON DELETE CASCADE,
    object      text NOT NULL,
    size        bigint NOT NULL,
    checksum    text NOT NULL,  -- sha256, hex
    added       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (colony_name, object)
);

CREATE TABLE blob_chunks (
    colony_name text NOT NULL,
    object      text NOT NULL,
    seq         integer NOT NULL,
    data        bytea NOT NULL,
    PRIMARY KEY (colony_name, object, seq),
    FOREIGN KEY (colony_name, object) REFERENCES blobs (colony_name, object) ON DELETE CASCADE
);
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;  -- already compressed data is common
