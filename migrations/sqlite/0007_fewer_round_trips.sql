-- Fewer homeserver requests and database round trips per recipient (issue #11; sqlite dialect,
-- migrations/postgres has its twin).

-- A recipient's display name as audience resolution saw it (joined_members, the admin user
-- list, a profile look-up), so that {displayname} costs no request at delivery. NULL: not known
-- (the member list did not say), and the worker asks when the message needs it; '': they have none.
ALTER TABLE deliveries ADD COLUMN displayname TEXT;

-- The recipient's membership in their DM, from the member events the homeserver pushes (the bot
-- is in every DM): whether a send needs a re-invite first costs no request.
ALTER TABLE dm_rooms ADD COLUMN membership TEXT NOT NULL DEFAULT 'invite';

-- The claim walks the running broadcasts' due rows in order: (broadcast, state, due) serves it
-- without sorting, however long the queue.
DROP INDEX deliveries_by_broadcast;
CREATE INDEX deliveries_by_broadcast ON deliveries (broadcast_id, state, next_attempt_at);
