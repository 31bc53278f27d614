-- The replay records: signatures of accepted state-changing requests.

-- name: record
-- Record request $1; no row inserted if it was seen before (a replay).
INSERT INTO seen_requests (signature) VALUES ($1) ON CONFLICT DO NOTHING

-- name: forget
-- Forget request $1 (its handler failed, so the client may retry it).
DELETE FROM seen_requests WHERE signature = $1

-- name: expire
-- Forget the requests seen more than $1 seconds ago.
DELETE FROM seen_requests WHERE seen_at < now() - make_interval(secs => $1)
