-- Process attributes (key/value pairs an executor attaches while running).

-- name: add
INSERT INTO attributes (attribute_id, target_id, colony_name, processgraph_id, attribute_type, key, value)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT DO NOTHING

-- name: get
-- Attribute $1 with the state of its process.
SELECT a.*, p.state
  FROM attributes a
  JOIN processes p ON p.process_id = a.target_id
 WHERE a.attribute_id = $1
