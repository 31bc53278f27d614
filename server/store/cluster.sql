-- The live server processes (replicas) sharing this database.

-- name: join
-- Record server process $1 (name $2, host $3, port $4, pid $5), or refresh its record.
INSERT INTO server_nodes (node_id, name, host, port, pid)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now()

-- name: heartbeat
-- Server process $1 is alive; its deadline sweeper's backend is $2 (NULL: not connected). No
-- row if its record was deleted as stale (it then joins again).
UPDATE server_nodes SET heartbeat_at = now(), sweeper_backend_pid = $2 WHERE node_id = $1

-- name: forget_stale
-- Delete the records of server processes without a heartbeat for $1 seconds.
DELETE FROM server_nodes WHERE heartbeat_at < now() - make_interval(secs => $1)

-- name: leave
-- Server process $1 shuts down cleanly.
DELETE FROM server_nodes WHERE node_id = $1

-- name: live
-- The server processes with a heartbeat in the last $1 seconds, oldest first, each with whether
-- its sweeper's backend holds the deadline sweeper's advisory lock $2 (the leader).
SELECT n.*,
       EXISTS (SELECT 1 FROM pg_locks l
                WHERE l.locktype = 'advisory' AND l.granted AND l.pid = n.sweeper_backend_pid
                  AND l.classid::bigint = ($2::bigint >> 32) AND l.objid::bigint = ($2::bigint & 4294967295)
                  AND l.objsubid = 1) AS leader
  FROM server_nodes n
 WHERE n.heartbeat_at > now() - make_interval(secs => $1)
 ORDER BY n.started_at, n.node_id
