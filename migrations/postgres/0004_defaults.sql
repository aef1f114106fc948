-- Default broadcasts (welcome messages) of issue #6 (PostgreSQL dialect; migrations/sqlite has its
-- twin). A default is a broadcast that keeps taking recipients: whoever joins one of its rooms
-- (or registers, for scope 'server') is queued into the same broadcast, so the unique
-- (broadcast, user) pair of the queue makes it "once per person, ever".

CREATE TABLE defaults (
    broadcast_id BIGINT  NOT NULL,
    -- A room or space ID, or 'server'.
    scope        TEXT    NOT NULL,
    -- 1 while new people get it; `!bc default off` sets 0.
    active       BIGINT  NOT NULL DEFAULT 1,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (broadcast_id, scope)
);
CREATE INDEX defaults_by_scope ON defaults (scope, active);

-- Small named values the bot keeps, e.g. the creation time of the newest account the
-- new-user poll has seen.
CREATE TABLE bot_state (
    key   TEXT    PRIMARY KEY,
    value BIGINT  NOT NULL
);
