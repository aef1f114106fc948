-- Which local accounts belong to another application service (bridged ghosts, never addressed),
-- as the Synapse admin API told (issue #11; postgres dialect, migrations/sqlite has its twin). An
-- account's appservice never changes, so each is looked up once ever, not once per broadcast.
CREATE TABLE accounts (
    user_id TEXT    PRIMARY KEY,
    bridged BIGINT  NOT NULL
);
