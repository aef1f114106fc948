//! Scheduled broadcasts (`--at` / `--in`): each is started once when due, by moving it from
//! `scheduled` to `running` (a move only one process can make). A bot that was stopped over the
//! due time starts it when it is back, and says how late it is.

use std::{sync::Arc, time::Duration};

use ruma::OwnedTransactionId;
use tokio::sync::watch;

use super::start;
use crate::{
    context::App,
    notices::post_notice,
    store::{now_ms, Broadcast, BroadcastState, StoreError},
    when,
};

/// How often due broadcasts are looked for.
const INTERVAL: Duration = Duration::from_secs(1);
/// A broadcast started later than this after its time is reported as late.
const LATE_MS: i64 = 60_000;

/// Starts due broadcasts every second until `stopped`.
pub async fn run(app: Arc<App>, mut stopped: watch::Receiver<bool>) {
    loop {
        if let Err(error) = start_due(&app).await {
            tracing::error!(%error, "cannot start scheduled broadcasts");
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

/// Starts every scheduled broadcast whose time has come, and says so in its control room.
pub async fn start_due(app: &App) -> Result<(), StoreError> {
    for broadcast in app.store.broadcasts_in_state(BroadcastState::Scheduled).await? {
        let Some(at) = broadcast.options.send_at else { continue };
        if at <= now_ms() {
            start_one(app, &broadcast, at).await;
        }
    }
    Ok(())
}

async fn start_one(app: &App, broadcast: &Broadcast, at: i64) {
    let late = now_ms() - at;
    let mut text = start(app, broadcast.id, BroadcastState::Scheduled).await.markdown;
    let due = when::show(at, &app.config.broadcast.time_zone());
    if late > LATE_MS {
        text.push_str(&format!(
            " It was due at {due}: {} late, because the bot was not running then.",
            when::show_length(late)
        ));
    } else {
        text.push_str(&format!(" (scheduled for {due})"));
    }
    let txn = OwnedTransactionId::from(format!("scheduled-{}", broadcast.id.0));
    post_notice(app.hs(), &broadcast.control_room_id, &txn, &text).await;
}
