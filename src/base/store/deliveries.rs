//! The delivery queue: one row per (broadcast, recipient), unique.
//!
//! A worker *claims* a due row (state `sending`, a lease until `claimed_until`), delivers, and
//! records the outcome. A row whose lease ran out (its worker died) can be claimed again; the
//! deterministic transaction ID makes that re-send return the same event. PostgreSQL claims with
//! `FOR UPDATE SKIP LOCKED`, so several processes may share one database; SQLite serialises
//! writers, so its claim is atomic as one statement.

mod queue;

use ruma::{EventId, OwnedUserId, RoomId};

use super::{in_list, json_list, now_ms, parse, BroadcastId, DmRoom, Pool, Store, StoreError};

pub use queue::QueuePosition;

/// Where one delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeliveryState {
    Pending,
    Sending,
    Delivered,
    Failed,
    Skipped,
    Cancelled,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for DeliveryState {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        [Self::Pending, Self::Sending, Self::Delivered, Self::Failed, Self::Skipped, Self::Cancelled]
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or(())
    }
}

/// How many deliveries of a broadcast are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub pending: i64,
    pub sending: i64,
    pub delivered: i64,
    pub failed: i64,
    pub skipped: i64,
    pub cancelled: i64,
}

impl DeliveryCounts {
    /// Every delivery, whatever its state.
    pub fn total(&self) -> i64 {
        self.pending + self.sending + self.delivered + self.failed + self.skipped + self.cancelled
    }

    /// Pending or being sent.
    pub fn unfinished(&self) -> i64 {
        self.pending + self.sending
    }

    fn add(&mut self, state: DeliveryState, count: i64) {
        let slot = match state {
            DeliveryState::Pending => &mut self.pending,
            DeliveryState::Sending => &mut self.sending,
            DeliveryState::Delivered => &mut self.delivered,
            DeliveryState::Failed => &mut self.failed,
            DeliveryState::Skipped => &mut self.skipped,
            DeliveryState::Cancelled => &mut self.cancelled,
        };
        *slot += count;
    }
}

/// What became of one try of a delivery, to be recorded with [`Store::record_outcomes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    state: DeliveryState,
    room: Option<String>,
    event: Option<String>,
    /// Shown in `!bc status` for failed and skipped deliveries.
    reason: Option<String>,
    next_attempt_at: i64,
    /// Whether this try counts against `broadcast.max_attempts`.
    counted: bool,
    /// The revision of the message that was sent.
    revision: i64,
}

impl Outcome {
    fn new(state: DeliveryState, reason: Option<&str>) -> Self {
        let reason = reason.map(str::to_owned);
        Self { state, room: None, event: None, reason, next_attempt_at: 0, counted: true, revision: 0 }
    }

    /// Revision `revision` of the message went out as `event` in `room`.
    pub fn delivered(room: &RoomId, event: &EventId, revision: i64) -> Self {
        Self {
            room: Some(room.to_string()),
            event: Some(event.to_string()),
            revision,
            ..Self::new(DeliveryState::Delivered, None)
        }
    }

    /// Back in the queue, due at `next_attempt_at`; this try counts.
    pub fn retry(next_attempt_at: i64, error: &str) -> Self {
        Self { next_attempt_at, ..Self::new(DeliveryState::Pending, Some(error)) }
    }

    /// Back in the queue without counting this try (the homeserver was down, or another
    /// process is creating the DM), due at `next_attempt_at`.
    pub fn release(next_attempt_at: i64, reason: &str) -> Self {
        Self { next_attempt_at, counted: false, ..Self::new(DeliveryState::Pending, Some(reason)) }
    }

    /// The end: failed or skipped, with the reason shown in `!bc status`.
    pub fn end(state: DeliveryState, reason: &str) -> Self {
        Self::new(state, Some(reason))
    }
}

/// Someone to queue, with their display name as audience resolution saw it: `None` when it
/// was not known, `Some("")` when they have none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub user: OwnedUserId,
    pub displayname: Option<String>,
}

impl Recipient {
    pub fn new(user: OwnedUserId, displayname: Option<String>) -> Self {
        Self { user, displayname: Some(displayname.unwrap_or_default()) }
    }

    /// Someone whose display name was not seen.
    pub fn unnamed(user: OwnedUserId) -> Self {
        Self { user, displayname: None }
    }
}

/// A delivery a worker holds, with what it needs to send it without asking the database again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub broadcast_id: BroadcastId,
    pub user_id: OwnedUserId,
    /// Tries so far, this one included.
    pub attempts: i64,
    /// When the delivery was queued (ms).
    pub queued_at: i64,
    /// When it became due (ms): its place in the queue, with the user ([`QueuePosition`]).
    pub due_at: i64,
    /// As [`Recipient::displayname`].
    pub displayname: Option<String>,
    /// The recipient said `stop` (when the claim was made).
    pub opted_out: bool,
    /// The persona the broadcast is sent as (`--as`), `None` for the bot.
    pub persona: Option<String>,
    /// The recipient's live DM with the sender when the claim was made.
    pub dm: Option<DmRoom>,
}

/// A claimed row: broadcast, recipient, attempts, queued at, display name, the broadcast's
/// persona, due at.
type ClaimRow = (i64, String, i64, i64, Option<String>, Option<String>, i64);

const QUEUE_SQLITE: &str =
    "INSERT INTO deliveries (broadcast_id, user_id, state, updated_at, queued_at, displayname)
     SELECT $1, json_extract(value, '$[0]'), 'pending', $3, $3, json_extract(value, '$[1]') FROM json_each($2)
     WHERE true ON CONFLICT (broadcast_id, user_id) DO NOTHING";

const QUEUE_POSTGRES: &str =
    "INSERT INTO deliveries (broadcast_id, user_id, state, updated_at, queued_at, displayname)
     SELECT $1, v->>0, 'pending', $3, $3, v->>1 FROM jsonb_array_elements(($2::text)::jsonb) v
     ON CONFLICT (broadcast_id, user_id) DO NOTHING";

impl Store {
    /// Queues `users`, whose display names were not seen, for broadcast `id`; a user already
    /// queued is skipped. Returns how many were new.
    pub async fn add_deliveries(&self, id: BroadcastId, users: &[OwnedUserId]) -> Result<u64, StoreError> {
        let recipients: Vec<Recipient> = users.iter().cloned().map(Recipient::unnamed).collect();
        self.add_recipients(id, &recipients).await
    }

    /// Queues `recipients` for broadcast `id` in one statement; someone already queued is
    /// skipped. Returns how many were new.
    pub async fn add_recipients(&self, id: BroadcastId, recipients: &[Recipient]) -> Result<u64, StoreError> {
        if recipients.is_empty() {
            return Ok(0);
        }
        let rows: Vec<serde_json::Value> = recipients
            .iter()
            .map(|recipient| serde_json::json!([recipient.user, recipient.displayname]))
            .collect();
        let rows = serde_json::Value::from(rows).to_string();
        let sql = if self.is_sqlite() { QUEUE_SQLITE } else { QUEUE_POSTGRES };
        let inserted = on_pool!(self, |pool| {
            sqlx::query(sql).bind(id.0).bind(&rows).bind(now_ms()).execute(pool).await?.rows_affected()
        });
        Ok(inserted)
    }

    /// Records `users` into broadcast `id` as failed already, with `reason` (they cannot be
    /// sent to: the homeserver knows no such user). Returns how many were new.
    pub async fn add_failed_deliveries(
        &self,
        id: BroadcastId,
        users: &[OwnedUserId],
        reason: &str,
    ) -> Result<u64, StoreError> {
        let mut inserted = 0;
        for user in users {
            inserted += on_pool!(self, |pool| {
                sqlx::query(
                    "INSERT INTO deliveries (broadcast_id, user_id, state, last_error, updated_at, queued_at)
                     VALUES ($1, $2, 'failed', $3, $4, $4) ON CONFLICT (broadcast_id, user_id) DO NOTHING",
                )
                .bind(id.0)
                .bind(user.as_str())
                .bind(reason)
                .bind(now_ms())
                .execute(pool)
                .await?
                .rows_affected()
            });
        }
        Ok(inserted)
    }

    /// How many deliveries of broadcast `id` are in each state: read from the counts that
    /// triggers keep as deliveries change (`delivery_counts`, migration 0017), so that showing
    /// progress costs the same for 100 recipients as for 100,000.
    pub async fn delivery_counts(&self, id: BroadcastId) -> Result<DeliveryCounts, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT state, n FROM delivery_counts WHERE broadcast_id = $1 AND n <> 0")
                .bind(id.0)
                .fetch_all(pool)
                .await?
        });
        let mut counts = DeliveryCounts::default();
        for (state, count) in rows {
            counts.add(parse("deliveries.state", state)?, count);
        }
        Ok(counts)
    }

    /// How many deliveries of broadcast `id` wait in the queue with `reason` as their last
    /// error (an encrypted DM's recipient without a device to decrypt with).
    pub async fn deliveries_waiting(&self, id: BroadcastId, reason: &str) -> Result<i64, StoreError> {
        let (count,): (i64,) = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT COUNT(*) FROM deliveries WHERE broadcast_id = $1 AND state = 'pending' AND last_error = $2",
            )
            .bind(id.0)
            .bind(reason)
            .fetch_one(pool)
            .await?
        });
        Ok(count)
    }

    /// Up to `limit` recipients of broadcast `id` still to be sent to, in user ID order.
    pub async fn sample_recipients(
        &self,
        id: BroadcastId,
        limit: i64,
    ) -> Result<Vec<OwnedUserId>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT user_id FROM deliveries WHERE broadcast_id = $1 AND state = 'pending' ORDER BY user_id LIMIT $2")
                .bind(id.0)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(|(user,)| parse("deliveries.user_id", user)).collect()
    }

    /// Up to `limit` deliveries of broadcast `id` in `state`, with their recorded reason.
    pub async fn deliveries_with_reason(
        &self,
        id: BroadcastId,
        state: DeliveryState,
        limit: i64,
    ) -> Result<Vec<(OwnedUserId, String)>, StoreError> {
        let rows: Vec<(String, Option<String>)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id, last_error FROM deliveries WHERE broadcast_id = $1 AND state = $2
                 ORDER BY user_id LIMIT $3",
            )
            .bind(id.0)
            .bind(state.as_str())
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(user, reason)| Ok((parse("deliveries.user_id", user)?, reason.unwrap_or_default())))
            .collect()
    }

    /// Forgets every delivery of broadcast `id` (after a dry run).
    pub async fn delete_deliveries(&self, id: BroadcastId) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("DELETE FROM deliveries WHERE broadcast_id = $1").bind(id.0).execute(pool).await?;
        });
        Ok(())
    }

    /// Cancels what is not delivered yet; returns how many deliveries were cancelled.
    pub async fn cancel_deliveries(&self, id: BroadcastId) -> Result<u64, StoreError> {
        let cancelled = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE deliveries SET state = 'cancelled', updated_at = $1
                 WHERE broadcast_id = $2 AND state IN ('pending', 'sending')",
            )
            .bind(now_ms())
            .bind(id.0)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(cancelled)
    }
}
