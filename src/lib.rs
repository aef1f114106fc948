//! matrix-broadcast: a Matrix application service that sends one message privately to any
//! number of people and brings their replies back.
//!
//! Data flows one way (see README, "Architecture"):
//! homeserver → [`appservice`] (auth, parse, persist into the inbox, 200) → [`dispatch`] →
//! [`control_rooms`] / [`commands`] → [`matrix`] (the only outbound client) → homeserver.
//! State lives in [`store`].

pub mod appservice;
pub mod audience;
pub mod commands;
pub mod config;
pub mod control_rooms;
pub mod defaults;
pub mod delivery;
pub mod dispatch;
pub mod dm;
pub mod matrix;
pub mod permissions;
pub mod registration;
pub mod relay;
pub mod store;
pub mod telemetry;

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;
use ruma::{OwnedUserId, UserId};
use tokio::{net::TcpListener, sync::watch};

use crate::{
    appservice::RecentTransactions,
    config::Config,
    matrix::{Homeserver, MatrixClient, MatrixError},
    permissions::Permissions,
    store::Store,
};

/// Everything the running bot shares between its tasks.
pub struct App {
    pub config: Config,
    pub permissions: Permissions,
    /// `@broadcast:<domain>`.
    pub bot: OwnedUserId,
    pub store: Store,
    pub homeserver: Arc<dyn Homeserver>,
    pub recent_transactions: RecentTransactions,
    /// Woken when new events are in the inbox.
    pub inbox_ready: tokio::sync::Notify,
    /// Woken when deliveries may be due (a broadcast started).
    pub deliveries_ready: tokio::sync::Notify,
    /// Woken to refresh progress messages now.
    pub progress_ready: tokio::sync::Notify,
    /// Woken when the DM rooms changed and `m.direct` must be rewritten.
    pub direct_dirty: tokio::sync::Notify,
    /// Serialises DM creation per recipient.
    pub dm_locks: dm::DmLocks,
    /// The first room of `broadcast.control_rooms`: messages that answer no broadcast go there.
    pub default_control_room: std::sync::OnceLock<ruma::OwnedRoomId>,
}

impl App {
    /// Marks `m.direct` for rewriting.
    pub fn direct_changed(&self) {
        self.direct_dirty.notify_one();
    }

    /// Whether this process is the only one using the database (SQLite), so that whatever it
    /// finds half-done at start-up was left by a process that died.
    pub fn owns_all_claims(&self) -> bool {
        self.store.is_sqlite()
    }

    /// Whether `user` is the bot or one of its personas (`@<bot>_…`): their events are ignored.
    pub fn is_own_user(&self, user: &UserId) -> bool {
        user == self.bot
            || (user.server_name() == self.bot.server_name()
                && user.localpart().starts_with(&format!("{}_", self.bot.localpart())))
    }
}

/// Runs the bot on `appservice.hostname:port` until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let address = config.listen_address();
    let listener = TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address} (appservice.hostname / appservice.port)"))?;
    run_with_listener(config, listener, shutdown_signal()).await
}

/// Runs the bot on an already bound listener until `shutdown` completes. Tests bind
/// `127.0.0.1:0` and pass the listener here.
pub async fn run_with_listener(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    telemetry::metrics_handle();
    let permissions = config.permissions()?;
    let bot = config.bot_user_id()?;
    let store = Store::connect(&config.database.uri, config.database.max_connections).await?;
    let homeserver = Arc::new(MatrixClient::new(&config).await?);
    let app = Arc::new(App {
        config,
        permissions,
        bot,
        store,
        homeserver,
        recent_transactions: RecentTransactions::default(),
        inbox_ready: tokio::sync::Notify::new(),
        deliveries_ready: tokio::sync::Notify::new(),
        progress_ready: tokio::sync::Notify::new(),
        direct_dirty: tokio::sync::Notify::new(),
        dm_locks: dm::DmLocks::default(),
        default_control_room: std::sync::OnceLock::new(),
    });

    let (stop, stopped) = watch::channel(false);
    let stop = Arc::new(stop);
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            let _ = stop.send(true);
        }
    });

    let address = listener.local_addr()?;
    let serve = axum::serve(listener, appservice::router(app.clone()))
        .with_graceful_shutdown(wait_for_stop(stopped.clone()));
    let server = tokio::spawn(async move { serve.await });
    tracing::info!(%address, bot = %app.bot, "listening for the homeserver");

    let started = tokio::select! {
        result = start_up(&app) => result,
        _ = wait_for_stop(stopped.clone()) => Ok(()),
    };
    if started.is_ok() {
        let workers = tokio::spawn(delivery::run_workers(app.clone(), stopped.clone()));
        let progress = tokio::spawn(delivery::progress::run(app.clone(), stopped.clone()));
        let direct = tokio::spawn(dm::run_direct_writer(app.clone(), stopped.clone()));
        let new_users = tokio::spawn(defaults::run_new_user_poll(app.clone(), stopped.clone()));
        dispatch::run(app.clone(), stopped).await;
        let _ = tokio::join!(workers, progress, direct, new_users);
    }
    // Also when start-up failed: the HTTP server must stop before this returns.
    let _ = stop.send(true);
    server.await.context("HTTP server task failed")??;
    app.store.close().await;
    started?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Registers the bot, sets its profile, logs in its device, joins configured control rooms and
/// checks that the homeserver can reach the bot. Waits for a homeserver that is not up yet.
async fn start_up(app: &Arc<App>) -> anyhow::Result<()> {
    let homeserver = app.homeserver.as_ref();
    until_reachable("register the bot user", || homeserver.register_bot()).await?;
    // The device must exist before any request names it.
    until_reachable("log in the bot's device", || homeserver.ensure_device()).await?;
    let bot = &app.config.appservice.bot;
    let displayname = Some(bot.displayname.as_str()).filter(|name| !name.is_empty());
    let avatar = match bot.avatar.as_str() {
        "" => None,
        avatar => Some(ruma::OwnedMxcUri::from(avatar)),
    };
    until_reachable("set the bot's profile", || homeserver.set_bot_profile(displayname, avatar.clone()))
        .await?;
    control_rooms::join_configured(app).await;
    if app.owns_all_claims() {
        let released = app.store.release_claims().await?;
        if released > 0 {
            tracing::info!(released, "resuming deliveries that were in flight when the bot stopped");
        }
    }
    app.direct_changed();
    commands::send::resume_preparing(app).await?;
    defaults::catch_up(app).await?;

    let transaction_id = format!("startup-{}", store::now_ms());
    match homeserver.ping(&transaction_id).await {
        Ok(round_trip) => {
            tracing::info!(round_trip_ms = round_trip.as_millis() as u64, "the homeserver can reach the bot")
        }
        Err(error) => tracing::warn!(
            %error,
            url = %app.config.appservice.address,
            "the homeserver cannot reach the bot: check that appservice.address is reachable from the homeserver, \
             that the url in registration.yaml is the same, and that appservice.hostname/port is where the bot \
             listens; the bot keeps running"
        ),
    }
    tracing::info!(bot = %app.bot, "ready");
    Ok(())
}

/// Retries `step` while the homeserver is unreachable or busy; a permanent failure ends start-up
/// with what to check.
async fn until_reachable<F, Fut>(what: &str, mut step: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), MatrixError>>,
{
    let mut delay = Duration::from_millis(500);
    loop {
        match step().await {
            Ok(()) => return Ok(()),
            Err(MatrixError::Permanent { errcode, message, .. }) => {
                let hint = match errcode.as_deref() {
                    Some("M_UNKNOWN_TOKEN") | Some("M_FORBIDDEN") => {
                        " (is registration.yaml listed in Synapse's app_service_config_files, with the same \
                         as_token as the config, and was Synapse restarted after adding it?)"
                    }
                    _ => "",
                };
                anyhow::bail!("cannot {what}: {message}{hint}");
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "cannot {what} yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
