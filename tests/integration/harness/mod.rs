//! What the integration tests stand on: a real Synapse, the bot running in-process on a port of
//! its own, and Matrix users driven through the plain client-server API, as Element would.
//! Waiting is always "until a condition holds or a deadline passes", never a fixed sleep.
//!
//! The bot's database is a SQLite file per test, or with `MATRIX_BROADCAST_TEST_BACKEND=postgres`
//! a fresh schema per test in the PostgreSQL database named by `MATRIX_BROADCAST_TEST_POSTGRES`
//! (`scripts/test` creates and drops one).

pub mod binary;
pub mod census;
pub mod client;
pub mod e2ee;
pub mod privacy;
pub mod scenario;
pub mod synapse;
pub mod transactions;

use std::{future::Future, path::Path, str::FromStr, time::Duration};

use matrix_broadcast::base::config::Config;
use rand::{distributions::Alphanumeric, Rng};
use sqlx::Connection;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub use client::TestUser;
pub use synapse::{Synapse, SERVER_NAME};

/// How long a test waits for something a person would expect within seconds.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

pub fn random_secret() -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect()
}

/// The database the bot runs on in the tests that start it (not the `store` tests, which run on
/// both): `MATRIX_BROADCAST_TEST_BACKEND` is `sqlite` (the default) or `postgres`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    match std::env::var("MATRIX_BROADCAST_TEST_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
        Ok("postgres") => Backend::Postgres,
        Ok(other) => {
            panic!("MATRIX_BROADCAST_TEST_BACKEND is {other:?}: use sqlite (the default) or postgres")
        }
    }
}

/// The throwaway PostgreSQL database named by `MATRIX_BROADCAST_TEST_POSTGRES`.
pub fn postgres_uri() -> String {
    std::env::var("MATRIX_BROADCAST_TEST_POSTGRES").expect(
        "MATRIX_BROADCAST_TEST_POSTGRES names a throwaway PostgreSQL database (scripts/test creates one)",
    )
}

/// Creates a fresh, empty schema `t_<random>` in the test database and returns the URI that
/// opens it (its `search_path`), so that tests do not see each other's rows. Blocking, on a
/// runtime of its own: callable from [`bot_config`] and from inside a test's runtime alike.
pub fn postgres_schema_uri() -> String {
    let uri = postgres_uri();
    let schema = format!("t_{}", random_secret().to_lowercase());
    let create = {
        let (uri, schema) = (uri.clone(), schema.clone());
        move || -> Result<(), sqlx::Error> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut connection = sqlx::PgConnection::connect(&uri).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&mut connection)
                    .await?;
                connection.close().await
            })
        }
    };
    match std::thread::spawn(create).join().expect("the thread creating the schema") {
        Ok(()) => {}
        Err(error) => panic!("cannot create schema {schema} in {uri}: {error}"),
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}options=-csearch_path%3D{schema}")
}

/// What `sql` (a `SELECT COUNT(*) …`) counts in the database at `database_uri`, SQLite or
/// PostgreSQL; `None` while the database or its tables do not exist yet.
pub async fn count_rows(database_uri: &str, sql: &'static str) -> Option<i64> {
    let count: Result<(i64,), sqlx::Error> = if database_uri.starts_with("postgres") {
        let mut connection = sqlx::PgConnection::connect(database_uri).await.ok()?;
        let count = sqlx::query_as(sql).fetch_one(&mut connection).await;
        let _ = connection.close().await;
        count
    } else {
        // Never creates the file: the bot does that.
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(database_uri).ok()?;
        let mut connection = sqlx::SqliteConnection::connect_with(&options).await.ok()?;
        let count = sqlx::query_as(sql).fetch_one(&mut connection).await;
        let _ = connection.close().await;
        count
    };
    count.ok().map(|(count,)| count)
}

/// Polls `condition` every 50 ms until it holds; `Err` with `what` when `deadline` passes.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut condition: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if condition().await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= until {
            return Err(format!("timed out after {deadline:?} waiting until {what}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `find` until it returns something; panics with `what` at the deadline.
pub async fn wait_for<T, F, Fut>(what: &str, mut find: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(found) = find().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < until, "timed out after {DEADLINE:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The bot's config for a test: `test.local`, the given ports, a database in `dir` (on
/// PostgreSQL, a fresh schema: see [`backend`]).
/// `@admin:test.local` is admin, everyone on test.local a broadcaster, `@nobody:test.local` none.
pub fn bot_config(synapse_url: &str, bot_port: u16, dir: &Path, extra: &str) -> Config {
    let database_uri = match backend() {
        Backend::Sqlite => format!("sqlite://{}", dir.join("bot.db").display()),
        Backend::Postgres => postgres_schema_uri(),
    };
    let text = format!(
        r#"
homeserver:
    address: {synapse_url}
    domain: {SERVER_NAME}
appservice:
    address: http://127.0.0.1:{bot_port}
    hostname: 127.0.0.1
    port: {bot_port}
    max_body_bytes: 65536
    as_token: {as_token}
    hs_token: {hs_token}
database:
    uri: {database_uri}
permissions:
    "*": none
    "{SERVER_NAME}": broadcaster
    "@nobody:{SERVER_NAME}": none
    "@admin:{SERVER_NAME}": admin
metrics:
    listen: 127.0.0.1:{metrics_port}
logging:
    level: info
{extra}
"#,
        as_token = random_secret(),
        hs_token = random_secret(),
        database_uri = yaml_string(&database_uri),
        metrics_port = free_port(),
    );
    let config = Config::parse(&text, Path::new("test-config.yaml")).expect("test config parses");
    config.validate().expect("test config is valid");
    config
}

/// The `encryption:` section of a test bot whose files are in `dir`.
pub fn encryption_yaml(dir: &Path) -> String {
    format!(
        "encryption:\n    enabled: true\n    pickle_key: {}\n    store: {}\n",
        "p".repeat(40),
        dir.join("crypto").display()
    )
}

/// The `encryption:` section of the binary's config for a bot configured as `config`: the same
/// pickle key and crypto store (an absolute path) as the in-process bot; empty when
/// encryption is off.
fn encryption_section(config: &Config) -> String {
    let encryption = &config.encryption;
    if !encryption.enabled {
        return String::new();
    }
    let default_dm = match encryption.default_dm {
        matrix_broadcast::base::config::DmEncryption::Encrypted => "encrypted",
        matrix_broadcast::base::config::DmEncryption::Plain => "plain",
    };
    let store = encryption.store_path(&config.database.uri);
    let store = std::path::absolute(&store).unwrap_or(store);
    format!(
        "encryption:\n    enabled: true\n    pickle_key: {}\n    store: {}\n    \
         default_dm: {default_dm}\n    upgrade_dms: {}\n",
        yaml_string(&encryption.pickle_key),
        yaml_string(&store.display().to_string()),
        encryption.upgrade_dms,
    )
}

/// `text` as a YAML scalar (a JSON string is a double-quoted YAML one).
fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

fn init_logging() {
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "matrix_broadcast=info".into());
    let filter = matrix_broadcast::base::telemetry::log_filter(&level).expect("RUST_LOG is a log filter");
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// A Synapse with the bot registered, the bot running, and helpers to act as users.
pub struct TestEnv {
    pub synapse: Synapse,
    pub config: Config,
    pub bot_url: String,
    bot: Option<RunningBot>,
    /// Keeps the bot's database directory (SQLite) alive across bot restarts.
    _bot_dir: tempfile::TempDir,
}

struct RunningBot {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestEnv {
    /// Synapse + bot with the default test config.
    pub async fn start() -> TestEnv {
        Self::start_with("").await
    }

    /// Synapse + bot, with `extra` YAML appended to the bot's config.
    pub async fn start_with(extra: &str) -> TestEnv {
        Self::start_with_config(|synapse_url, bot_port, dir| bot_config(synapse_url, bot_port, dir, extra))
            .await
    }

    /// Synapse + bot with end-to-end encryption on, its crypto store in the bot's directory.
    pub async fn start_encrypted() -> TestEnv {
        Self::start_with_config(|url, port, dir| bot_config(url, port, dir, &encryption_yaml(dir))).await
    }

    /// Synapse + bot; `make_config(synapse_url, bot_port, dir)` builds the bot's config.
    pub async fn start_with_config(make_config: impl FnOnce(&str, u16, &Path) -> Config) -> TestEnv {
        Self::start_with_homeserver(make_config, "").await
    }

    /// Synapse with `homeserver_extra` appended to its homeserver.yaml, and the bot with the
    /// default test config.
    pub async fn start_with_homeserver_config(homeserver_extra: &str) -> TestEnv {
        let make_config =
            |synapse_url: &str, bot_port, dir: &Path| bot_config(synapse_url, bot_port, dir, "");
        Self::start_with_homeserver(make_config, homeserver_extra).await
    }

    /// Synapse with `homeserver_extra` appended to its homeserver.yaml, and the bot with the
    /// config `make_config(synapse_url, bot_port, dir)` builds.
    pub async fn start_with_homeserver(
        make_config: impl FnOnce(&str, u16, &Path) -> Config,
        homeserver_extra: &str,
    ) -> TestEnv {
        let (mut env, listener) = Self::prepare(make_config, homeserver_extra).await;
        env.run_bot(listener);
        env
    }

    /// Synapse with the default test config's registration, and no bot: the bot's device does
    /// not exist yet, and its port is free for the binary ([`TestEnv::binary_config`]).
    pub async fn start_synapse_only() -> TestEnv {
        let make_config =
            |synapse_url: &str, bot_port, dir: &Path| bot_config(synapse_url, bot_port, dir, "");
        Self::prepare(make_config, "").await.0
    }

    /// Synapse, and the bot's config and port (`make_config` as for
    /// [`TestEnv::start_with_homeserver`]); the bot is not started.
    async fn prepare(
        make_config: impl FnOnce(&str, u16, &Path) -> Config,
        homeserver_extra: &str,
    ) -> (TestEnv, TcpListener) {
        init_logging();
        let bot_dir = tempfile::Builder::new().prefix("bot-").tempdir().expect("temp dir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the bot's port");
        let bot_port = listener.local_addr().expect("bound address").port();
        // Synapse's URL is only known once it has a port: reserve one first.
        let synapse_port_hint = "http://127.0.0.1:0";
        let mut config = make_config(synapse_port_hint, bot_port, bot_dir.path());
        let registration = matrix_broadcast::base::registration::registration(
            &config,
            config.appservice.as_token.clone(),
            config.appservice.hs_token.clone(),
        );
        let registration =
            matrix_broadcast::base::registration::to_yaml(&config, &registration).expect("registration yaml");
        let synapse = Synapse::start_with(&registration, homeserver_extra).await;
        config.homeserver.address = synapse.url.parse().expect("synapse url");
        let env = TestEnv {
            synapse,
            config,
            bot_url: format!("http://127.0.0.1:{bot_port}"),
            bot: None,
            _bot_dir: bot_dir,
        };
        (env, listener)
    }

    fn run_bot(&mut self, listener: TcpListener) {
        let (stop, stopped) = oneshot::channel();
        let config = self.config.clone();
        let task = tokio::spawn(matrix_broadcast::run_with_listener(config, listener, async move {
            let _ = stopped.await;
        }));
        self.bot = Some(RunningBot { stop, task });
    }

    /// Stops the bot gracefully and returns what `run_with_listener` returned.
    pub async fn stop_bot(&mut self) -> anyhow::Result<()> {
        let bot = self.bot.take().expect("the bot is running");
        let _ = bot.stop.send(());
        tokio::time::timeout(DEADLINE, bot.task)
            .await
            .expect("the bot stops within the deadline")
            .expect("bot task")
    }

    /// Waits (without stopping it) until the bot ends by itself, and returns its result.
    pub async fn bot_result(&mut self) -> anyhow::Result<()> {
        let bot = self.bot.take().expect("the bot is running");
        tokio::time::timeout(DEADLINE, bot.task)
            .await
            .expect("the bot ends within the deadline")
            .expect("bot task")
    }

    /// Starts the bot again on the same port and database.
    pub async fn start_bot(&mut self) {
        let address = format!("127.0.0.1:{}", self.config.appservice.port);
        let listener = TcpListener::bind(&address).await.expect("rebind the bot's port");
        self.run_bot(listener);
    }

    /// Writes `config.yaml` in `dir` for running the real binary against this Synapse, on the
    /// in-process bot's database (`config.database.uri`). The in-process bot must be stopped:
    /// they share the port and the database.
    pub fn binary_config(&self, dir: &Path) -> std::path::PathBuf {
        let config = &self.config;
        let path = dir.join("config.yaml");
        let text = format!(
            "homeserver:\n    address: {}\n    domain: {SERVER_NAME}\nappservice:\n    address: {}\n    port: {}\n    \
             as_token: {}\n    hs_token: {}\n    device_id: {}\ndatabase:\n    uri: {}\nmetrics:\n    listen: {}\n\
             permissions:\n    \"@admin:{SERVER_NAME}\": admin\n",
            config.homeserver.address,
            config.appservice.address,
            config.appservice.port,
            config.appservice.as_token,
            config.appservice.hs_token,
            config.appservice.device_id,
            yaml_string(&config.database.uri),
            config.metrics.listen,
        ) + encryption_section(config).as_str();
        std::fs::write(&path, text).expect("write the binary's config");
        path
    }

    /// The in-process bot's SQLite database file. SQLite only (`examples/throughput.rs` reads
    /// it): tests that look into the bot's database use [`TestEnv::count_in_bot_database`] or
    /// `config.database.uri`, which work on PostgreSQL too.
    #[allow(dead_code)]
    pub fn bot_db(&self) -> std::path::PathBuf {
        assert!(
            self.config.database.uri.starts_with("sqlite:"),
            "bot_db is the bot's SQLite file, but the bot runs on {} (MATRIX_BROADCAST_TEST_BACKEND)",
            self.config.database.uri
        );
        self._bot_dir.path().join("bot.db")
    }

    /// What `sql` (a `SELECT COUNT(*) …`) counts in the bot's database, on either backend; 0
    /// while the bot has not created it yet.
    pub async fn count_in_bot_database(&self, sql: &'static str) -> i64 {
        count_rows(&self.config.database.uri, sql).await.unwrap_or(0)
    }

    /// Where the bot serves `/metrics` (a listener of its own).
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.config.metrics.listen)
    }

    /// The bot's user ID.
    pub fn bot_id(&self) -> String {
        self.config.bot_user_id().expect("bot id").to_string()
    }

    /// Registers a user (server admin or not) and returns a client acting as them.
    pub async fn user(&self, localpart: &str) -> TestUser {
        TestUser::register(&self.synapse, localpart, false).await
    }

    /// Registers a Synapse server admin (to look behind the scenes with the admin API).
    pub async fn server_admin(&self) -> TestUser {
        TestUser::register(&self.synapse, "root", true).await
    }

    /// Creates a space as `owner` with `members` joined, and the bot invited by `owner` (an
    /// admin of the bot) so that it can see the members. Returns the space's alias.
    pub async fn space(&self, owner: &TestUser, alias: &str, members: &[&TestUser]) -> String {
        let space = owner
            .create_room(serde_json::json!({
                "preset": "public_chat",
                "room_alias_name": alias,
                "creation_content": { "type": "m.space" },
            }))
            .await;
        for member in members {
            member.join(&space).await;
        }
        owner.invite(&space, &self.bot_id()).await;
        owner.wait_for_membership(&space, &self.bot_id(), "join").await;
        format!("#{alias}:{SERVER_NAME}")
    }

    /// Creates a private, unencrypted room as `admin`, invites the bot, and waits until the bot
    /// has said the room is a control room.
    pub async fn control_room(&self, admin: &TestUser) -> String {
        let room = admin.create_room(serde_json::json!({ "preset": "private_chat" })).await;
        admin.invite(&room, &self.bot_id()).await;
        // Its first words, in any language ("This is now a control room …").
        admin.wait_for_message(&room, &self.bot_id(), "").await;
        room
    }
}

impl Drop for TestEnv {
    /// Stops the bot, then audits privacy (unless the test failed already, or stopped Synapse).
    fn drop(&mut self) {
        if let Some(bot) = self.bot.take() {
            bot.task.abort();
        }
        if std::thread::panicking() || self.synapse.pid().is_none() {
            return;
        }
        let audit = privacy::audit(&self.synapse, &self.config.appservice.bot.username);
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(audit));
    }
}
