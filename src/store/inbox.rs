//! The inbox: events pushed by the homeserver, kept until dispatched.
//!
//! Each row has a unique key: the event ID of a timeline event, or, for a read receipt (an
//! ephemeral event without an ID), one made from its room, reader and the event read. Receipts
//! are stored as `{"type": RECEIPT_EVENT_TYPE, "room_id", "sender"}`.

use super::{now_ms, InboxEvent, Pool, Store, StoreError};

/// The `type` of a read receipt in the inbox (never the type of a timeline event).
pub const RECEIPT_EVENT_TYPE: &str = "org.matrix_broadcast.read_receipt";

impl Store {
    /// Persists pushed events as (unique key, JSON); an event already in the inbox is ignored.
    /// Returns how many were new.
    pub async fn push_inbox(&self, events: &[(String, String)]) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut inserted = 0;
        on_pool!(self, |pool| {
            let mut transaction = pool.begin().await?;
            for (key, json) in events {
                inserted += sqlx::query(
                    "INSERT INTO inbox (event_id, event_json, received_at) VALUES ($1, $2, $3)
                     ON CONFLICT (event_id) DO NOTHING",
                )
                .bind(key)
                .bind(json)
                .bind(now)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
            }
            transaction.commit().await?;
        });
        Ok(inserted)
    }

    /// The oldest `limit` events waiting to be dispatched, oldest first.
    pub async fn inbox_batch(&self, limit: i64) -> Result<Vec<InboxEvent>, StoreError> {
        let rows: Vec<(i64, String)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT seq, event_json FROM inbox ORDER BY seq LIMIT $1")
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(seq, event_json)| InboxEvent { seq, event_json }).collect())
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

    /// Removes dispatched events from the inbox, in one statement.
    pub async fn remove_inbox(&self, seqs: &[i64]) -> Result<(), StoreError> {
        match &*self.pool {
            Pool::Sqlite(pool) => {
                let list = serde_json::Value::from(seqs.to_vec()).to_string();
                sqlx::query("DELETE FROM inbox WHERE seq IN (SELECT value FROM json_each($1))")
                    .bind(list)
                    .execute(pool)
                    .await?;
            }
            Pool::Postgres(pool) => {
                sqlx::query("DELETE FROM inbox WHERE seq = ANY($1)")
                    .bind(seqs.to_vec())
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }
}
