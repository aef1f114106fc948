-- Encrypted events the bot could not decrypt yet: their room key had not arrived (issue #14;
-- sqlite dialect, migrations/postgres has its twin). Tried again when keys arrive, dropped after
-- a while.
CREATE TABLE undecrypted (
    event_id    TEXT PRIMARY KEY,
    event_json  TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
