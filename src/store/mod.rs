//! The bot's durable state: SQLite by default, PostgreSQL for scale.
//!
//! All SQL lives here. Every query is written once and compiled for both dialects by
//! [`on_pool!`]; the schema has one migrations directory per dialect (`migrations/sqlite`,
//! `migrations/postgres`). Timestamps are integer Unix milliseconds. The store refuses to run
//! on Synapse's own database.

use std::{collections::BTreeMap, str::FromStr, time::Duration};

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use sqlx::{
    postgres::{PgPool, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions},
};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Tables that only Synapse's database has; finding one means `database.uri` points at Synapse.
const SYNAPSE_TABLES: [&str; 3] = ["event_json", "room_memberships", "application_services_state"];

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached.
    #[error("cannot open database {uri}: {source}")]
    Open { uri: String, source: sqlx::Error },
    /// `database.uri` points at Synapse's database.
    #[error(
        "database.uri points at Synapse's own database (it has the table {table}): give matrix-broadcast a database of its own"
    )]
    SynapseDatabase { table: String },
    /// A schema migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A stored value could not be decoded (e.g. a malformed ID written by hand).
    #[error("corrupt value in column {column}: {value:?}")]
    Corrupt { column: &'static str, value: String },
    /// Any other database error.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The short number of a broadcast, shown as `#12`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BroadcastId(pub i64);

impl std::fmt::Display for BroadcastId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A broadcast as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    pub id: BroadcastId,
    pub name: String,
    pub control_room_id: OwnedRoomId,
    pub created_by: OwnedUserId,
    /// The message content as JSON, exactly as it will be sent.
    pub content_json: String,
    pub state: String,
    pub created_at: i64,
}

/// What is needed to create a broadcast.
#[derive(Debug, Clone)]
pub struct NewBroadcast<'a> {
    pub name: &'a str,
    pub control_room_id: &'a RoomId,
    pub created_by: &'a UserId,
    pub content_json: &'a str,
    pub state: &'a str,
}

/// One event waiting in the inbox to be dispatched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEvent {
    pub seq: i64,
    pub event_json: String,
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same expression against whichever pool the store has; the body is compiled once per
/// dialect, so one query text serves both (both accept `$1` placeholders).
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &*$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// The handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: std::sync::Arc<Pool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match *self.pool {
            Pool::Sqlite(_) => "Store(sqlite)",
            Pool::Postgres(_) => "Store(postgres)",
        })
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default()
}

fn parse<T: FromStr>(column: &'static str, value: String) -> Result<T, StoreError> {
    value.parse().map_err(|_| StoreError::Corrupt { column, value })
}

impl Store {
    /// Opens (SQLite: creates when missing) the database at `uri`, refuses Synapse's database
    /// and applies pending migrations.
    pub async fn connect(uri: &str, max_connections: u32) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open { uri: redact_password(uri), source };
        let pool = if uri.starts_with("postgres://") || uri.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect(uri)
                .await
                .map_err(open_error)?;
            Pool::Postgres(pool)
        } else {
            let options = SqliteConnectOptions::from_str(uri)
                .map_err(open_error)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .connect_with(options)
                .await
                .map_err(open_error)?;
            Pool::Sqlite(pool)
        };
        let store = Self { pool: std::sync::Arc::new(pool) };
        store.refuse_synapse_database().await?;
        match &*store.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(store)
    }

    async fn refuse_synapse_database(&self) -> Result<(), StoreError> {
        let tables: Vec<(String,)> = match &*self.pool {
            Pool::Sqlite(pool) => {
                sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table'").fetch_all(pool).await?
            }
            Pool::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
                )
                .fetch_all(pool)
                .await?
            }
        };
        match tables.into_iter().find(|(name,)| SYNAPSE_TABLES.contains(&name.as_str())) {
            Some((table,)) => Err(StoreError::SynapseDatabase { table }),
            None => Ok(()),
        }
    }

    /// Closes every connection (used at shutdown).
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }

    // ----- inbox -----

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

    // ----- control rooms -----

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

    /// Every recorded control room.
    pub async fn control_rooms(&self) -> Result<Vec<OwnedRoomId>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT room_id FROM control_rooms ORDER BY added_at, room_id")
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(|(room,)| parse("control_rooms.room_id", room)).collect()
    }

    // ----- broadcasts and deliveries -----

    /// Creates a broadcast and returns its new id.
    pub async fn create_broadcast(&self, new: NewBroadcast<'_>) -> Result<BroadcastId, StoreError> {
        let (id,): (i64,) = on_pool!(self, |pool| {
            sqlx::query_as(
                "INSERT INTO broadcasts (name, control_room_id, created_by, content_json, state, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(new.name)
            .bind(new.control_room_id.as_str())
            .bind(new.created_by.as_str())
            .bind(new.content_json)
            .bind(new.state)
            .bind(now_ms())
            .fetch_one(pool)
            .await?
        });
        Ok(BroadcastId(id))
    }

    /// One broadcast, or [`StoreError::NotFound`].
    pub async fn broadcast(&self, id: BroadcastId) -> Result<Broadcast, StoreError> {
        type Row = (i64, String, String, String, String, String, i64);
        let row: Option<Row> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, name, control_room_id, created_by, content_json, state, created_at
                 FROM broadcasts WHERE id = $1",
            )
            .bind(id.0)
            .fetch_optional(pool)
            .await?
        });
        let (id, name, room, creator, content_json, state, created_at) = row.ok_or(StoreError::NotFound)?;
        Ok(Broadcast {
            id: BroadcastId(id),
            name,
            control_room_id: parse("broadcasts.control_room_id", room)?,
            created_by: parse("broadcasts.created_by", creator)?,
            content_json,
            state,
            created_at,
        })
    }

    /// Queues `users` for broadcast `id` in one transaction; a user already queued is skipped.
    /// Returns how many were new.
    pub async fn add_deliveries(&self, id: BroadcastId, users: &[OwnedUserId]) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut inserted = 0;
        on_pool!(self, |pool| {
            let mut transaction = pool.begin().await?;
            for user in users {
                inserted += sqlx::query(
                    "INSERT INTO deliveries (broadcast_id, user_id, state, updated_at) VALUES ($1, $2, 'pending', $3)
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
    pub async fn delivery_counts(&self, id: BroadcastId) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT state, COUNT(*) FROM deliveries WHERE broadcast_id = $1 GROUP BY state")
                .bind(id.0)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().collect())
    }

    // ----- DM rooms -----

    /// The stored DM room of `user`, if any.
    pub async fn dm_room(&self, user: &UserId) -> Result<Option<OwnedRoomId>, StoreError> {
        let row: Option<(String,)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT room_id FROM dm_rooms WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_optional(pool)
                .await?
        });
        row.map(|(room,)| parse("dm_rooms.room_id", room)).transpose()
    }

    /// Records (or replaces) the DM room of `user`.
    pub async fn set_dm_room(&self, user: &UserId, room: &RoomId) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO dm_rooms (user_id, room_id, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id) DO UPDATE SET room_id = excluded.room_id, created_at = excluded.created_at",
            )
            .bind(user.as_str())
            .bind(room.as_str())
            .bind(now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}

/// The URI with any password replaced, for error messages and logs.
fn redact_password(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact_password("postgres://bc:secret@db/bc"), "postgres://bc:***@db/bc");
        assert_eq!(redact_password("sqlite://bc.db"), "sqlite://bc.db");
    }

    #[test]
    fn broadcast_ids_display_with_a_hash() {
        assert_eq!(BroadcastId(12).to_string(), "#12");
    }
}
