-- DMs the homeserver made encrypted (issue #10; sqlite dialect, migrations/postgres has its twin).
-- Synapse's encryption_enabled_by_default_for_room_type encrypts the bot's new DMs, and the bot
-- cannot read replies there: such DMs are marked so that !bc status can count them.
ALTER TABLE dm_rooms ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
