-- Replies, opt-out and read counts of issue #5 (SQLite dialect; migrations/postgres has its twin).

-- People who wrote `stop` in their DM: never addressed until they write `start`.
CREATE TABLE opt_outs (
    user_id       TEXT    PRIMARY KEY,
    opted_out_at  INTEGER NOT NULL
);

-- When a recipient read (receipt) or answered their copy.
ALTER TABLE deliveries ADD COLUMN read_at INTEGER;
ALTER TABLE deliveries ADD COLUMN replied_at INTEGER;
CREATE INDEX deliveries_by_room ON deliveries (room_id, updated_at);

-- One thread per (broadcast, recipient) in the control room; broadcast_id 0 collects messages
-- that answer no broadcast (a DM the recipient opened).
CREATE TABLE reply_threads (
    broadcast_id    INTEGER NOT NULL,
    user_id         TEXT    NOT NULL,
    control_room_id TEXT    NOT NULL,
    root_event_id   TEXT    NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (broadcast_id, user_id)
);

-- Each relayed message and its copy, so that edits and redactions follow.
CREATE TABLE relayed_events (
    source_event_id TEXT PRIMARY KEY,
    target_room_id  TEXT NOT NULL,
    target_event_id TEXT NOT NULL
);
