-- The language each recipient chose for the bot's notices to them (`language de` in their DM,
-- with broadcast.recipient_language: user; sqlite dialect, migrations/postgres has its twin).
CREATE TABLE recipient_languages (
    user_id  TEXT PRIMARY KEY,
    language TEXT NOT NULL,
    set_at   BIGINT NOT NULL
);
