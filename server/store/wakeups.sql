-- Wake-up notifications (the SQL function notify_ready is in migrations/0005_sql_functions.sql).

-- name: announce
-- Queue a wake-up for colony $1's executors of type $2, delivered when the transaction commits.
SELECT notify_ready($1, $2)
