-- After sending (issue #12; postgres dialect, migrations/sqlite has its twin): edits, retractions,
-- schedules and polls.

-- Each `!bc edit` raises the revision; each delivered copy remembers the revision it shows, so
-- that copies sent before an edit (or while it was being made) are replaced, once each.
ALTER TABLE broadcasts ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
-- `!bc redact`: when every copy was to be retracted, and why.
ALTER TABLE broadcasts ADD COLUMN retracted_at BIGINT;
ALTER TABLE broadcasts ADD COLUMN retract_reason TEXT;
-- `!bc poll close`: when the poll was ended; answers after it do not count.
ALTER TABLE broadcasts ADD COLUMN poll_closed_at BIGINT;
-- Whether delivered copies may still need an edit, a retraction or a poll end: the follow-up
-- task looks at these broadcasts only, and clears the mark when nothing is left.
ALTER TABLE broadcasts ADD COLUMN followups_open BIGINT NOT NULL DEFAULT 0;

ALTER TABLE deliveries ADD COLUMN shown_revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN retracted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN poll_ended BIGINT NOT NULL DEFAULT 0;
-- Failed tries of the follow-up a copy needs now, and the reason of the last failure.
ALTER TABLE deliveries ADD COLUMN followup_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN followup_error TEXT;

-- The last answer of each recipient to a poll broadcast (the choices as a JSON list of answer
-- IDs), by the time their client gave it.
CREATE TABLE poll_answers (
    broadcast_id BIGINT NOT NULL,
    user_id      TEXT    NOT NULL,
    choices_json TEXT    NOT NULL,
    answered_at  BIGINT NOT NULL,
    PRIMARY KEY (broadcast_id, user_id)
);
