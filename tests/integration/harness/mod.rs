//! What the integration tests stand on: a real Synapse, the bot running in-process on a port of
//! its own, and Matrix users driven through the plain client-server API, as Element would.
//! Waiting is always "until a condition holds or a deadline passes", never a fixed sleep.

pub mod client;
pub mod synapse;

use std::{future::Future, path::Path, time::Duration};

use matrix_broadcast::config::Config;
use rand::{distributions::Alphanumeric, Rng};
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

/// The bot's config for a test: `test.local`, the given ports, a database in `dir`.
/// `@admin:test.local` is admin, everyone on test.local a broadcaster, `@nobody:test.local` none.
pub fn bot_config(synapse_url: &str, bot_port: u16, dir: &Path, extra: &str) -> Config {
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
    uri: sqlite://{db}
permissions:
    "*": none
    "{SERVER_NAME}": broadcaster
    "@nobody:{SERVER_NAME}": none
    "@admin:{SERVER_NAME}": admin
logging:
    level: info
{extra}
"#,
        as_token = random_secret(),
        hs_token = random_secret(),
        db = dir.join("bot.db").display(),
    );
    let config = Config::parse(&text, Path::new("test-config.yaml")).expect("test config parses");
    config.validate().expect("test config is valid");
    config
}

fn init_logging() {
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "matrix_broadcast=info".into());
    let filter = matrix_broadcast::telemetry::log_filter(&level);
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// A Synapse with the bot registered, the bot running, and helpers to act as users.
pub struct TestEnv {
    pub synapse: Synapse,
    pub config: Config,
    pub bot_url: String,
    bot: Option<RunningBot>,
    /// Keeps the bot's database directory alive across bot restarts.
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

    /// Synapse + bot; `make_config(synapse_url, bot_port, dir)` builds the bot's config.
    pub async fn start_with_config(make_config: impl FnOnce(&str, u16, &Path) -> Config) -> TestEnv {
        init_logging();
        let bot_dir = tempfile::Builder::new().prefix("bot-").tempdir().expect("temp dir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the bot's port");
        let bot_port = listener.local_addr().expect("bound address").port();
        // Synapse's URL is only known once it has a port: reserve one first.
        let synapse_port_hint = "http://127.0.0.1:0";
        let mut config = make_config(synapse_port_hint, bot_port, bot_dir.path());
        let registration = matrix_broadcast::registration::registration(
            &config,
            config.appservice.as_token.clone(),
            config.appservice.hs_token.clone(),
        );
        let synapse = Synapse::start(&serde_yaml::to_string(&registration).expect("registration yaml")).await;
        config.homeserver.address = synapse.url.parse().expect("synapse url");
        let mut env = TestEnv {
            synapse,
            config,
            bot_url: format!("http://127.0.0.1:{bot_port}"),
            bot: None,
            _bot_dir: bot_dir,
        };
        env.run_bot(listener);
        env
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

    /// Writes a config file for running the real binary against this Synapse (the in-process
    /// bot must be stopped: they share the port), with its database in `dir`.
    pub fn binary_config(&self, dir: &Path) -> std::path::PathBuf {
        let config = &self.config;
        let path = dir.join("config.yaml");
        let text = format!(
            "homeserver:\n    address: {}\n    domain: {SERVER_NAME}\nappservice:\n    address: {}\n    port: {}\n    \
             as_token: {}\n    hs_token: {}\ndatabase:\n    uri: sqlite://{}\npermissions:\n    \"@admin:{SERVER_NAME}\": admin\n",
            config.homeserver.address,
            config.appservice.address,
            config.appservice.port,
            config.appservice.as_token,
            config.appservice.hs_token,
            dir.join("bot.db").display(),
        );
        std::fs::write(&path, text).expect("write the binary's config");
        path
    }

    /// The in-process bot's SQLite database file.
    pub fn bot_db(&self) -> std::path::PathBuf {
        self._bot_dir.path().join("bot.db")
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
        admin.wait_for_message(&room, &self.bot_id(), "This is now a control room").await;
        room
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(bot) = self.bot.take() {
            bot.task.abort();
        }
    }
}
