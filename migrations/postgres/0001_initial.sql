-- The first schema of matrix-broadcast (PostgreSQL dialect; migrations/sqlite has its twin).
-- All timestamps are Unix milliseconds. Never edit an applied migration: add a new file.

-- Events the homeserver pushed, persisted before the transaction is acknowledged, so that
-- nothing is lost when the bot stops between the 200 and the work. The unique event_id makes
-- a re-pushed event a no-op. Rows are deleted once dispatched.
CREATE TABLE inbox (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    TEXT    NOT NULL UNIQUE,
    event_json  TEXT    NOT NULL,
    received_at BIGINT  NOT NULL
);

-- Rooms where commands are answered and replies arrive.
CREATE TABLE control_rooms (
    room_id  TEXT    PRIMARY KEY,
    added_by TEXT    NOT NULL,
    added_at BIGINT  NOT NULL
);

-- One row per broadcast; id is the short number shown as #12.
CREATE TABLE broadcasts (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT    NOT NULL,
    control_room_id TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    content_json    TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL
);

-- One row per (broadcast, recipient): the durable delivery queue.
CREATE TABLE deliveries (
    broadcast_id BIGINT  NOT NULL REFERENCES broadcasts (id),
    user_id      TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    attempts     BIGINT  NOT NULL DEFAULT 0,
    event_id     TEXT,
    last_error   TEXT,
    updated_at   BIGINT  NOT NULL,
    PRIMARY KEY (broadcast_id, user_id)
);
CREATE INDEX deliveries_by_state ON deliveries (state, broadcast_id);

-- The private DM room of each recipient with the bot.
CREATE TABLE dm_rooms (
    user_id    TEXT    PRIMARY KEY,
    room_id    TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL
);
