-- Issue 25: a claim reads the due deliveries from where the last one stopped, by
-- (next_attempt_at, user_id): on PostgreSQL, the index entries of the deliveries already claimed
-- stay until the table is vacuumed, and reading them again in every claim made a broadcast's time
-- grow with the square of its size.
DROP INDEX deliveries_by_broadcast;
-- User IDs in byte order (COLLATE "C"), as the bot compares them.
CREATE INDEX deliveries_by_broadcast ON deliveries (broadcast_id, state, next_attempt_at, user_id COLLATE "C");
