-- Deliveries outlast outages (issue #10; postgres dialect, migrations/sqlite has its twin). Tries
-- are no longer used up while the homeserver is unreachable, so a delivery needs another bound:
-- when it was queued, for broadcast.give_up_after_hours. Rows queued before this migration
-- count from when it ran.
ALTER TABLE deliveries ADD COLUMN queued_at BIGINT NOT NULL DEFAULT 0;
UPDATE deliveries SET queued_at = updated_at;
