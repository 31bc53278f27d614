-- Process channels: entries appended by the submitter or the assigned executor of an open
-- process, read and followed by them (server/store/channels.py).

-- name: lock_open_process
-- Process $1 if it is open (waiting or running) and $2 is its submitter or assigned executor,
-- held (FOR SHARE) until the transaction ends: a close waits for the append, and an append
-- waiting for a close sees the process closed. No row otherwise.
SELECT process_id FROM processes
 WHERE process_id = $1 AND state IN (state_waiting(), state_running())
   AND $2 IN (initiator_id, assigned_executor_id)
   FOR SHARE

-- name: insert_entry
-- Append entry $3 (in reply to $4, by sender $5, payload $6, type $7) to channel $2 of process
-- $1, announced to its followers on commit; no row if sequence $3 is taken.
WITH inserted AS (
    INSERT INTO channel_entries (process_id, channel, sequence, in_reply_to, sender_id, payload, payload_type)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT DO NOTHING
    RETURNING sequence),
event AS (SELECT notify_channel_entry($1, $2, sequence) FROM inserted)
SELECT sequence, (SELECT count(*) FROM event) AS events FROM inserted

-- name: get_entry
-- Entry $3 of channel $2 of process $1.
SELECT sequence, in_reply_to, sender_id, payload, payload_type, added
  FROM channel_entries
 WHERE process_id = $1 AND channel = $2 AND sequence = $3

-- name: count_entry
-- Count an entry of $3 bytes into channel $2 of process $1, unless the channel would then hold
-- more than $4 entries or $5 bytes; returns the channel's size afterwards, no row past a cap.
INSERT INTO channels AS c (process_id, channel, entries, bytes)
SELECT $1::text, $2::text, 1, $3::bigint WHERE 1 <= $4::integer AND $3::bigint <= $5::bigint
ON CONFLICT (process_id, channel) DO UPDATE
   SET entries = c.entries + 1, bytes = c.bytes + excluded.bytes
 WHERE c.entries + 1 <= $4 AND c.bytes + excluded.bytes <= $5
RETURNING entries, bytes

-- name: read
-- Up to $4 entries of channel $2 of process $1 after sequence $3, in sequence order.
SELECT sequence, in_reply_to, sender_id, payload, payload_type, added
  FROM channel_entries
 WHERE process_id = $1 AND channel = $2 AND sequence > $3
 ORDER BY sequence
 LIMIT $4

-- name: read_sequences
-- The entries of channel $2 of process $1 whose sequences are in $3, in sequence order.
SELECT sequence, in_reply_to, sender_id, payload, payload_type, added
  FROM channel_entries
 WHERE process_id = $1 AND channel = $2 AND sequence = ANY ($3::bigint[])
 ORDER BY sequence
