//! Default broadcasts: which broadcasts new people of a room (or of the server) still get.

use ruma::{OwnedRoomId, RoomId};

use super::{now_ms, parse, BroadcastId, Pool, Store, StoreError};

/// The `bot_state` key of the new-user poll's high-water mark (account creation, ms).
const NEW_USERS_SINCE: &str = "new_users_since";

/// Where a default broadcast applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultScope {
    /// Everyone who joins this room or space.
    Room(OwnedRoomId),
    /// Every new account of the homeserver (stored as `server`).
    Server,
}

impl DefaultScope {
    /// As stored in `defaults.scope`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Room(room) => room.as_str(),
            Self::Server => "server",
        }
    }
}

impl std::fmt::Display for DefaultScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DefaultScope {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "server" => Ok(Self::Server),
            room => RoomId::parse(room).map(Self::Room).map_err(|_| ()),
        }
    }
}

/// A default broadcast and where it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultBroadcast {
    pub broadcast_id: BroadcastId,
    pub scope: DefaultScope,
    pub active: bool,
}

impl Store {
    /// Makes broadcast `id` a default for `scope`.
    pub async fn add_default(&self, id: BroadcastId, scope: &DefaultScope) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO defaults (broadcast_id, scope, active, created_at) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (broadcast_id, scope) DO NOTHING",
            )
            .bind(id.0)
            .bind(scope.as_str())
            .bind(now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The active defaults for `scope`.
    pub async fn defaults_for(&self, scope: &DefaultScope) -> Result<Vec<BroadcastId>, StoreError> {
        let rows: Vec<(i64,)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT broadcast_id FROM defaults WHERE scope = $1 AND active = 1 ORDER BY broadcast_id",
            )
            .bind(scope.as_str())
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
        rows.into_iter()
            .map(|(id, scope, active)| {
                Ok(DefaultBroadcast {
                    broadcast_id: BroadcastId(id),
                    scope: parse("defaults.scope", scope)?,
                    active: active != 0,
                })
            })
            .collect()
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

    /// Starts the new-user poll's mark (account creation time, ms) at now, unless it is later
    /// already: accounts made before a `server` default was made do not get it. Synapse keeps
    /// creation times in whole seconds, so the mark starts at the start of this second: an
    /// account of that second made before the default was in its audience already, and the
    /// queue's unique pair keeps it from a second copy.
    pub async fn start_new_user_mark(&self) -> Result<(), StoreError> {
        let since = self.new_user_mark().await?.max(now_ms() / 1000 * 1000);
        self.set_new_user_mark(since).await
    }

    /// The creation time of the newest account the new-user poll has seen (0 before the first).
    pub async fn new_user_mark(&self) -> Result<i64, StoreError> {
        let row: Option<(i64,)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT value FROM bot_state WHERE key = $1")
                .bind(NEW_USERS_SINCE)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(value,)| value).unwrap_or(0))
    }

    /// True the first time it is asked for `key`, false ever after (a one-time notice).
    pub async fn first_time(&self, key: &str) -> Result<bool, StoreError> {
        let inserted = on_pool!(self, |pool| {
            sqlx::query("INSERT INTO bot_state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(now_ms())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Moves the new-user poll's mark.
    pub async fn set_new_user_mark(&self, value: i64) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO bot_state (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(NEW_USERS_SINCE)
            .bind(value)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
