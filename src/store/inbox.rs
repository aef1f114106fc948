//! The inbox: events pushed by the homeserver, kept until dispatched.

use ruma::OwnedEventId;

use super::{now_ms, InboxEvent, Pool, Store, StoreError};

impl Store {
    /// Persists pushed events; an event already in the inbox is ignored. Returns how many were new.
    pub async fn push_inbox(&self, events: &[(OwnedEventId, String)]) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut inserted = 0;
        on_pool!(self, |pool| {
            let mut transaction = pool.begin().await?;
            for (event_id, json) in events {
                inserted += sqlx::query(
                    "INSERT INTO inbox (event_id, event_json, received_at) VALUES ($1, $2, $3)
                     ON CONFLICT (event_id) DO NOTHING",
                )
                .bind(event_id.as_str())
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

    /// Removes a dispatched event from the inbox.
    pub async fn remove_inbox(&self, seq: i64) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("DELETE FROM inbox WHERE seq = $1").bind(seq).execute(pool).await?;
        });
        Ok(())
    }
}
