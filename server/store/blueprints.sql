-- Blueprints: definitions (a kind, its schema and reconciler), blueprints, their history, and the
-- reconcile processes a change submits (see server/store/blueprints.py).

-- name: insert_definition
-- A new definition ($1 id, $2 colony, $3 name, $4 kind, $5 the whole object); no row if the
-- colony already has a definition of this name or kind.
INSERT INTO blueprint_definitions (definition_id, colony_name, name, kind, data)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING
RETURNING *

-- name: definition_clash
-- The colony $1's definition named $2 or defining kind $3, if any.
SELECT * FROM blueprint_definitions WHERE colony_name = $1 AND (name = $2 OR kind = $3) LIMIT 1

-- name: get_definition
SELECT * FROM blueprint_definitions WHERE colony_name = $1 AND name = $2

-- name: list_definitions
SELECT * FROM blueprint_definitions WHERE colony_name = $1 ORDER BY name

-- name: share_definition_for_kind
-- Colony $1's definition of kind $2, locked against removal for the rest of the transaction.
SELECT * FROM blueprint_definitions WHERE colony_name = $1 AND kind = $2 FOR SHARE

-- name: lock_definition
-- Colony $1's definition named $2, locked for its removal.
SELECT * FROM blueprint_definitions WHERE colony_name = $1 AND name = $2 FOR UPDATE

-- name: count_of_kind
-- How many blueprints of kind $2 colony $1 has.
SELECT count(*) FROM blueprints WHERE colony_name = $1 AND kind = $2

-- name: remove_definition
DELETE FROM blueprint_definitions WHERE definition_id = $1 RETURNING true

-- name: insert_blueprint
-- A new blueprint ($1 id, $2 colony, $3 name, $4 kind, $5 location, $6 metadata, $7 handler,
-- $8 spec, $9 its first reconcile process); no row if the colony has one of this name.
INSERT INTO blueprints (blueprint_id, colony_name, name, kind, location_name, metadata, handler, spec,
                        last_reconcile_process_id, last_reconcile_time)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
ON CONFLICT (colony_name, name) DO NOTHING
RETURNING *

-- name: get_blueprint
SELECT * FROM blueprints WHERE colony_name = $1 AND name = $2

-- name: get_blueprint_by_id
SELECT * FROM blueprints WHERE blueprint_id = $1

-- name: lock_blueprint
-- Colony $1's blueprint named $2, locked for a change for the rest of the transaction.
SELECT * FROM blueprints WHERE colony_name = $1 AND name = $2 FOR UPDATE

-- name: list_blueprints
-- Colony $1's blueprints, of kind $2 and at location $3 when they are not ''.
SELECT * FROM blueprints
 WHERE colony_name = $1 AND ($2 = '' OR kind = $2) AND ($3 = '' OR location_name = $3)
 ORDER BY name

-- name: update_blueprint
-- Blueprint $1 (locked) gets generation $2, location $3, metadata $4, handler $5, spec $6 and its
-- latest reconcile process $7.
UPDATE blueprints
   SET generation = $2, location_name = $3, metadata = $4, handler = $5, spec = $6,
       last_reconcile_process_id = $7, last_reconcile_time = now(), updated = now()
 WHERE blueprint_id = $1
RETURNING *

-- name: record_reconcile
-- Blueprint $1 (locked) was reconciled by process $2 (with generation $3).
UPDATE blueprints
   SET last_reconcile_process_id = $2, last_reconcile_time = now(), generation = $3
 WHERE blueprint_id = $1
RETURNING *

-- name: remove_blueprint
DELETE FROM blueprints WHERE blueprint_id = $1 RETURNING true

-- name: update_status
-- Colony $1's blueprint named $2 gets status $3 (the reconciler's report).
UPDATE blueprints SET status = $3 WHERE colony_name = $1 AND name = $2 RETURNING *

-- name: insert_history
-- A change of a blueprint ($1 history id, $2 blueprint id, $3 colony, $4 name, $5 kind,
-- $6 generation, $7 spec, $8 status, $9 changed by, $10 change type, $11 its reconcile process).
INSERT INTO blueprint_history (history_id, blueprint_id, colony_name, name, kind, generation, spec,
                               status, changed_by, change_type, process_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)

-- name: history
-- Up to $2 changes of blueprint $1, latest first.
SELECT * FROM blueprint_history WHERE blueprint_id = $1 ORDER BY recorded DESC, history_id LIMIT $2

-- name: history_colony
-- The colony of blueprint $1's history (the blueprint itself may be removed).
SELECT colony_name FROM blueprint_history WHERE blueprint_id = $1 LIMIT 1

-- name: insert_reconcile_process
-- Insert the reconcile process $1 (a new_process as JSON) and wake its queue on commit.
WITH inserted AS (SELECT * FROM insert_processes(jsonb_build_array($1::jsonb))),
wake AS (SELECT notify_ready(colony_name, executor_type) FROM inserted),
event AS (SELECT notify_process_changed(process_id, state, colony_name, executor_type) FROM inserted)
SELECT inserted.*, (SELECT count(*) FROM wake) AS woken, (SELECT count(*) FROM event) AS events
  FROM inserted
