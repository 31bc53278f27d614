-- Users: human members of a colony.

-- name: add
-- User $2 of colony $1 ($3 id, $4 email, $5 phone); nothing if the name or id is taken.
INSERT INTO users (colony_name, name, user_id, email, phone) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING

-- name: get
SELECT * FROM users WHERE colony_name = $1 AND name = $2

-- name: get_by_id
SELECT * FROM users WHERE colony_name = $1 AND user_id = $2

-- name: list_for_colony
SELECT * FROM users WHERE colony_name = $1 ORDER BY name

-- name: remove
DELETE FROM users WHERE colony_name = $1 AND name = $2
