//! The delivery queue: one row per (broadcast, recipient), unique.
//!
//! A worker *claims* a due row (state `sending`, a lease until `claimed_until`), delivers, and
//! records the outcome. A row whose lease ran out (its worker died) can be claimed again; the
//! deterministic transaction ID makes that re-send return the same event. PostgreSQL claims with
//! `FOR UPDATE SKIP LOCKED`, so several processes may share one database; SQLite serialises
//! writers, so its claim is atomic as one statement.

use ruma::{EventId, OwnedUserId, RoomId};

use super::{now_ms, parse, BroadcastId, Pool, Store, StoreError};

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

/// What became of one try of a delivery.
struct Outcome<'a> {
    state: DeliveryState,
    room: Option<&'a RoomId>,
    event: Option<&'a EventId>,
    /// Shown in `!bc status` for failed and skipped deliveries.
    reason: Option<&'a str>,
    next_attempt_at: i64,
    /// Whether this try counts against `broadcast.max_attempts`.
    counted: bool,
}

impl Outcome<'_> {
    fn new(state: DeliveryState) -> Self {
        Self { state, room: None, event: None, reason: None, next_attempt_at: 0, counted: true }
    }
}

/// A delivery a worker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub broadcast_id: BroadcastId,
    pub user_id: OwnedUserId,
    /// Tries so far, this one included.
    pub attempts: i64,
    /// When the delivery was queued (ms).
    pub queued_at: i64,
}

/// The claim, with the row lock that PostgreSQL needs (SQLite has one writer at a time).
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE deliveries SET state = 'sending', claimed_until = $1, attempts = attempts + 1, updated_at = $2
             WHERE (broadcast_id, user_id) IN (
                 SELECT d.broadcast_id, d.user_id FROM deliveries d JOIN broadcasts b ON b.id = d.broadcast_id
                 WHERE b.state = 'running'
                   AND ((d.state = 'pending' AND d.next_attempt_at <= $2)
                        OR (d.state = 'sending' AND d.claimed_until < $2))
                 ORDER BY d.broadcast_id, d.next_attempt_at LIMIT 1",
            $lock,
            ") RETURNING broadcast_id, user_id, attempts, queued_at"
        )
    };
}
const CLAIM_SQLITE: &str = claim_sql!("");
const CLAIM_POSTGRES: &str = claim_sql!(" FOR UPDATE OF d SKIP LOCKED");

impl Store {
    /// Queues `users` for broadcast `id` in one transaction; a user already queued is skipped.
    /// Returns how many were new.
    pub async fn add_deliveries(&self, id: BroadcastId, users: &[OwnedUserId]) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut inserted = 0;
        on_pool!(self, |pool| {
            let mut transaction = pool.begin().await?;
            for user in users {
                inserted += sqlx::query(
                    "INSERT INTO deliveries (broadcast_id, user_id, state, updated_at, queued_at)
                     VALUES ($1, $2, 'pending', $3, $3)
                     ON CONFLICT (broadcast_id, user_id) DO NOTHING",
                )
                .bind(id.0)
                .bind(user.as_str())
                .bind(now)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
            }
            transaction.commit().await?;
        });
        Ok(inserted)
    }

    /// How many deliveries of broadcast `id` are in each state.
    pub async fn delivery_counts(&self, id: BroadcastId) -> Result<DeliveryCounts, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT state, COUNT(*) FROM deliveries WHERE broadcast_id = $1 GROUP BY state")
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

    /// Claims the next due delivery of a running broadcast for `lease_ms`, if there is one.
    pub async fn claim_delivery(&self, lease_ms: i64) -> Result<Option<Claim>, StoreError> {
        let now = now_ms();
        let sql = if self.is_sqlite() { CLAIM_SQLITE } else { CLAIM_POSTGRES };
        let row: Option<(i64, String, i64, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(sql).bind(now + lease_ms).bind(now).fetch_optional(pool).await?
        });
        row.map(|(broadcast, user, attempts, queued_at)| {
            Ok(Claim {
                broadcast_id: BroadcastId(broadcast),
                user_id: parse("deliveries.user_id", user)?,
                attempts,
                queued_at,
            })
        })
        .transpose()
    }

    /// When the next pending delivery of a running broadcast becomes due, if any is waiting.
    pub async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        let (due,): (Option<i64>,) = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT MIN(d.next_attempt_at) FROM deliveries d JOIN broadcasts b ON b.id = d.broadcast_id
                 WHERE b.state = 'running' AND d.state = 'pending'",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(due)
    }

    /// Makes every claimed delivery claimable at once: at start-up of a process that is the only
    /// one using the database (SQLite), whatever was `sending` belonged to a process that died.
    pub async fn release_claims(&self) -> Result<u64, StoreError> {
        let released = on_pool!(self, |pool| {
            sqlx::query("UPDATE deliveries SET claimed_until = 0 WHERE state = 'sending'")
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(released)
    }

    /// Records a delivered message.
    pub async fn mark_delivered(
        &self,
        claim: &Claim,
        room: &RoomId,
        event: &EventId,
    ) -> Result<(), StoreError> {
        let outcome =
            Outcome { room: Some(room), event: Some(event), ..Outcome::new(DeliveryState::Delivered) };
        self.record(claim, outcome).await
    }

    /// Puts a delivery back in the queue, due at `next_attempt_at`; this try counts.
    pub async fn retry_delivery(
        &self,
        claim: &Claim,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let outcome =
            Outcome { reason: Some(error), next_attempt_at, ..Outcome::new(DeliveryState::Pending) };
        self.record(claim, outcome).await
    }

    /// Puts a delivery back in the queue without counting this try (the homeserver was down, or
    /// another process is creating the DM), due at `next_attempt_at`.
    pub async fn release_delivery(
        &self,
        claim: &Claim,
        next_attempt_at: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let outcome = Outcome {
            reason: Some(reason),
            next_attempt_at,
            counted: false,
            ..Outcome::new(DeliveryState::Pending)
        };
        self.record(claim, outcome).await
    }

    /// Ends a delivery as failed or skipped, with the reason shown in `!bc status`.
    pub async fn end_delivery(
        &self,
        claim: &Claim,
        state: DeliveryState,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.record(claim, Outcome { reason: Some(reason), ..Outcome::new(state) }).await
    }

    /// Records the outcome of `claim`, only while the row is still that claim's (being sent, with
    /// the claim's attempt): a worker whose lease ran out, or whose delivery was cancelled
    /// meanwhile, changes nothing and is told so in the log.
    async fn record(&self, claim: &Claim, outcome: Outcome<'_>) -> Result<(), StoreError> {
        let recorded = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE deliveries SET state = $1, room_id = COALESCE($2, room_id), event_id = COALESCE($3, event_id),
                        last_error = $4, next_attempt_at = $5, claimed_until = 0, updated_at = $6, attempts = $7
                 WHERE broadcast_id = $8 AND user_id = $9 AND state = 'sending' AND attempts = $10",
            )
            .bind(outcome.state.as_str())
            .bind(outcome.room.map(|room| room.as_str()))
            .bind(outcome.event.map(|event| event.as_str()))
            .bind(outcome.reason)
            .bind(outcome.next_attempt_at)
            .bind(now_ms())
            .bind(if outcome.counted { claim.attempts } else { claim.attempts - 1 })
            .bind(claim.broadcast_id.0)
            .bind(claim.user_id.as_str())
            .bind(claim.attempts)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if recorded == 0 {
            tracing::warn!(broadcast = %claim.broadcast_id, user = %claim.user_id, outcome = outcome.state.as_str(),
                "a delivery's outcome was not recorded: it was claimed again or cancelled meanwhile");
        }
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
