-- A colony's locations.

-- name: add
-- Location $2 of colony $1 (id $3, description $4, longitude $5, latitude $6); no row if the
-- name or the id is taken.
INSERT INTO locations (colony_name, name, location_id, description, long, lat)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT DO NOTHING
RETURNING *

-- name: get
SELECT * FROM locations WHERE colony_name = $1 AND name = $2

-- name: list_for_colony
SELECT * FROM locations WHERE colony_name = $1 ORDER BY name

-- name: remove
-- Delete location $2 of colony $1 (executors and processes that name it keep the name).
DELETE FROM locations WHERE colony_name = $1 AND name = $2
