-- Pausing a colony's assignments, and process channels.

-- Durable, shared by every replica (the reference keeps the flag in etcd and wakes only the
-- resuming node's waiters). While true, assign hands out nothing in the colony.
ALTER TABLE colonies ADD COLUMN assignments_paused boolean NOT NULL DEFAULT false;

-- Channels: per-process message logs between the submitter and the assigned executor. A channel
-- exists only if the process's spec.channels names it; its entries are numbered by the clients
-- (one sequence space per channel). Removing the process removes them by cascade; closing it
-- (the trigger below) drops them in the closing transaction.

-- A channel's size, kept with each append (its row lock orders the appends of one channel), so
-- the caps cost no count.
CREATE TABLE channels (
    process_id text NOT NULL REFERENCES processes (process_id) ON DELETE CASCADE,
    channel    text NOT NULL,
    entries    integer NOT NULL,
    bytes      bigint NOT NULL,
    PRIMARY KEY (process_id, channel)
);

CREATE TABLE channel_entries (
    process_id   text NOT NULL REFERENCES processes (process_id) ON DELETE CASCADE,
    channel      text NOT NULL,
    sequence     bigint NOT NULL,
    in_reply_to  bigint NOT NULL DEFAULT 0,
    sender_id    text NOT NULL,
    payload      bytea NOT NULL,
    payload_type text NOT NULL DEFAULT '',
    added        timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (process_id, channel, sequence)
);

-- Announce a new entry to the /pubsub followers of (process, channel), on every replica, when the
-- appending transaction commits. The channel is server.store.channels.CHANNEL.
CREATE FUNCTION notify_channel_entry(process_id text, channel text, sequence bigint) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_notify('colonies_channel', concat_ws(chr(31), process_id, channel, sequence::text))
$$;

-- Every way a process ends (close successful or failed, cancel, a failure cascade, the deadline
-- sweeper) drops its channels in the same transaction, whichever statement ends it.
CREATE FUNCTION drop_channels_of_ended_process() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM channel_entries WHERE process_id = NEW.process_id;
    DELETE FROM channels WHERE process_id = NEW.process_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER processes_drop_channels
    AFTER UPDATE OF state ON processes
    FOR EACH ROW
    WHEN (NEW.state >= 2 AND OLD.state < 2)
    EXECUTE FUNCTION drop_channels_of_ended_process();
