//! The bot's durable state: SQLite by default, PostgreSQL for scale.
//!
//! All SQL lives here. Every query is written once and compiled for both dialects by
//! [`on_pool!`]; the schema has one migrations directory per dialect (`migrations/sqlite`,
//! `migrations/postgres`). Timestamps are integer Unix milliseconds. The store refuses to run
//! on Synapse's own database.

use std::{str::FromStr, time::Duration};

use sqlx::{
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous},
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
    /// A broadcast's stored JSON (message, audience or options) could not be read.
    #[error("broadcast {broadcast} cannot be read: its {column} is not valid ({reason})")]
    Undecodable { broadcast: BroadcastId, column: &'static str, reason: String },
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

/// One event waiting in the inbox to be dispatched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEvent {
    pub seq: i64,
    /// The event's unique key: its event ID, or the one made for a read receipt.
    pub key: String,
    pub event_json: String,
    /// How many times its handling failed for a reason that may pass.
    pub tries: i64,
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

mod accounts;
mod broadcasts;
mod control_rooms;
mod defaults;
mod deliveries;
mod displaynames;
mod dm_rooms;
mod followups;
mod inbox;
mod languages;
mod polls;
mod replies;

pub use broadcasts::{AudienceOptions, Broadcast, BroadcastState, NewBroadcast, SendOptions};
pub use defaults::{DefaultBroadcast, DefaultScope};
pub use deliveries::{Claim, DeliveryCounts, DeliveryState, Outcome, QueuePosition, Recipient};
pub use dm_rooms::{DmRoom, DmState};
pub use followups::{Followup, FollowupCounts, FollowupDone};
pub use inbox::{Arrival, Lane, RECEIPT_EVENT_TYPE, RECEIPT_KEY_PREFIX};
pub use replies::ReplyThread;

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

/// "Is among the JSON array bound as `$1`" (one text parameter), for the dialect of `store`: one
/// statement for a whole batch, looked up in the column's index (PostgreSQL's planner scans the
/// table for `IN` over a set-returning function, so it gets `= ANY(ARRAY(...))`).
fn in_list(store: &Store) -> &'static str {
    match *store.pool {
        Pool::Sqlite(_) => "IN (SELECT value FROM json_each($1))",
        Pool::Postgres(_) => "= ANY(ARRAY(SELECT jsonb_array_elements_text(($1::text)::jsonb)))",
    }
}

/// A JSON array of strings.
fn json_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    serde_json::Value::from(items.into_iter().collect::<Vec<_>>()).to_string()
}

/// Whether `uri` names a PostgreSQL database (else SQLite).
pub fn is_postgres_uri(uri: &str) -> bool {
    uri.starts_with("postgres://") || uri.starts_with("postgresql://")
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
    /// and applies pending migrations. A new SQLite file is made readable by its owner only
    /// (0600), and so are its `-wal` and `-shm` files, which SQLite gives the database's mode.
    pub async fn connect(uri: &str, max_connections: u32) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open { uri: redact_password(uri), source };
        let pool = if is_postgres_uri(uri) {
            // Every statement is planned with its parameters and the tables as they are now. A
            // plan kept for a prepared statement is made once, when the statement has run a few
            // times, and PostgreSQL makes a new one only when the table's statistics change: with
            // autovacuum off (it analyzes as tables grow), the plans made while the tables were
            // nearly empty scanned `dm_rooms` whole for every claim until the end of a broadcast,
            // which made one of 100,000 recipients take more time than the one before.
            let options = PgConnectOptions::from_str(uri)
                .map_err(open_error)?
                .options([("plan_cache_mode", "force_custom_plan")]);
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(open_error)?;
            Pool::Postgres(pool)
        } else {
            let options = SqliteConnectOptions::from_str(uri).map_err(open_error)?;
            crate::base::files::create_private_file(options.get_filename())
                .map_err(|error| open_error(sqlx::Error::Io(error)))?;
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL, not NORMAL: the HTTP edge acknowledges pushed events once their commit
                // returns, and the homeserver never sends an acknowledged event again; NORMAL
                // in WAL can lose the last commits on power loss. Claims and outcomes are
                // written in batches, so the extra sync costs little per delivery.
                .synchronous(SqliteSynchronous::Full)
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

    /// Whether this is a SQLite store (one process per database).
    pub fn is_sqlite(&self) -> bool {
        matches!(*self.pool, Pool::Sqlite(_))
    }

    /// Whether the database answers (`/health`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?);
        Ok(())
    }

    /// Closes every connection (used at shutdown).
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
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
impl Store {
    /// Runs `sql` as it is: unit tests make a write fail with a trigger.
    pub async fn execute_raw(&self, sql: &str) {
        on_pool!(self, |pool| {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(pool).await.expect("raw SQL");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 24: a new SQLite database and its WAL files are the owner's only (they were 0644).
    #[tokio::test]
    async fn a_new_sqlite_database_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bot.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()), 2).await.unwrap();
        let event = Arrival { key: "$e".into(), json: "{}".into(), lane: Lane::People };
        store.push_inbox(&[event]).await.unwrap();
        for name in ["bot.db", "bot.db-wal", "bot.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
    }

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
