-- Colony files and snapshots (see server/store/files.py).

-- name: add
-- A new revision of file $4 under label $3 in colony $2 ($1 id, $5 size, $6 checksum,
-- $7 checksum algorithm, $8 ref without credentials, $9 metadata, $10 producing process or '');
-- the row as stored.
INSERT INTO files (file_id, colony_name, label, name, size, checksum, checksum_alg, ref, metadata,
                   process_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING *

-- name: get
-- Revision $2 of colony $1 (also a removed one a snapshot still holds).
SELECT * FROM files WHERE colony_name = $1 AND file_id = $2

-- name: revisions
-- The revisions of file $3 under label $2 in colony $1, newest first.
SELECT * FROM files
 WHERE colony_name = $1 AND label = $2 AND name = $3 AND NOT removed
 ORDER BY sequence_nr DESC

-- name: latest_under_label
-- The latest revision of every file under label $2 in colony $1, by name.
SELECT DISTINCT ON (name) *
  FROM files
 WHERE colony_name = $1 AND label = $2 AND NOT removed
 ORDER BY name, sequence_nr DESC

-- name: labels
-- Colony $1's labels that are $2 (with $3, exact) or start with $2, with their number of files.
SELECT label, count(DISTINCT name) AS files
  FROM files
 WHERE colony_name = $1 AND NOT removed
   AND (label = $2 OR (NOT $3 AND starts_with(label, $2)))
 GROUP BY label
 ORDER BY label

-- name: remove_revisions
-- Remove the revisions $2 of colony $1: a revision a snapshot holds is only marked removed (it
-- leaves its label), the others are deleted. The ids removed.
WITH held AS (
    SELECT f.file_id
      FROM files f
     WHERE f.colony_name = $1 AND f.file_id = ANY ($2::text[]) AND NOT f.removed
       AND EXISTS (SELECT 1 FROM snapshots s WHERE s.colony_name = $1 AND s.file_ids @> ARRAY[f.file_id])),
marked AS (
    UPDATE files SET removed = true
     WHERE file_id IN (SELECT file_id FROM held)
    RETURNING file_id),
deleted AS (
    DELETE FROM files
     WHERE colony_name = $1 AND file_id = ANY ($2::text[]) AND NOT removed
       AND file_id NOT IN (SELECT file_id FROM held)
    RETURNING file_id)
SELECT file_id FROM marked
UNION ALL
SELECT file_id FROM deleted

-- name: create_snapshot
-- Snapshot $1 named $4 of colony $2: the latest revision of every file under label $3 or below it
-- ($3 || '/...'). No row if the colony has a snapshot of this name.
INSERT INTO snapshots (snapshot_id, colony_name, label, name, file_ids)
SELECT $1, $2, $3, $4, coalesce(array_agg(latest.file_id ORDER BY latest.label, latest.name), '{}')
  FROM (SELECT DISTINCT ON (label, name) file_id, label, name
          FROM files
         WHERE colony_name = $2 AND NOT removed
           AND (label = $3 OR starts_with(label, rtrim($3, '/') || '/'))
         ORDER BY label, name, sequence_nr DESC) latest
ON CONFLICT (colony_name, name) DO NOTHING
RETURNING *

-- name: get_snapshot
SELECT * FROM snapshots WHERE colony_name = $1 AND snapshot_id = $2

-- name: get_snapshot_by_name
SELECT * FROM snapshots WHERE colony_name = $1 AND name = $2

-- name: list_snapshots
SELECT * FROM snapshots WHERE colony_name = $1 ORDER BY added, name

-- name: remove_snapshots
-- Delete colony $1's snapshots $2, and the removed revisions no other snapshot holds; the
-- snapshots deleted.
WITH gone AS (
    DELETE FROM snapshots WHERE colony_name = $1 AND snapshot_id = ANY ($2::text[])
    RETURNING snapshot_id, file_ids),
freed AS (
    DELETE FROM files f
     WHERE f.colony_name = $1 AND f.removed
       AND f.file_id IN (SELECT unnest(file_ids) FROM gone)
       AND NOT EXISTS (SELECT 1 FROM snapshots s
                        WHERE s.colony_name = $1 AND s.file_ids @> ARRAY[f.file_id]
                          AND s.snapshot_id <> ALL ($2::text[]))
    RETURNING 1)
SELECT snapshot_id, (SELECT count(*) FROM freed) AS freed FROM gone

-- name: lock_colony_files
-- For the rest of the transaction, be the only one removing colony $1's files or changing its
-- snapshots (so that a snapshot never holds a revision that a concurrent removal deletes).
SELECT pg_advisory_xact_lock(hashtextextended('colonies files ' || $1, 0))

-- name: embedded_objects
-- The embedded-store blobs (ref protocol "colonies") that colony $1's revisions $2 refer to.
SELECT DISTINCT ref -> 's3object' ->> 'object' AS object
  FROM files
 WHERE colony_name = $1 AND file_id = ANY ($2::text[]) AND ref ->> 'protocol' = 'colonies'

-- name: search
-- Up to $6 of colony $1's revisions (newest first) under label $2 or below it ('' or '/': any),
-- named $3 (unless ''), whose metadata contains $4, produced by process $5 (unless '').
SELECT * FROM files
 WHERE colony_name = $1 AND NOT removed
   AND ($2 IN ('', '/') OR label = $2 OR starts_with(label, $2 || '/'))
   AND ($3 = '' OR name = $3)
   AND metadata @> $4::jsonb
   AND ($5 = '' OR process_id = $5)
 ORDER BY sequence_nr DESC
 LIMIT $6
