//! Progress in the control room: one message per broadcast, edited (`m.replace`) every few
//! seconds while deliveries go, ending with a summary. Also ends a broadcast (`done`) when no
//! delivery is left to do.

use std::{collections::HashMap, sync::Arc, time::Duration};

use ruma::OwnedTransactionId;
use tokio::sync::watch;

use crate::{
    base::{
        i18n::Language,
        matrix::Homeserver,
        store::{now_ms, Broadcast, BroadcastId, BroadcastState, DeliveryCounts, Store, StoreError},
    },
    broadcasts::Broadcasts,
    rooms::notices::{edit_notice, post_text},
};

/// How often finished broadcasts are looked for.
const INTERVAL: Duration = Duration::from_secs(1);
/// How often one progress message is edited at most.
const EDIT_INTERVAL_MS: i64 = 3_000;

/// The progress line of a running broadcast, in `language`.
pub fn progress_text(language: Language, broadcast: &Broadcast, counts: &DeliveryCounts) -> String {
    crate::base::i18n::t!(
        language,
        "progress-line",
        name = &broadcast.name,
        id = broadcast.id.to_string(),
        delivered = counts.delivered,
        total = counts.total(),
        failed = counts.failed,
    )
}

/// The summary of a finished broadcast, in `language`.
pub fn summary_text(language: Language, broadcast: &Broadcast, counts: &DeliveryCounts) -> String {
    let took = match (broadcast.started_at, broadcast.finished_at) {
        (Some(start), Some(end)) => Some(end - start),
        (Some(start), None) => Some(now_ms() - start),
        _ => None,
    };
    let took = match took {
        Some(ms) => {
            format!(" {}", crate::base::i18n::t!(language, "progress-took", seconds = tenths(language, ms)))
        }
        None => String::new(),
    };
    let id = broadcast.id.to_string();
    let mut text = crate::base::i18n::t!(
        language,
        "progress-summary",
        name = &broadcast.name,
        id = &id,
        took = took,
        delivered = counts.delivered,
        failed = counts.failed,
        skipped = counts.skipped,
    );
    if counts.cancelled > 0 {
        text.push_str(&crate::base::i18n::t!(language, "progress-cancelled", count = counts.cancelled));
    }
    if counts.failed > 0 {
        text.push_str(&crate::base::i18n::t!(language, "progress-reasons", id = &id));
    }
    text
}

/// `ms` in seconds with one decimal, written the way `language` writes decimals: 2.5 / 2,5.
fn tenths(language: Language, ms: i64) -> String {
    let seconds = format!("{:.1}", ms as f64 / 1000.0);
    match language {
        Language::En => seconds,
        Language::De => seconds.replace('.', ","),
    }
}

/// Posts the first progress message of a broadcast that starts now.
pub async fn announce(language: Language, store: &Store, homeserver: &dyn Homeserver, broadcast: &Broadcast) {
    let counts = match store.delivery_counts(broadcast.id).await {
        Ok(counts) => counts,
        Err(error) => {
            tracing::error!(%error, broadcast = %broadcast.id, "cannot count a broadcast's deliveries");
            DeliveryCounts::default()
        }
    };
    let txn = OwnedTransactionId::from(format!("progress-{}", broadcast.id.0));
    let text = progress_text(language, broadcast, &counts);
    if let Some(event) = post_text(homeserver, &broadcast.control_room_id, &txn, &text).await {
        if let Err(error) = store.set_progress_event(broadcast.id, &event).await {
            tracing::error!(%error, "cannot record a progress message");
        }
    }
}

/// Replaces the text of the broadcast's progress message.
async fn edit(homeserver: &dyn Homeserver, broadcast: &Broadcast, text: &str) {
    let Some(original) = &broadcast.progress_event_id else { return };
    let txn = OwnedTransactionId::from(format!("progress-{}-{}", broadcast.id.0, now_ms()));
    edit_notice(homeserver, &broadcast.control_room_id, &txn, original, text).await;
}

/// Refreshes progress and finishes broadcasts, every few seconds until `stopped`.
pub async fn run(broadcasts: Arc<Broadcasts>, mut stopped: watch::Receiver<bool>) {
    let mut shown: HashMap<BroadcastId, (String, i64)> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        if let Err(error) =
            refresh(broadcasts.rooms.language(), &broadcasts.rooms.store, broadcasts.rooms.hs(), &mut shown)
                .await
        {
            tracing::error!(%error, "cannot refresh progress");
        }
    }
}

/// `shown` holds, per broadcast, the text last shown and when.
async fn refresh(
    language: Language,
    store: &Store,
    homeserver: &dyn Homeserver,
    shown: &mut HashMap<BroadcastId, (String, i64)>,
) -> Result<(), StoreError> {
    for broadcast in store.broadcasts_in_state(BroadcastState::Running).await? {
        let counts = store.delivery_counts(broadcast.id).await?;
        if counts.unfinished() == 0 {
            finish(language, store, homeserver, &broadcast, &counts).await?;
            shown.remove(&broadcast.id);
            continue;
        }
        let text = progress_text(language, &broadcast, &counts);
        let due = shown
            .get(&broadcast.id)
            .is_none_or(|(last, at)| *last != text && now_ms() - at >= EDIT_INTERVAL_MS);
        if due {
            edit(homeserver, &broadcast, &text).await;
            shown.insert(broadcast.id, (text, now_ms()));
        }
    }
    Ok(())
}

/// Ends a running broadcast with nothing left to deliver, and shows its summary.
pub(crate) async fn finish(
    language: Language,
    store: &Store,
    homeserver: &dyn Homeserver,
    broadcast: &Broadcast,
    counts: &DeliveryCounts,
) -> Result<(), StoreError> {
    if store.finish_if_idle(broadcast.id).await? {
        let finished = store.broadcast(broadcast.id).await?;
        let text = summary_text(language, &finished, counts);
        tracing::info!(broadcast = %broadcast.id, delivered = counts.delivered, failed = counts.failed, "broadcast finished");
        edit(homeserver, &finished, &text).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_name_every_outcome_and_where_the_reasons_are() {
        let broadcast = Broadcast {
            id: BroadcastId(7),
            name: "Offsite".into(),
            control_room_id: ruma::owned_room_id!("!control:x.org"),
            created_by: ruma::owned_user_id!("@admin:x.org"),
            message: crate::base::message::StoredMessage::markdown("Hi"),
            state: BroadcastState::Done,
            created_at: 0,
            audience: vec![],
            options: Default::default(),
            command_event_id: None,
            preview_event_id: None,
            progress_event_id: None,
            started_at: Some(1_000),
            finished_at: Some(3_500),
            revision: 0,
            retracted_at: None,
            poll_closed_at: None,
        };
        let counts =
            DeliveryCounts { delivered: 1_200, failed: 2, skipped: 3, cancelled: 4, ..Default::default() };
        assert_eq!(
            summary_text(Language::En, &broadcast, &counts),
            "«Offsite» #7 finished in 2.5 s: 1,200 delivered, 2 failed, 3 skipped, 4 cancelled. Reasons: `!bc status #7`"
        );
        let running = DeliveryCounts { pending: 10, delivered: 5, ..Default::default() };
        assert_eq!(
            progress_text(Language::En, &broadcast, &running),
            "«Offsite» #7: 5 / 15 delivered, 0 failed"
        );

        assert_eq!(
            summary_text(Language::De, &broadcast, &counts),
            "«Offsite» #7 beendet in 2,5 s: 1.200 zugestellt, 2 fehlgeschlagen, 3 übersprungen, 4 abgebrochen. \
             Gründe: `!bc status #7`"
        );
        let clean = DeliveryCounts { delivered: 4, ..Default::default() };
        let quick = Broadcast { finished_at: Some(2_300), ..broadcast.clone() };
        assert_eq!(
            summary_text(Language::De, &quick, &clean),
            "«Offsite» #7 beendet in 1,3 s: 4 zugestellt, 0 fehlgeschlagen, 0 übersprungen"
        );
        let many = DeliveryCounts { pending: 1_000, delivered: 1_500, failed: 1, ..Default::default() };
        assert_eq!(
            progress_text(Language::De, &broadcast, &many),
            "«Offsite» #7: 1.500 / 2.501 zugestellt, 1 fehlgeschlagen"
        );
    }
}
