-- Sender personas (sqlite dialect; migrations/postgres has its twin). A broadcast may be
-- sent as a persona (`personas:` in the config, `!bc send … --as NAME`), which has DMs of its
-- own: a recipient has at most one live DM with the bot and one with each persona. The owner is
-- '' for the bot (so every DM made before personas is the bot's), else the persona's name, which
-- is what a broadcast's options_json names too: a claim finds the DM of its sender by itself.
ALTER TABLE dm_rooms ADD COLUMN owner TEXT NOT NULL DEFAULT '';

-- One live DM per (recipient, owner); recipient first, so that looking up a batch of
-- recipients' DMs still uses it.
DROP INDEX dm_rooms_one_live_per_user;
CREATE UNIQUE INDEX dm_rooms_one_live_per_user_and_owner ON dm_rooms (user_id, owner) WHERE state <> 'retired';
