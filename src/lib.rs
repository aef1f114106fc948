//! matrix-broadcast: a Matrix application service that sends one message privately to any
//! number of people and brings their replies back.
//!
//! Layers, top to bottom: wiring, edge, broadcasts, delivery, rooms, base.
//!
//! Each is a folder (or one file) of `src/`, and a module imports only from its own layer and
//! the layers below, never in a circle (`scripts/check-cycles` fails the tests otherwise; the
//! README's "Architecture" shows the graph it generates):
//!
//! - [`wiring`]: builds each layer's service from the one below ([`wiring::Bot`]); this file
//!   starts the tasks on them.
//! - [`edge`]: the appservice HTTP API (events into the inbox), the dispatcher, the commands.
//! - [`broadcasts`]: a broadcast's life, its audience, welcomes, follow-ups
//!   ([`broadcasts::Broadcasts`]).
//! - [`delivery`]: the queue's workers, retries and outage pauses ([`delivery::Delivery`]).
//! - [`rooms`]: DMs, the bot's personas, notices, the relay of replies, control rooms
//!   ([`rooms::Rooms`]).
//! - [`base`]: the homeserver client, the store, encryption, config, texts, times.

pub mod base;
pub mod broadcasts;
pub mod delivery;
pub mod edge;
pub mod rooms;
pub mod wiring;

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::{net::TcpListener, sync::watch};

use crate::{
    base::{config::Config, matrix::MatrixError, store::Store, telemetry::HomeserverHealth},
    edge::appservice::server::Limits,
    rooms::Rooms,
    wiring::Bot,
};

/// How often the homeserver is probed for `/health` and `matrix_broadcast_homeserver_up`, and
/// how long a probe waits for its answer.
const HOMESERVER_PROBE_EVERY: Duration = Duration::from_secs(5);
const HOMESERVER_PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the queue depth gauge is refreshed.
const QUEUE_DEPTH_EVERY: Duration = Duration::from_secs(5);
/// How long the tasks have, after a stop, before the process ends without them: the delivery
/// workers give back what they could not finish within [`delivery::STOP_GRACE`], so this is a
/// bound for a request that hangs elsewhere (a command, a progress edit).
const STOP_LIMIT: Duration = Duration::from_secs(7);

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
    let bot = Bot::connect(config).await?;
    let health = bot.health_checks();
    let intake = Arc::new(bot.intake(health.clone()));
    let (stop, stopped) = stop_on(shutdown);
    let metrics_listen = bot.config.metrics.enabled.then_some(bot.config.metrics.listen);
    let metrics = serve_metrics(metrics_listen, health, stopped.clone()).await?;
    let address = listener.local_addr()?;
    let router = edge::appservice::router(intake);
    let serve =
        edge::appservice::server::serve(listener, router, Limits::DEFAULT, wait_for_stop(stopped.clone()));
    let server = tokio::spawn(serve);
    tracing::info!(%address, bot = %bot.rooms().bot, "listening for the homeserver");
    // From the start, so that `/ready` knows the homeserver's state during start-up too.
    let probe = tokio::spawn(probe_homeserver(bot.rooms().clone(), bot.health.clone(), stopped.clone()));

    let started = tokio::select! {
        result = start_up(&bot) => result,
        _ = wait_for_stop(stopped.clone()) => Ok(()),
    };
    if started.is_ok() {
        within_stop_limit(run_tasks(&bot, stopped.clone()), stopped).await;
    }
    // Also when start-up failed: the HTTP server must stop before this returns.
    let _ = stop.send(true);
    server.await.context("HTTP server task failed")?;
    let _ = probe.await;
    finish(&bot, metrics).await?;
    started?;
    tracing::info!("stopped");
    Ok(())
}

/// Runs delivery workers only (`matrix-broadcast worker`) until `shutdown` completes: next to
/// the main process, on its PostgreSQL database, with its config. No HTTP listener, no
/// dispatcher, progress, schedule, follow-ups or new-user poll, and no `m.direct` writes: the
/// main process lists the DMs that workers make (it watches the DM table). `/metrics`, `/live`
/// and `/ready` are served on `listen` when given (the config's `metrics.listen` is the main
/// process's).
pub async fn run_worker(
    config: Config,
    listen: Option<std::net::SocketAddr>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if config.encryption.enabled {
        anyhow::bail!(
            "workers do not support end-to-end encryption yet (encryption.enabled): the bot's device and its \
             crypto store belong to the main process; run the main process alone"
        );
    }
    if !base::store::is_postgres_uri(&config.database.uri) {
        anyhow::bail!(
            "workers need PostgreSQL (database.uri is {}): a SQLite file is used by one process only, the main one",
            config.database.uri
        );
    }
    let bot = Bot::connect(config).await?;
    let (stop, stopped) = stop_on(shutdown);
    let metrics = serve_metrics(listen, bot.health_checks(), stopped.clone()).await?;
    let homeserver = bot.rooms().hs();
    // From the start, so that `/ready` knows the homeserver's state during start-up too.
    let probe = tokio::spawn(probe_homeserver(bot.rooms().clone(), bot.health.clone(), stopped.clone()));
    let started = tokio::select! {
        // The main process does the same; whichever comes first.
        result = async {
            until_reachable("register the bot user", || homeserver.register_bot()).await?;
            until_reachable("log in the bot's device", || homeserver.ensure_device()).await
        } => result,
        _ = wait_for_stop(stopped.clone()) => Ok(()),
    };
    if started.is_ok() {
        tracing::info!(bot = %bot.rooms().bot, concurrency = bot.config.broadcast.concurrency, "delivery worker ready");
        within_stop_limit(delivery::run_workers(bot.delivery().clone(), stopped.clone()), stopped).await;
    }
    let _ = stop.send(true);
    let _ = probe.await;
    finish(&bot, metrics).await?;
    started?;
    tracing::info!("worker stopped");
    Ok(())
}

/// A stop flag set when `shutdown` completes (or when the sender is used).
fn stop_on(
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (Arc<watch::Sender<bool>>, watch::Receiver<bool>) {
    let (stop, stopped) = watch::channel(false);
    let stop = Arc::new(stop);
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            let _ = stop.send(true);
        }
    });
    (stop, stopped)
}

/// Runs `tasks` to their end, or until [`STOP_LIMIT`] after the stop, whichever is first.
async fn within_stop_limit(tasks: impl Future, stopped: watch::Receiver<bool>) {
    let limit = async {
        wait_for_stop(stopped).await;
        tokio::time::sleep(STOP_LIMIT).await;
    };
    tokio::select! {
        _ = tasks => {}
        _ = limit => tracing::warn!(limit = ?STOP_LIMIT, "some tasks did not stop in time; stopping without them"),
    }
}

/// Waits for the metrics server and closes the store.
async fn finish(
    bot: &Bot,
    metrics: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
) -> anyhow::Result<()> {
    if let Some(metrics) = metrics {
        metrics.await.context("metrics server task failed")??;
    }
    bot.rooms().store.close().await;
    Ok(())
}

/// Asks the homeserver something cheap every few seconds, for `/health` and the
/// `matrix_broadcast_homeserver_up` gauge, until `stopped`.
async fn probe_homeserver(
    rooms: Arc<Rooms>,
    health: Arc<HomeserverHealth>,
    mut stopped: watch::Receiver<bool>,
) {
    while !*stopped.borrow() {
        match tokio::time::timeout(HOMESERVER_PROBE_TIMEOUT, rooms.probe()).await {
            Ok(Err(error)) if error.is_outage() => health.down(error),
            Ok(_) => health.up(),
            Err(_) => health.down(format!("no answer within {HOMESERVER_PROBE_TIMEOUT:?}")),
        }
        tokio::select! {
            _ = tokio::time::sleep(HOMESERVER_PROBE_EVERY) => {}
            _ = stopped.wait_for(|stop| *stop) => {}
        }
    }
}

/// Refreshes the `matrix_broadcast_queue_depth` gauge every few seconds until `stopped`.
async fn refresh_queue_depth(store: Store, mut stopped: watch::Receiver<bool>) {
    while !*stopped.borrow() {
        match store.queue_depth().await {
            Ok((pending, sending)) => base::telemetry::set_queue_depth(pending, sending),
            Err(error) => tracing::warn!(%error, "cannot count the deliveries in the queue"),
        }
        tokio::select! {
            _ = tokio::time::sleep(QUEUE_DEPTH_EVERY) => {}
            _ = stopped.wait_for(|stop| *stop) => {}
        }
    }
}

/// Serves `GET /metrics`, and `/live`, `/ready` and `/health` from `health`, on `listen`
/// (`metrics.listen` when metrics are enabled, a worker's `--listen`) until `stopped`.
async fn serve_metrics(
    listen: Option<std::net::SocketAddr>,
    health: Arc<edge::health::Health>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<std::io::Result<()>>>> {
    let Some(listen) = listen else { return Ok(None) };
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} for metrics (metrics.listen, or a worker's --listen)")
    })?;
    tracing::info!(address = %listener.local_addr()?, "serving /metrics, /live and /ready");
    let router = base::telemetry::metrics_router().merge(edge::health::router(health));
    let serve = axum::serve(listener, router).with_graceful_shutdown(wait_for_stop(stopped));
    Ok(Some(tokio::spawn(async move { serve.await })))
}

/// Runs the dispatcher and the background tasks until `stopped`.
async fn run_tasks(bot: &Bot, stopped: watch::Receiver<bool>) {
    let (broadcasts, rooms) = (&bot.broadcasts, bot.rooms());
    let workers = tokio::spawn(delivery::run_workers(bot.delivery().clone(), stopped.clone()));
    let progress = tokio::spawn(broadcasts::lifecycle::progress::run(broadcasts.clone(), stopped.clone()));
    let direct = tokio::spawn({
        let (rooms, stopped) = (rooms.clone(), stopped.clone());
        async move { rooms.senders.dms.run_direct_writer(stopped).await }
    });
    let new_users =
        tokio::spawn(broadcasts::defaults::run_new_user_poll(broadcasts.clone(), stopped.clone()));
    let personas_direct = futures_util::future::join_all(rooms.senders.personas().map(|persona| {
        let (rooms, stopped, name) = (rooms.clone(), stopped.clone(), persona.name.clone());
        tokio::spawn(async move {
            if let Some(persona) = rooms.senders.persona(&name) {
                persona.run_direct_writer(stopped).await
            }
        })
    }));
    let followups = tokio::spawn(broadcasts::followup::run(broadcasts.clone(), stopped.clone()));
    let schedule = tokio::spawn(broadcasts::lifecycle::schedule::run(broadcasts.clone(), stopped.clone()));
    let queue = tokio::spawn(refresh_queue_depth(rooms.store.clone(), stopped.clone()));
    let crypto = rooms.crypto.clone().map(|crypto| tokio::spawn(crypto.run(stopped.clone())));
    let undecrypted = tokio::spawn(edge::dispatch::retry_undecrypted(broadcasts.clone(), stopped.clone()));
    edge::dispatch::run(broadcasts.clone(), bot.inbox_ready.clone(), stopped).await;
    if let Some(crypto) = crypto {
        let _ = crypto.await;
    }
    let _ = tokio::join!(
        workers,
        progress,
        direct,
        new_users,
        personas_direct,
        followups,
        schedule,
        queue,
        undecrypted
    );
}

async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Registers the bot, sets its profile, logs in its device, joins configured control rooms and
/// checks that the homeserver can reach the bot. Waits for a homeserver that is not up yet.
async fn start_up(bot: &Bot) -> anyhow::Result<()> {
    let homeserver = bot.rooms().hs();
    until_reachable("register the bot user", || homeserver.register_bot()).await?;
    // The device must exist before any request names it.
    until_reachable("log in the bot's device", || homeserver.ensure_device()).await?;
    let (displayname, avatar) = bot.config.appservice.bot.profile();
    until_reachable("set the bot's profile", || homeserver.set_bot_profile(displayname, avatar.clone()))
        .await?;
    if let Some(crypto) = &bot.rooms().crypto {
        let start = || async { crypto.start().await.map_err(MatrixError::from) };
        until_reachable("upload the bot's encryption keys and cross-sign its device", start).await?;
        tracing::info!("end-to-end encryption ready");
    }
    rooms::control_rooms::join_configured(bot.rooms()).await;
    if bot.rooms().store.is_sqlite() {
        // This process is the only one using the database: what it finds claimed was left by a
        // process that died.
        let released = bot.rooms().store.release_claims().await?;
        if released > 0 {
            tracing::info!(released, "resuming deliveries that were in flight when the bot stopped");
        }
    }
    bot.rooms().senders.dms.direct_changed();
    broadcasts::lifecycle::resume_preparing(&bot.broadcasts).await?;
    broadcasts::defaults::catch_up(&bot.broadcasts).await?;

    let transaction_id = format!("startup-{}", base::store::now_ms());
    match homeserver.ping(&transaction_id).await {
        Ok(round_trip) => {
            tracing::info!(round_trip_ms = round_trip.as_millis() as u64, "the homeserver can reach the bot")
        }
        Err(error) => tracing::warn!(
            %error,
            url = %bot.config.appservice.address,
            "the homeserver cannot reach the bot: check that appservice.address is reachable from the homeserver, \
             that the url in registration.yaml is the same, and that appservice.hostname/port is where the bot \
             listens; the bot keeps running"
        ),
    }
    tracing::info!(bot = %bot.rooms().bot, "ready");
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
pub async fn shutdown_signal() {
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
