-- The embedded blob store: file bytes in chunks (see server/store/blobs.py).

-- name: get
SELECT * FROM blobs WHERE colony_name = $1 AND object = $2

-- name: begin
-- Start blob $2 of colony $1 ($3 size, $4 sha256); no row if the colony already has one of this
-- name (the transaction then ends without adding anything).
INSERT INTO blobs (colony_name, object, size, checksum)
VALUES ($1, $2, $3, $4)
ON CONFLICT (colony_name, object) DO NOTHING
RETURNING *

-- name: add_chunk
INSERT INTO blob_chunks (colony_name, object, seq, data) VALUES ($1, $2, $3, $4)

-- name: chunk
SELECT data FROM blob_chunks WHERE colony_name = $1 AND object = $2 AND seq = $3

-- name: collect
-- Delete colony $1's blobs among $2 that no file revision refers to any more; the objects deleted.
DELETE FROM blobs b
 WHERE b.colony_name = $1 AND b.object = ANY ($2::text[])
   AND NOT EXISTS (SELECT 1 FROM files f
                    WHERE f.colony_name = b.colony_name AND f.ref ->> 'protocol' = 'colonies'
                      AND f.ref -> 's3object' ->> 'object' = b.object)
RETURNING b.object

-- name: collect_orphans
-- Delete the blobs that no file revision has referred to for $1 seconds since they were uploaded
-- (an upload whose addfilemsg never came); how many.
WITH orphans AS (
    DELETE FROM blobs b
     WHERE b.added < now() - make_interval(secs => $1)
       AND NOT EXISTS (SELECT 1 FROM files f
                        WHERE f.colony_name = b.colony_name AND f.ref ->> 'protocol' = 'colonies'
                          AND f.ref -> 's3object' ->> 'object' = b.object)
    RETURNING 1)
SELECT count(*) FROM orphans
