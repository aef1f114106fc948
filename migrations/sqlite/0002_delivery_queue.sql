-- The delivery queue of issue #4 (SQLite dialect; migrations/postgres has its twin).
-- Broadcasts get their audience, options and the events that show them in the control room;
-- deliveries become a queue with retries and leases; DM rooms get a life cycle (creating ->
-- ready -> retired) so that a room is never created twice for one person, even across a crash.

ALTER TABLE broadcasts ADD COLUMN audience_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE broadcasts ADD COLUMN options_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE broadcasts ADD COLUMN command_event_id TEXT;
-- A command re-dispatched after a crash finds its broadcast instead of making a second one.
CREATE UNIQUE INDEX broadcasts_by_command ON broadcasts (command_event_id);
ALTER TABLE broadcasts ADD COLUMN preview_event_id TEXT;
ALTER TABLE broadcasts ADD COLUMN progress_event_id TEXT;
ALTER TABLE broadcasts ADD COLUMN started_at INTEGER;
ALTER TABLE broadcasts ADD COLUMN finished_at INTEGER;

-- When a delivery may be tried next, and until when a worker holds it.
ALTER TABLE deliveries ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN room_id TEXT;
DROP INDEX deliveries_by_state;
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_by_broadcast ON deliveries (broadcast_id, state);

-- dm_rooms held one room per user; a user may now also have retired rooms (a third member
-- joined) and a room being created. Nothing was delivered with the old table.
DROP TABLE dm_rooms;
CREATE TABLE dm_rooms (
    nonce      TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    room_id    TEXT    UNIQUE,
    state      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX dm_rooms_one_live_per_user ON dm_rooms (user_id) WHERE state <> 'retired';
