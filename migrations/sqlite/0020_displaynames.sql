-- The display name each user was last seen with: their member event in a DM of the bot or a
-- persona (a profile change reaches every room the person is in), or the profile look-up on
-- first sight. A personalised copy for someone seen before needs no request for their name.
-- An empty name: they have none.
CREATE TABLE displaynames (
    user_id     TEXT PRIMARY KEY,
    displayname TEXT NOT NULL,
    seen_at     BIGINT NOT NULL
);
