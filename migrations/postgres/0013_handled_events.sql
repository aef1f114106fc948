-- Inbox events are handled once each, and a failure that may pass is tried again (issue #22;
-- postgres dialect, migrations/sqlite has its twin).
-- An event whose handling failed for a reason that may pass (a database or network error) stays
-- in the inbox with the count of its tries, and is not read again before not_before.
ALTER TABLE inbox ADD COLUMN tries BIGINT NOT NULL DEFAULT 0;
ALTER TABLE inbox ADD COLUMN not_before BIGINT NOT NULL DEFAULT 0;
-- The keys of the events already handled: a transaction Synapse pushes again (the bot stopped
-- before it answered) is not handled twice. Pruned after a week.
CREATE TABLE handled_events (
    event_id   TEXT PRIMARY KEY,
    handled_at BIGINT NOT NULL
);
CREATE INDEX handled_events_by_age ON handled_events (handled_at);
-- The DM a relayed message came from: its edits and redactions are followed only from there.
-- Rows relayed before this migration have none, and their edits are no longer followed.
ALTER TABLE relayed_events ADD COLUMN source_room_id TEXT;
