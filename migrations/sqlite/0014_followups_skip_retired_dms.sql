-- Issue 22, item 9: an edit or a poll's end is not sent into a DM retired for gaining a third
-- member; the copy is marked skipped, and the summary counts it.
ALTER TABLE deliveries ADD COLUMN followup_skipped INTEGER NOT NULL DEFAULT 0;
