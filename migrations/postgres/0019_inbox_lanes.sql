-- Inbox events are read by lane, then in the order they came: what people wait for (lane 0:
-- commands, replies, the bot's invites) before what a broadcast brings in by the thousand
-- (lane 1: the joins of new DMs, read receipts).
ALTER TABLE inbox ADD COLUMN lane SMALLINT NOT NULL DEFAULT 0;
CREATE INDEX inbox_by_lane ON inbox (lane, seq);
