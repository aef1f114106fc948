//! Default broadcasts: which broadcasts new people of a room (or of the server) still get.

use ruma::{OwnedRoomId, RoomId};

use super::{now_ms, parse, BroadcastId, Pool, Store, StoreError};

/// The scope of a default for new accounts of the homeserver.
pub const SERVER_SCOPE: &str = "server";

/// A default broadcast and where it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultBroadcast {
    pub broadcast_id: BroadcastId,
    /// A room ID, or [`SERVER_SCOPE`].
    pub scope: String,
    pub active: bool,
}

impl Store {
    /// Makes broadcast `id` a default for `scope` (a room ID or [`SERVER_SCOPE`]).
    pub async fn add_default(&self, id: BroadcastId, scope: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO defaults (broadcast_id, scope, active, created_at) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (broadcast_id, scope) DO NOTHING",
            )
            .bind(id.0)
            .bind(scope)
            .bind(now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The active defaults for `scope`.
    pub async fn defaults_for(&self, scope: &str) -> Result<Vec<BroadcastId>, StoreError> {
        let rows: Vec<(i64,)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT broadcast_id FROM defaults WHERE scope = $1 AND active = 1 ORDER BY broadcast_id",
            )
            .bind(scope)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(id,)| BroadcastId(id)).collect())
    }

    /// Every default, active or not, oldest broadcast first.
    pub async fn all_defaults(&self) -> Result<Vec<DefaultBroadcast>, StoreError> {
        let rows: Vec<(i64, String, i64)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT broadcast_id, scope, active FROM defaults ORDER BY broadcast_id, scope")
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, scope, active)| DefaultBroadcast {
                broadcast_id: BroadcastId(id),
                scope,
                active: active != 0,
            })
            .collect())
    }

    /// The rooms that have an active default.
    pub async fn default_rooms(&self) -> Result<Vec<(BroadcastId, OwnedRoomId)>, StoreError> {
        let rows: Vec<(i64, String)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT broadcast_id, scope FROM defaults WHERE active = 1 AND scope <> 'server'")
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(|(id, room)| Ok((BroadcastId(id), parse("defaults.scope", room)?))).collect()
    }

    /// Turns every scope of default `id` on or off; false when `id` is no default.
    pub async fn set_default_active(&self, id: BroadcastId, active: bool) -> Result<bool, StoreError> {
        let changed = on_pool!(self, |pool| {
            sqlx::query("UPDATE defaults SET active = $1 WHERE broadcast_id = $2")
                .bind(i64::from(active))
                .bind(id.0)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(changed > 0)
    }

    /// Whether `room` has an active default.
    pub async fn has_default(&self, room: &RoomId) -> Result<bool, StoreError> {
        Ok(!self.defaults_for(room.as_str()).await?.is_empty())
    }

    /// A named value the bot keeps, if set.
    pub async fn state_value(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT value FROM bot_state WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(value,)| value))
    }

    /// Sets a named value the bot keeps.
    pub async fn set_state_value(&self, key: &str, value: i64) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO bot_state (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
