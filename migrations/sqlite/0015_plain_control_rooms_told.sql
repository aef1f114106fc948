-- Issue 22, item 10: a control room that is not encrypted gets no replies from encrypted DMs
-- (unless broadcast.relay_encrypted_to_plain_rooms); it is told so once.
ALTER TABLE control_rooms ADD COLUMN told_plain INTEGER NOT NULL DEFAULT 0;
