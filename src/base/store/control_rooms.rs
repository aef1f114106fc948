//! Control rooms: where commands are answered and replies arrive.

use ruma::{OwnedRoomId, RoomId, UserId};

use super::{now_ms, parse, Pool, Store, StoreError};

impl Store {
    /// Records `room` as a control room (again: no-op).
    pub async fn add_control_room(&self, room: &RoomId, added_by: &UserId) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO control_rooms (room_id, added_by, added_at) VALUES ($1, $2, $3)
                 ON CONFLICT (room_id) DO NOTHING",
            )
            .bind(room.as_str())
            .bind(added_by.as_str())
            .bind(now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Forgets a control room (the bot left or was kicked).
    pub async fn remove_control_room(&self, room: &RoomId) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("DELETE FROM control_rooms WHERE room_id = $1")
                .bind(room.as_str())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Whether `room` is a recorded control room.
    pub async fn is_control_room(&self, room: &RoomId) -> Result<bool, StoreError> {
        let found: Option<(String,)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT room_id FROM control_rooms WHERE room_id = $1")
                .bind(room.as_str())
                .fetch_optional(pool)
                .await?
        });
        Ok(found.is_some())
    }

    /// Whether `room` was told that replies from encrypted DMs are not relayed into it.
    pub async fn told_plain(&self, room: &RoomId) -> Result<bool, StoreError> {
        let told: Option<(i64,)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT told_plain FROM control_rooms WHERE room_id = $1")
                .bind(room.as_str())
                .fetch_optional(pool)
                .await?
        });
        Ok(told.is_some_and(|(told,)| told != 0))
    }

    /// Records that `room` was told so.
    pub async fn mark_told_plain(&self, room: &RoomId) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE control_rooms SET told_plain = 1 WHERE room_id = $1")
                .bind(room.as_str())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Every recorded control room.
    pub async fn control_rooms(&self) -> Result<Vec<OwnedRoomId>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT room_id FROM control_rooms ORDER BY added_at, room_id")
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(|(room,)| parse("control_rooms.room_id", room)).collect()
    }
}
