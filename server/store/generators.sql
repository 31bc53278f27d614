-- Generators: a stored workflow spec fed with packed string arguments (see generators.py).

-- name: insert
-- A new generator ($1 id, $2 colony, $3 name, $4 workflow spec, $5 trigger, $6 timeout in
-- seconds, $7 initiator id, $8 initiator name); no row if the colony already has one of this name.
INSERT INTO generators (generator_id, colony_name, name, workflow_spec, trigger, timeout_s,
                        initiator_id, initiator_name)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (colony_name, name) DO NOTHING
RETURNING *, 0::bigint AS queue_size

-- name: get
SELECT g.*, generator_queue_size(g.generator_id) AS queue_size FROM generators g WHERE g.generator_id = $1

-- name: get_by_name
SELECT g.*, generator_queue_size(g.generator_id) AS queue_size
  FROM generators g
 WHERE g.colony_name = $1 AND g.name = $2

-- name: list_for_colony
-- Up to $2 of colony $1's generators, by name.
SELECT g.*, generator_queue_size(g.generator_id) AS queue_size
  FROM generators g
 WHERE g.colony_name = $1
 ORDER BY g.name
 LIMIT $2

-- name: remove
-- Delete generator $1 and (by cascade) its pending args.
DELETE FROM generators WHERE generator_id = $1 RETURNING true

-- name: lock
-- Lock generator $1 for the rest of the transaction: its row plus "now" (the database clock).
SELECT *, clock_timestamp() AS now FROM generators WHERE generator_id = $1 FOR UPDATE

-- name: lock_if_free
-- As lock, but no row if the generator is locked (being packed or submitted elsewhere).
SELECT *, clock_timestamp() AS now FROM generators WHERE generator_id = $1 FOR UPDATE SKIP LOCKED

-- name: add_arg
-- Queue arg $2 for generator $1, after the others.
INSERT INTO generator_args (generator_id, arg) VALUES ($1, $2)

-- name: mark_first_pack
-- Record the first pack ever of generator $1.
UPDATE generators SET first_pack = clock_timestamp() WHERE generator_id = $1 AND first_pack IS NULL

-- name: queue_state
-- How many args generator $1 has queued, and when the oldest of them was packed.
SELECT count(*) AS queued,
       (SELECT added FROM generator_args WHERE generator_id = $1 ORDER BY arg_id LIMIT 1) AS oldest
  FROM generator_args
 WHERE generator_id = $1

-- name: first_args
-- The first $2 queued args of generator $1, in pack order.
SELECT arg_id, arg FROM generator_args WHERE generator_id = $1 ORDER BY arg_id LIMIT $2

-- name: delete_args
-- Delete the args $2 of generator $1 (just submitted).
DELETE FROM generator_args WHERE generator_id = $1 AND arg_id = ANY ($2::bigint[])

-- name: mark_run
UPDATE generators SET last_run = clock_timestamp() WHERE generator_id = $1

-- name: timed_out_ids
-- Up to $1 generators with a timeout whose oldest queued arg has waited longer than it, the
-- longest waiting first.
SELECT g.generator_id
  FROM generators g
 CROSS JOIN LATERAL (SELECT a.added FROM generator_args a
                      WHERE a.generator_id = g.generator_id
                      ORDER BY a.arg_id
                      LIMIT 1) oldest
 WHERE g.timeout_s > 0 AND oldest.added <= clock_timestamp() - make_interval(secs => g.timeout_s)
 ORDER BY oldest.added, g.generator_id
 LIMIT $1
