//! What happens to copies after they were delivered: `!bc edit` (each copy shows one revision of
//! the message), `!bc redact` (each copy retracted once) and `!bc poll close` (each poll ended
//! once). The command marks the broadcast; the follow-up task finds the delivered copies that
//! still need something, and records each as done, or as failed with the reason.

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};

use super::{now_ms, parse, BroadcastId, Pool, Store, StoreError};
use crate::base::message::StoredMessage;

/// A delivered copy that needs a follow-up, with what is needed to make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followup {
    pub broadcast_id: BroadcastId,
    pub user_id: OwnedUserId,
    pub room_id: OwnedRoomId,
    pub event_id: OwnedEventId,
    /// As [`super::Recipient::displayname`].
    pub displayname: Option<String>,
    /// The revision the copy shows.
    pub shown_revision: i64,
    /// Failed tries of the follow-up it needs now.
    pub attempts: i64,
    /// Its DM was retired (it gained a third member): edits and a poll's end are not sent there.
    pub in_retired_dm: bool,
}

/// What a follow-up of a copy came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowupDone {
    /// The copy now shows `revision`.
    Edited {
        revision: i64,
    },
    Retracted,
    PollEnded,
}

/// How many copies a broadcast's follow-ups reached, how many were skipped (their DM was
/// retired), and how many failed for good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FollowupCounts {
    pub done: i64,
    pub skipped: i64,
    pub failed: i64,
}

/// The delivered copies of a broadcast (`b`) that need something (`d`): a retraction, the
/// latest revision, or the end of their poll.
const NEEDS_FOLLOWUP: &str = "d.state = 'delivered' AND d.event_id IS NOT NULL AND (
        (b.retracted_at IS NOT NULL AND d.retracted = 0)
     OR (b.retracted_at IS NULL AND d.shown_revision < b.revision)
     OR (b.retracted_at IS NULL AND b.poll_closed_at IS NOT NULL AND d.poll_ended = 0))";

/// Forgets the follow-up failures of a broadcast: a new edit, retraction or close starts over.
const RESET_FOLLOWUPS: &str =
    "UPDATE deliveries SET followup_error = NULL, followup_attempts = 0, followup_skipped = 0
     WHERE broadcast_id = $1";

type FollowupRow = (i64, String, String, String, Option<String>, i64, i64, bool);

impl Store {
    /// Replaces a broadcast's message with `message` (copies not delivered yet and later
    /// welcomes get it) and marks its delivered copies for an edit. Returns the new revision.
    pub async fn edit_broadcast(&self, id: BroadcastId, message: &StoredMessage) -> Result<i64, StoreError> {
        let content = serde_json::to_string(message)
            .map_err(|error| StoreError::Corrupt { column: "content_json", value: error.to_string() })?;
        let (revision,): (i64,) = on_pool!(self, |pool| {
            let mut transaction = pool.begin().await?;
            let revision = sqlx::query_as(
                "UPDATE broadcasts SET content_json = $1, revision = revision + 1, followups_open = 1
                 WHERE id = $2 RETURNING revision",
            )
            .bind(&content)
            .bind(id.0)
            .fetch_one(&mut *transaction)
            .await?;
            sqlx::query(RESET_FOLLOWUPS).bind(id.0).execute(&mut *transaction).await?;
            transaction.commit().await?;
            revision
        });
        Ok(revision)
    }

    /// Marks every delivered copy of a broadcast for retraction; false when it was retracted
    /// before.
    pub async fn retract_broadcast(&self, id: BroadcastId, reason: Option<&str>) -> Result<bool, StoreError> {
        let changed = on_pool!(self, |pool| {
            let mut transaction = pool.begin().await?;
            let changed = sqlx::query(
                "UPDATE broadcasts SET retracted_at = $1, retract_reason = $2, followups_open = 1
                 WHERE id = $3 AND retracted_at IS NULL",
            )
            .bind(now_ms())
            .bind(reason)
            .bind(id.0)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            sqlx::query(RESET_FOLLOWUPS).bind(id.0).execute(&mut *transaction).await?;
            transaction.commit().await?;
            changed
        });
        Ok(changed == 1)
    }

    /// Marks the poll of every delivered copy to be ended; false when it was closed before.
    pub async fn close_poll(&self, id: BroadcastId) -> Result<bool, StoreError> {
        let changed = on_pool!(self, |pool| {
            let mut transaction = pool.begin().await?;
            let changed = sqlx::query(
                "UPDATE broadcasts SET poll_closed_at = $1, followups_open = 1
                 WHERE id = $2 AND poll_closed_at IS NULL",
            )
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            sqlx::query(RESET_FOLLOWUPS).bind(id.0).execute(&mut *transaction).await?;
            transaction.commit().await?;
            changed
        });
        Ok(changed == 1)
    }

    /// Why the broadcast was retracted, as given to `!bc redact`.
    pub async fn retract_reason(&self, id: BroadcastId) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT retract_reason FROM broadcasts WHERE id = $1")
                .bind(id.0)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.and_then(|(reason,)| reason))
    }

    /// The broadcasts whose copies may still need a follow-up, oldest first.
    pub async fn broadcasts_with_followups(&self) -> Result<Vec<BroadcastId>, StoreError> {
        let rows: Vec<(i64,)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT id FROM broadcasts WHERE followups_open = 1 ORDER BY id")
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(id,)| BroadcastId(id)).collect())
    }

    /// Up to `limit` delivered copies of broadcast `id` that need a follow-up.
    pub async fn followups(&self, id: BroadcastId, limit: i64) -> Result<Vec<Followup>, StoreError> {
        let rows: Vec<FollowupRow> = on_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT d.broadcast_id, d.user_id, d.room_id, d.event_id, d.displayname, d.shown_revision,
                        d.followup_attempts,
                        EXISTS (SELECT 1 FROM dm_rooms r WHERE r.room_id = d.room_id AND r.state = 'retired')
                 FROM deliveries d JOIN broadcasts b ON b.id = d.broadcast_id
                 WHERE d.broadcast_id = $1 AND {NEEDS_FOLLOWUP}
                 ORDER BY d.user_id LIMIT $2"
            )))
            .bind(id.0)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(broadcast, user, room, event, displayname, shown_revision, attempts, in_retired_dm)| {
                Ok(Followup {
                    broadcast_id: BroadcastId(broadcast),
                    user_id: parse("deliveries.user_id", user)?,
                    room_id: parse("deliveries.room_id", room)?,
                    event_id: parse("deliveries.event_id", event)?,
                    displayname,
                    shown_revision,
                    attempts,
                    in_retired_dm,
                })
            })
            .collect()
    }

    /// Records that a copy's follow-up is `done`; with `error`, it failed for good (shown in
    /// `!bc status`) and is not tried again.
    pub async fn record_followup(
        &self,
        copy: &Followup,
        done: FollowupDone,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.settle_followup(copy, done, error, false).await
    }

    /// Records that a copy's follow-up `done` was not made: its DM was retired.
    pub async fn skip_followup(&self, copy: &Followup, done: FollowupDone) -> Result<(), StoreError> {
        self.settle_followup(copy, done, None, true).await
    }

    async fn settle_followup(
        &self,
        copy: &Followup,
        done: FollowupDone,
        error: Option<&str>,
        skipped: bool,
    ) -> Result<(), StoreError> {
        let (revision, retracted, poll_ended) = match done {
            FollowupDone::Edited { revision } => (Some(revision), None, None),
            FollowupDone::Retracted => (None, Some(1), None),
            FollowupDone::PollEnded => (None, None, Some(1)),
        };
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE deliveries SET shown_revision = COALESCE($1, shown_revision),
                        retracted = COALESCE($2, retracted), poll_ended = COALESCE($3, poll_ended),
                        followup_attempts = 0, followup_error = COALESCE($4, followup_error),
                        followup_skipped = $7
                 WHERE broadcast_id = $5 AND user_id = $6",
            )
            .bind(revision)
            .bind(retracted)
            .bind(poll_ended)
            .bind(error)
            .bind(copy.broadcast_id.0)
            .bind(copy.user_id.as_str())
            .bind(i64::from(skipped))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Counts a failed try of a copy's follow-up; it is tried again on a later round.
    pub async fn retry_followup(&self, copy: &Followup) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE deliveries SET followup_attempts = followup_attempts + 1
                 WHERE broadcast_id = $1 AND user_id = $2",
            )
            .bind(copy.broadcast_id.0)
            .bind(copy.user_id.as_str())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Clears a broadcast's follow-up mark when no copy needs one and none is pending or being
    /// sent (a copy sent with an older revision would need one). True when it was cleared now.
    pub async fn close_followups_if_done(&self, id: BroadcastId) -> Result<bool, StoreError> {
        let changed = on_pool!(self, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE broadcasts SET followups_open = 0
                 WHERE id = $1 AND followups_open = 1
                   AND NOT EXISTS (SELECT 1 FROM deliveries WHERE broadcast_id = $1 AND state IN ('pending', 'sending'))
                   AND NOT EXISTS (SELECT 1 FROM deliveries d JOIN broadcasts b ON b.id = d.broadcast_id
                                   WHERE d.broadcast_id = $1 AND {NEEDS_FOLLOWUP})"
            )))
            .bind(id.0)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// How many delivered copies of a broadcast the last follow-up reached, skipped and failed.
    pub async fn followup_counts(&self, id: BroadcastId) -> Result<FollowupCounts, StoreError> {
        let (done, skipped, failed): (i64, i64, i64) = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT COALESCE(SUM(CASE WHEN followup_error IS NULL AND followup_skipped = 0 THEN 1 ELSE 0 END), 0),
                        COALESCE(SUM(CASE WHEN followup_skipped = 1 THEN 1 ELSE 0 END), 0),
                        COALESCE(SUM(CASE WHEN followup_error IS NULL THEN 0 ELSE 1 END), 0)
                 FROM deliveries WHERE broadcast_id = $1 AND state = 'delivered' AND event_id IS NOT NULL",
            )
            .bind(id.0)
            .fetch_one(pool)
            .await?
        });
        Ok(FollowupCounts { done, skipped, failed })
    }

    /// Up to `limit` copies whose last follow-up failed, with the reason.
    pub async fn failed_followups(
        &self,
        id: BroadcastId,
        limit: i64,
    ) -> Result<Vec<(OwnedUserId, String)>, StoreError> {
        let rows: Vec<(String, String)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id, followup_error FROM deliveries
                 WHERE broadcast_id = $1 AND followup_error IS NOT NULL ORDER BY user_id LIMIT $2",
            )
            .bind(id.0)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(|(user, error)| Ok((parse("deliveries.user_id", user)?, error))).collect()
    }
}
