//! Scheduled broadcasts (`--at` / `--in`): each is started once when due, by moving it from
//! `scheduled` to `running` (a move only one process can make). A bot that was stopped over the
//! due time starts it when it is back, and says how late it is.

use std::{sync::Arc, time::Duration};

use ruma::OwnedTransactionId;
use tokio::sync::watch;

use super::start;
use crate::{
    base::{
        store::{now_ms, Broadcast, BroadcastState, StoreError},
        when,
    },
    broadcasts::Broadcasts,
    rooms::notices::post_notice,
};

/// How often due broadcasts are looked for.
const INTERVAL: Duration = Duration::from_secs(1);
/// A broadcast started later than this after its time is reported as late.
const LATE_MS: i64 = 60_000;

/// Starts due broadcasts every second until `stopped`.
pub async fn run(broadcasts: Arc<Broadcasts>, mut stopped: watch::Receiver<bool>) {
    loop {
        if let Err(error) = start_due(&broadcasts).await {
            tracing::error!(%error, "cannot start scheduled broadcasts");
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

/// Starts every scheduled broadcast whose time has come, and says so in its control room.
pub async fn start_due(broadcasts: &Broadcasts) -> Result<(), StoreError> {
    for broadcast in broadcasts.rooms.store.broadcasts_in_state(BroadcastState::Scheduled).await? {
        let Some(at) = broadcast.options.send_at else { continue };
        if at <= now_ms() {
            start_one(broadcasts, &broadcast, at).await;
        }
    }
    Ok(())
}

async fn start_one(broadcasts: &Broadcasts, broadcast: &Broadcast, at: i64) {
    let late = now_ms() - at;
    let answer = start(broadcasts, broadcast.id, BroadcastState::Scheduled).await.markdown;
    let due = when::show(at, &broadcasts.rooms.broadcast.time_zone());
    let language = broadcasts.rooms.language();
    let text = if late > LATE_MS {
        let late = when::show_length(language, late);
        crate::base::i18n::t!(language, "schedule-late", answer = answer, due = due, late = late)
    } else {
        crate::base::i18n::t!(language, "schedule-on-time", answer = answer.trim_end_matches('.'), due = due)
    };
    let txn = OwnedTransactionId::from(format!("scheduled-{}", broadcast.id.0));
    post_notice(broadcasts.rooms.hs(), &broadcast.control_room_id, &txn, &text).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{base::store::SendOptions, broadcasts::testing::TestBroadcasts};

    /// A broadcast of "Hello" to alice, moved from resolving to `state`, to be sent at `send_at`.
    async fn scheduled(test: &TestBroadcasts, state: BroadcastState, send_at: i64) -> Broadcast {
        let control = test.control_room().await;
        let alice = test.hs.user("alice", None);
        let options = SendOptions { send_at: Some(send_at), ..SendOptions::default() };
        let id = test.broadcast_in(state, &control, "Hello", &[], &[alice], options).await;
        test.store().broadcast(id).await.unwrap()
    }

    #[tokio::test]
    async fn a_broadcast_due_later_waits_and_starts_once_when_due() {
        let test = TestBroadcasts::with_config("broadcast:\n  timezone: Europe/Berlin\n").await;
        let broadcast = scheduled(&test, BroadcastState::Resolving, now_ms() + 1_500).await;
        let answer = start(&test.broadcasts, broadcast.id, BroadcastState::Resolving).await;
        assert!(
            answer.markdown.starts_with(&format!("Scheduled {} «Hello» for ", broadcast.id)),
            "{answer:?}"
        );
        assert!(answer.markdown.contains(" Europe/Berlin (in 1 s)"), "{answer:?}");
        let state = || async { test.store().broadcast(broadcast.id).await.unwrap().state };
        assert_eq!(state().await, BroadcastState::Scheduled);
        start_due(&test.broadcasts).await.unwrap();
        assert_eq!(state().await, BroadcastState::Scheduled, "not due yet");
        assert!(test.hs.bodies_in(&broadcast.control_room_id).is_empty(), "no progress message yet");

        tokio::time::sleep(Duration::from_millis(1_600)).await;
        start_due(&test.broadcasts).await.unwrap();
        start_due(&test.broadcasts).await.unwrap();
        assert_eq!(state().await, BroadcastState::Running);
        let said = test.hs.bodies_in(&broadcast.control_room_id);
        let starts: Vec<&String> = said.iter().filter(|text| text.starts_with("Sending")).collect();
        assert_eq!(starts.len(), 1, "started once: {said:?}");
        assert!(starts[0].contains("(scheduled for "), "{said:?}");
    }

    #[tokio::test]
    async fn a_broadcast_whose_time_passed_while_the_bot_was_stopped_goes_out_and_says_it_is_late() {
        let test = TestBroadcasts::new().await;
        let broadcast = scheduled(&test, BroadcastState::Scheduled, now_ms() - 5 * 60_000).await;
        start_due(&test.broadcasts).await.unwrap();
        assert_eq!(test.store().broadcast(broadcast.id).await.unwrap().state, BroadcastState::Running);
        let said = test.hs.bodies_in(&broadcast.control_room_id);
        let start = said.iter().find(|text| text.starts_with("Sending")).expect("a start notice");
        assert!(start.contains(" UTC: 5 min late, because the bot was not running then."), "{start}");
    }

    #[tokio::test]
    async fn a_german_bot_says_in_german_that_a_broadcast_is_scheduled_or_late() {
        let test = TestBroadcasts::with_config("language: de\n").await;
        let later = scheduled(&test, BroadcastState::Resolving, now_ms() + 2 * 3_600_000 + 30_000).await;
        let answer = start(&test.broadcasts, later.id, BroadcastState::Resolving).await;
        let at = when::show(later.options.send_at.unwrap(), &jiff::tz::TimeZone::UTC);
        let expected = format!(
            "{} «Hello» ist für {at} geplant (in 2 h). `!bc cancel {}` verwirft sie.",
            later.id, later.id
        );
        assert_eq!(answer.markdown, expected);

        let late = scheduled(&test, BroadcastState::Scheduled, now_ms() - 5 * 60_000).await;
        start_due(&test.broadcasts).await.unwrap();
        let said = test.hs.bodies_in(&late.control_room_id);
        let start = said.iter().find(|text| text.starts_with("Sende")).expect("a start notice");
        assert!(
            start.ends_with(" UTC geplant: 5 min zu spät, weil der Bot zu der Zeit nicht lief."),
            "{start}"
        );
    }
}
