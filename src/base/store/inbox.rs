//! The inbox: events pushed by the homeserver, kept until handled.
//!
//! An event leaves the inbox once its handling succeeded or failed for a reason that trying again
//! cannot change; its key is then kept a week in `handled_events`, so that a transaction Synapse
//! pushes again is not handled twice. A failure that may pass keeps the event, tried again later.
//!
//! Each row has a unique key: the event ID of a timeline event, or, for a read receipt (an
//! ephemeral event without an ID), one made from its room, reader and the event read. Receipts
//! are stored as `{"type": RECEIPT_EVENT_TYPE, "room_id", "sender"}`.

use super::{now_ms, InboxEvent, Pool, Store, StoreError};

/// The `type` of a read receipt in the inbox (never the type of a timeline event).
pub const RECEIPT_EVENT_TYPE: &str = "org.matrix_broadcast.read_receipt";
/// How the inbox key of a read receipt starts (an event ID never does).
pub const RECEIPT_KEY_PREFIX: &str = "receipt|";

/// Which events are read first. A broadcast brings in an event for every new DM (the
/// recipient's join) and read receipts by the thousand; what people wait for must not queue
/// behind them. Events of one lane are read in the order they came; the two lanes' events of one
/// room may be handled out of order (a reply before its writer's join was recorded). No handler
/// of people's events relies on a membership the other lane records: a reply is relayed whatever
/// the stored membership, and an answer asks the homeserver who is in the DM before it goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Commands, replies, answers, the bot's invites: someone waits.
    People,
    /// Memberships of other users, read receipts: nobody waits.
    Bulk,
}

/// An event as the homeserver pushed it, to be kept in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// The event ID, or for a read receipt the key made from it (see [`RECEIPT_KEY_PREFIX`]).
    pub key: String,
    pub json: String,
    pub lane: Lane,
}

impl Store {
    /// Persists pushed events as (unique key, JSON); an event already in the inbox, or already
    /// handled, is ignored. Returns how many were new.
    pub async fn push_inbox(&self, events: &[Arrival]) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut inserted = 0;
        on_pool!(self, |pool| {
            let mut transaction = pool.begin().await?;
            for Arrival { key, json, lane } in events {
                let lane = match lane {
                    Lane::People => 0_i16,
                    Lane::Bulk => 1,
                };
                inserted += sqlx::query(
                    "INSERT INTO inbox (event_id, event_json, received_at, lane)
                     SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM handled_events WHERE event_id = $1)
                     ON CONFLICT (event_id) DO NOTHING",
                )
                .bind(key)
                .bind(json)
                .bind(now)
                .bind(lane)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
            }
            transaction.commit().await?;
        });
        Ok(inserted)
    }

    /// The `limit` events to handle next (none that waits for a later try): those of
    /// [`Lane::People`] first, each lane oldest first.
    pub async fn inbox_batch(&self, limit: i64) -> Result<Vec<InboxEvent>, StoreError> {
        let rows: Vec<(i64, String, String, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT seq, event_id, event_json, tries FROM inbox WHERE not_before <= $1
                 ORDER BY lane, seq LIMIT $2",
            )
            .bind(now_ms())
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(seq, key, event_json, tries)| InboxEvent { seq, key, event_json, tries })
            .collect())
    }

    /// When the next event that waits for a later try is due, if one waits.
    pub async fn inbox_next_due(&self) -> Result<Option<i64>, StoreError> {
        let (next,): (Option<i64>,) = on_pool!(self, |pool| {
            sqlx::query_as("SELECT MIN(not_before) FROM inbox").fetch_one(pool).await?
        });
        Ok(next)
    }

    /// Events are handled (or cannot ever be): they leave the inbox, and their keys are kept so
    /// that the same events pushed again are ignored. One commit for them all.
    pub async fn inbox_handled(&self, events: &[InboxEvent]) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            let mut transaction = pool.begin().await?;
            for event in events {
                sqlx::query("DELETE FROM inbox WHERE seq = $1")
                    .bind(event.seq)
                    .execute(&mut *transaction)
                    .await?;
                sqlx::query(
                    "INSERT INTO handled_events (event_id, handled_at) VALUES ($1, $2)
                     ON CONFLICT (event_id) DO NOTHING",
                )
                .bind(&event.key)
                .bind(now_ms())
                .execute(&mut *transaction)
                .await?;
            }
            transaction.commit().await?;
        });
        Ok(())
    }

    /// An event stays in the inbox, read again at `not_before` (Unix ms) and not before; `tries`
    /// is how many times its handling has failed so far.
    pub async fn inbox_later(
        &self,
        event: &InboxEvent,
        tries: i64,
        not_before: i64,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE inbox SET tries = $1, not_before = $2 WHERE seq = $3")
                .bind(tries)
                .bind(not_before)
                .bind(event.seq)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Forgets the keys of events handled before `before` (Unix ms).
    pub async fn prune_handled(&self, before: i64) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query("DELETE FROM handled_events WHERE handled_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Keeps an encrypted event whose room key has not arrived, to be decrypted later.
    pub async fn park_undecrypted(&self, event_id: &str, json: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO undecrypted (event_id, event_json, received_at) VALUES ($1, $2, $3)
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(event_id)
            .bind(json)
            .bind(now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The oldest `limit` parked encrypted events: (event ID, JSON, when parked).
    pub async fn undecrypted(&self, limit: i64) -> Result<Vec<(String, String, i64)>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT event_id, event_json, received_at FROM undecrypted ORDER BY received_at LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Forgets a parked encrypted event (decrypted and handled, or given up).
    pub async fn forget_undecrypted(&self, event_id: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("DELETE FROM undecrypted WHERE event_id = $1").bind(event_id).execute(pool).await?;
        });
        Ok(())
    }
}
