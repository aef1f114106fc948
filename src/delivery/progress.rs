//! Progress in the control room: one message per broadcast, edited (`m.replace`) every few
//! seconds while deliveries go, ending with a summary. Also ends a broadcast (`done`) when no
//! delivery is left to do.

use std::{collections::HashMap, sync::Arc, time::Duration};

use ruma::OwnedTransactionId;
use serde_json::json;
use tokio::sync::watch;

use crate::{
    matrix::send_json,
    store::{now_ms, Broadcast, BroadcastState, StoreError},
    App,
};

/// How often finished broadcasts are looked for.
const INTERVAL: Duration = Duration::from_secs(1);
/// How often one progress message is edited at most.
const EDIT_INTERVAL_MS: i64 = 3_000;

/// Counts of a broadcast's deliveries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: i64,
    pub delivered: i64,
    pub failed: i64,
    pub skipped: i64,
    pub cancelled: i64,
    /// Pending or being sent.
    pub unfinished: i64,
}

impl Counts {
    pub async fn of(app: &App, broadcast: &Broadcast) -> Result<Self, StoreError> {
        let by_state = app.store.delivery_counts(broadcast.id).await?;
        let get = |state: &str| by_state.get(state).copied().unwrap_or(0);
        Ok(Counts {
            total: by_state.values().sum(),
            delivered: get("delivered"),
            failed: get("failed"),
            skipped: get("skipped"),
            cancelled: get("cancelled"),
            unfinished: get("pending") + get("sending"),
        })
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(number: i64) -> String {
    let digits = number.abs().to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    if number < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The progress line of a running broadcast.
pub fn progress_text(broadcast: &Broadcast, counts: &Counts) -> String {
    format!(
        "«{}» {}: {} / {} delivered, {} failed",
        broadcast.name,
        broadcast.id,
        thousands(counts.delivered),
        thousands(counts.total),
        thousands(counts.failed)
    )
}

/// The summary of a finished broadcast.
pub fn summary_text(broadcast: &Broadcast, counts: &Counts) -> String {
    let took = match (broadcast.started_at, broadcast.finished_at) {
        (Some(start), Some(end)) => format!(" in {:.1} s", (end - start) as f64 / 1000.0),
        (Some(start), None) => format!(" in {:.1} s", (now_ms() - start) as f64 / 1000.0),
        _ => String::new(),
    };
    let mut text = format!(
        "«{}» {} finished{took}: {} delivered, {} failed, {} skipped",
        broadcast.name,
        broadcast.id,
        thousands(counts.delivered),
        thousands(counts.failed),
        thousands(counts.skipped)
    );
    if counts.cancelled > 0 {
        text.push_str(&format!(", {} cancelled", thousands(counts.cancelled)));
    }
    if counts.failed > 0 {
        text.push_str(&format!(". Reasons: `!bc status {}`", broadcast.id));
    }
    text
}

/// Posts the first progress message of a broadcast that starts now.
pub async fn announce(app: &App, broadcast: &Broadcast) {
    let counts = Counts { total: 0, ..Counts::default() };
    let counts = Counts::of(app, broadcast).await.unwrap_or(counts);
    let content = json!({ "msgtype": "m.notice", "body": progress_text(broadcast, &counts) });
    let txn = OwnedTransactionId::from(format!("progress-{}", broadcast.id.0));
    match send_json(app.homeserver.as_ref(), &broadcast.control_room_id, &txn, "m.room.message", &content)
        .await
    {
        Ok(event) => {
            if let Err(error) = app.store.set_progress_event(broadcast.id, &event).await {
                tracing::error!(%error, "cannot record a progress message");
            }
        }
        Err(error) => tracing::warn!(%error, "cannot post a progress message"),
    }
}

/// Replaces the text of the broadcast's progress message.
async fn edit(app: &App, broadcast: &Broadcast, text: &str) {
    let Some(original) = &broadcast.progress_event_id else { return };
    let content = json!({
        "msgtype": "m.notice",
        "body": format!("* {text}"),
        "m.new_content": { "msgtype": "m.notice", "body": text },
        "m.relates_to": { "rel_type": "m.replace", "event_id": original },
    });
    let txn = OwnedTransactionId::from(format!("progress-{}-{}", broadcast.id.0, now_ms()));
    if let Err(error) =
        send_json(app.homeserver.as_ref(), &broadcast.control_room_id, &txn, "m.room.message", &content).await
    {
        tracing::warn!(%error, broadcast = %broadcast.id, "cannot update a progress message");
    }
}

/// Refreshes progress and finishes broadcasts, every few seconds until `stopped`.
pub async fn run(app: Arc<App>, mut stopped: watch::Receiver<bool>) {
    let mut shown: HashMap<i64, (String, i64)> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = app.progress_ready.notified() => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        if let Err(error) = refresh(&app, &mut shown).await {
            tracing::error!(%error, "cannot refresh progress");
        }
    }
}

/// `shown` holds, per broadcast, the text last shown and when.
async fn refresh(app: &App, shown: &mut HashMap<i64, (String, i64)>) -> Result<(), StoreError> {
    for broadcast in app.store.broadcasts_in_state(BroadcastState::Running).await? {
        let counts = Counts::of(app, &broadcast).await?;
        if counts.unfinished == 0 {
            if app.store.transition(broadcast.id, BroadcastState::Running, BroadcastState::Done).await? {
                let finished = app.store.broadcast(broadcast.id).await?;
                let text = summary_text(&finished, &counts);
                tracing::info!(broadcast = %broadcast.id, delivered = counts.delivered, failed = counts.failed, "broadcast finished");
                edit(app, &finished, &text).await;
            }
            shown.remove(&broadcast.id.0);
            continue;
        }
        let text = progress_text(&broadcast, &counts);
        let due = shown
            .get(&broadcast.id.0)
            .is_none_or(|(last, at)| *last != text && now_ms() - at >= EDIT_INTERVAL_MS);
        if due {
            edit(app, &broadcast, &text).await;
            shown.insert(broadcast.id.0, (text, now_ms()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
