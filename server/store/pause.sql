-- Pausing and resuming a colony's assignments (colonies.assignments_paused).

-- name: pause
-- Pause colony $1's assignments; no row if there is no such colony.
UPDATE colonies SET assignments_paused = true WHERE name = $1 RETURNING name

-- name: resume
-- Resume colony $1's assignments and wake every assign waiting in the colony, on every replica,
-- when the transaction commits (an empty executor type wakes all of the colony's queues); no row
-- if there is no such colony.
WITH resumed AS (
    UPDATE colonies SET assignments_paused = false WHERE name = $1 RETURNING name)
SELECT name, notify_ready(name, '') AS woken FROM resumed

-- name: is_paused
-- Whether colony $1's assignments are paused; no row if there is no such colony.
SELECT assignments_paused FROM colonies WHERE name = $1
