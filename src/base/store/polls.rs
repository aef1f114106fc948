//! Answers to poll broadcasts: the last answer of each recipient, by the time their client gave
//! it, so that an answer changed later replaces the earlier one whatever order they arrive in.

use ruma::{EventId, OwnedUserId, RoomId, UserId};

use super::{parse, BroadcastId, Pool, Store, StoreError};

impl Store {
    /// The broadcast and recipient of the copy `event` in DM `room`, if it is one (found through
    /// the room's few deliveries, `deliveries_by_room`).
    pub async fn copy_of(
        &self,
        room: &RoomId,
        event: &EventId,
    ) -> Result<Option<(BroadcastId, OwnedUserId)>, StoreError> {
        let row: Option<(i64, String)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT broadcast_id, user_id FROM deliveries WHERE event_id = $1 AND room_id = $2",
            )
            .bind(event.as_str())
            .bind(room.as_str())
            .fetch_optional(pool)
            .await?
        });
        row.map(|(id, user)| Ok((BroadcastId(id), parse("deliveries.user_id", user)?))).transpose()
    }

    /// Records `user`'s answer (`choices`, answer IDs) given at `answered_at`, unless a later one
    /// is recorded already.
    pub async fn record_poll_answer(
        &self,
        id: BroadcastId,
        user: &UserId,
        choices: &[String],
        answered_at: i64,
    ) -> Result<(), StoreError> {
        let choices = serde_json::Value::from(choices).to_string();
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO poll_answers (broadcast_id, user_id, choices_json, answered_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (broadcast_id, user_id) DO UPDATE
                 SET choices_json = excluded.choices_json, answered_at = excluded.answered_at
                 WHERE excluded.answered_at >= poll_answers.answered_at",
            )
            .bind(id.0)
            .bind(user.as_str())
            .bind(&choices)
            .bind(answered_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Every recipient's last answer to poll broadcast `id`, as lists of answer IDs.
    pub async fn poll_answers(&self, id: BroadcastId) -> Result<Vec<Vec<String>>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT choices_json FROM poll_answers WHERE broadcast_id = $1")
                .bind(id.0)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().filter_map(|(json,)| serde_json::from_str(&json).ok()).collect())
    }
}
