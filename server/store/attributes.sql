-- Process attributes (key/value pairs an executor attaches while running).

-- name: add
INSERT INTO attributes (attribute_id, target_id, colony_name, processgraph_id, attribute_type, key, value,
                        state)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT DO NOTHING

-- name: get
-- Attribute $1.
SELECT * FROM attributes WHERE attribute_id = $1
