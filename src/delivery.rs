//! The delivery workers: claim a due delivery, make sure the recipient's DM exists, send the
//! personalised message, record the outcome.
//!
//! Transaction IDs derive from (broadcast, recipient) and messages go out from the bot's logged-in
//! device, so a re-send after any crash (of the bot or of the homeserver) returns the event that
//! was already sent instead of a second copy. Temporary failures come back after an exponential
//! backoff with jitter (or the homeserver's `retry_after`), up to `broadcast.max_attempts`;
//! permanent ones are recorded with a reason for `!bc status`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use rand::Rng;
use ruma::{OwnedEventId, OwnedRoomId, OwnedTransactionId, UserId};
use tokio::sync::watch;

use crate::{
    context::App,
    dm::{DmError, Dms},
    matrix::{send_json, Homeserver, MatrixError},
    message::StoredMessage,
    store::{now_ms, Broadcast, BroadcastId, Claim, DeliveryState, StoreError},
};

/// How long a worker holds a claimed delivery before another may take it over.
pub const LEASE_MS: i64 = 120_000;
/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Runs `broadcast.concurrency` workers until `stopped`.
pub async fn run_workers(app: Arc<App>, stopped: watch::Receiver<bool>) {
    let workers: Vec<_> = (0..app.config.broadcast.concurrency)
        .map(|_| tokio::spawn(worker(app.clone(), stopped.clone())))
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
}

async fn worker(app: Arc<App>, mut stopped: watch::Receiver<bool>) {
    let mut broadcasts: HashMap<BroadcastId, Arc<Broadcast>> = HashMap::new();
    while !*stopped.borrow() {
        let claim = match app.store.claim_delivery(LEASE_MS).await {
            Ok(claim) => claim,
            Err(error) => {
                tracing::error!(%error, "cannot claim a delivery");
                None
            }
        };
        let Some(claim) = claim else {
            let wait = match app.store.next_due_at().await {
                Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(10, 1000) as u64),
                _ => Duration::from_secs(1),
            };
            tokio::select! {
                _ = app.deliveries_ready.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.wait_for(|stop| *stop) => {}
            }
            continue;
        };
        let result = match broadcast_of(&app, &mut broadcasts, &claim).await {
            Ok(broadcast) => deliver(&app, &broadcast, &claim).await,
            Err(error @ StoreError::Undecodable { .. }) => {
                // It will never be readable: fail the delivery instead of retrying it forever.
                let reason = error.to_string();
                app.store.end_delivery(&claim, DeliveryState::Failed, &reason).await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            tracing::error!(%error, broadcast = %claim.broadcast_id, "cannot record a delivery");
        }
    }
}

/// The broadcast of a claim, read once per worker.
async fn broadcast_of(
    app: &App,
    broadcasts: &mut HashMap<BroadcastId, Arc<Broadcast>>,
    claim: &Claim,
) -> Result<Arc<Broadcast>, StoreError> {
    if let Some(broadcast) = broadcasts.get(&claim.broadcast_id) {
        return Ok(broadcast.clone());
    }
    let broadcast = Arc::new(app.store.broadcast(claim.broadcast_id).await?);
    broadcasts.insert(claim.broadcast_id, broadcast.clone());
    Ok(broadcast)
}

/// The deterministic transaction ID of one delivery.
pub fn transaction_id(broadcast: BroadcastId, user: &UserId) -> OwnedTransactionId {
    OwnedTransactionId::from(format!("broadcast-{}-{}", broadcast.0, user))
}

#[tracing::instrument(skip_all, fields(broadcast = %claim.broadcast_id, user = %claim.user_id, attempt = claim.attempts))]
async fn deliver(app: &App, broadcast: &Broadcast, claim: &Claim) -> Result<(), StoreError> {
    if app.store.is_opted_out(&claim.user_id).await? {
        metrics::counter!("matrix_broadcast_deliveries_total", "outcome" => "skipped").increment(1);
        return app.store.end_delivery(claim, DeliveryState::Skipped, "opted out").await;
    }
    let failure = match send(&app.dms, app.hs(), broadcast, &claim.user_id).await {
        Ok((room, event)) => {
            metrics::counter!("matrix_broadcast_deliveries_total", "outcome" => "delivered").increment(1);
            return app.store.mark_delivered(claim, &room, &event).await;
        }
        Err(DmError::Store(error)) => return Err(error),
        Err(DmError::Matrix(error)) => error,
    };
    let attempts = claim.attempts as u32;
    match failure {
        MatrixError::Permanent { .. } => {
            let reason = human_reason(&failure);
            tracing::info!(%reason, "delivery failed");
            metrics::counter!("matrix_broadcast_deliveries_total", "outcome" => "failed").increment(1);
            app.store.end_delivery(claim, DeliveryState::Failed, &reason).await
        }
        _ if attempts >= app.config.broadcast.max_attempts => {
            let reason = format!("gave up after {attempts} tries: {failure}");
            tracing::warn!(%reason, "delivery failed");
            metrics::counter!("matrix_broadcast_deliveries_total", "outcome" => "failed").increment(1);
            app.store.end_delivery(claim, DeliveryState::Failed, &reason).await
        }
        _ => {
            let delay = retry_after_of(&failure).unwrap_or_else(|| backoff(attempts));
            tracing::debug!(%failure, delay_ms = delay.as_millis() as u64, "delivery will be retried");
            metrics::counter!("matrix_broadcast_deliveries_total", "outcome" => "retried").increment(1);
            app.store.retry_delivery(claim, now_ms() + delay.as_millis() as i64, &failure.to_string()).await
        }
    }
}

fn retry_after_of(error: &MatrixError) -> Option<Duration> {
    match error {
        MatrixError::Transient { retry_after, .. } => *retry_after,
        _ => None,
    }
}

/// Exponential backoff with full jitter: up to 1 s, 2 s, 4 s, … capped at five minutes.
pub fn backoff(attempts: u32) -> Duration {
    let ceiling =
        Duration::from_secs(1).saturating_mul(1 << attempts.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    let millis = rand::thread_rng().gen_range(ceiling.as_millis() as u64 / 2..=ceiling.as_millis() as u64);
    Duration::from_millis(millis)
}

/// A failure as a person reads it in `!bc status`.
fn human_reason(error: &MatrixError) -> String {
    match error.errcode() {
        Some("M_FORBIDDEN") => format!("the homeserver refused ({error})"),
        _ => error.to_string(),
    }
}

/// Ensures the DM and sends the personalised message; returns where it went.
async fn send(
    dms: &Dms,
    homeserver: &dyn Homeserver,
    broadcast: &Broadcast,
    user: &UserId,
) -> Result<(OwnedRoomId, OwnedEventId), DmError> {
    let room = dms.ensure(user).await?;
    let copy = personalise(homeserver, &broadcast.message, user).await?;
    let txn = transaction_id(broadcast.id, user);
    let event = send_json(homeserver, &room, &txn, &copy.event_type, &copy.content).await?;
    Ok((room, event))
}

/// `user`'s copy of `message`, with their display name looked up when the message uses it.
async fn personalise(
    homeserver: &dyn Homeserver,
    message: &StoredMessage,
    user: &UserId,
) -> Result<StoredMessage, MatrixError> {
    let displayname = match message.needs_displayname() {
        true => homeserver.displayname(user).await?,
        false => None,
    };
    Ok(message.personalised(user, displayname.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for _ in 0..100 {
            let first = backoff(1);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let fourth = backoff(4);
            assert!(fourth >= Duration::from_secs(4) && fourth <= Duration::from_secs(8));
            assert!(backoff(40) <= MAX_BACKOFF);
        }
    }

    #[test]
    fn transaction_ids_are_stable_per_broadcast_and_recipient() {
        let user = ruma::user_id!("@alice:example.org");
        assert_eq!(transaction_id(BroadcastId(3), user).as_str(), "broadcast-3-@alice:example.org");
        assert_ne!(transaction_id(BroadcastId(3), user), transaction_id(BroadcastId(4), user));
        assert_ne!(
            transaction_id(BroadcastId(3), user),
            transaction_id(BroadcastId(3), ruma::user_id!("@bob:example.org"))
        );
    }

    use crate::{matrix::fake::forbidden, store::SendOptions, testing::TestApp};

    /// A running broadcast of `text` to a new user `alice` ("Alice Liddell"), and her claim.
    async fn claimed(test: &TestApp, text: &str) -> (Broadcast, Claim) {
        let alice = test.hs.user("alice", Some("Alice Liddell"));
        let control = test.control_room().await;
        let id = test.running_broadcast(&control, text, &[alice], SendOptions::default()).await;
        let claim = test.store().claim_delivery(LEASE_MS).await.unwrap().expect("a due delivery");
        (test.store().broadcast(id).await.unwrap(), claim)
    }

    async fn outcome(test: &TestApp, id: BroadcastId, state: DeliveryState) -> Vec<String> {
        let rows = test.store().deliveries_with_reason(id, state, 10).await.unwrap();
        rows.into_iter().map(|(_, reason)| reason).collect()
    }

    #[tokio::test]
    async fn a_delivery_sends_the_personalised_copy_into_the_dm_once() {
        let test = TestApp::new().await;
        let (broadcast, claim) = claimed(&test, "Hello **{displayname}**").await;
        deliver(&test.app, &broadcast, &claim).await.unwrap();
        let room = test.hs.dms_with(&claim.user_id).pop().expect("a DM");
        assert_eq!(test.hs.bodies_in(&room), ["Hello **Alice Liddell**"]);
        assert_eq!(test.store().delivery_counts(broadcast.id).await.unwrap().delivered, 1);
        // Sent again after a crash: the same transaction ID gives the same event, no second copy.
        deliver(&test.app, &broadcast, &claim).await.unwrap();
        assert_eq!(test.hs.sent_to(&room).len(), 1);
    }

    #[tokio::test]
    async fn temporary_failures_come_back_later_and_honour_retry_after() {
        let test = TestApp::new().await;
        let (broadcast, claim) = claimed(&test, "Hi").await;
        test.hs.fail_next("send_raw", MatrixError::NetworkFailure("connection reset".into()));
        let before = now_ms();
        deliver(&test.app, &broadcast, &claim).await.unwrap();
        let due = test.store().next_due_at().await.unwrap().expect("pending again");
        assert!(
            (before + 500..=now_ms() + 1_000).contains(&due),
            "first backoff is 0.5–1 s, due in {}",
            due - before
        );
        assert_eq!(
            outcome(&test, broadcast.id, DeliveryState::Pending).await,
            ["homeserver unreachable: connection reset"]
        );

        let limited =
            MatrixError::Transient { retry_after: Some(Duration::from_secs(7)), message: "slow down".into() };
        let test = TestApp::new().await;
        let (broadcast, claim) = claimed(&test, "Hi").await;
        test.hs.fail_next("send_raw", limited);
        let before = now_ms();
        deliver(&test.app, &broadcast, &claim).await.unwrap();
        let due = test.store().next_due_at().await.unwrap().expect("pending again");
        assert!(
            (before + 7_000..=now_ms() + 7_000).contains(&due),
            "retry_after wins: due in {}",
            due - before
        );
    }

    #[tokio::test]
    async fn permanent_failures_and_the_last_try_are_recorded_with_a_reason() {
        let test = TestApp::new().await;
        let (broadcast, claim) = claimed(&test, "Hi").await;
        test.hs.fail_next("send_raw", forbidden("blocked"));
        deliver(&test.app, &broadcast, &claim).await.unwrap();
        assert_eq!(
            outcome(&test, broadcast.id, DeliveryState::Failed).await,
            ["the homeserver refused (blocked)"]
        );

        let test = TestApp::with_config("broadcast:\n  max_attempts: 1\n").await;
        let (broadcast, claim) = claimed(&test, "Hi").await;
        test.hs.fail_next("send_raw", MatrixError::NetworkFailure("down".into()));
        deliver(&test.app, &broadcast, &claim).await.unwrap();
        assert_eq!(
            outcome(&test, broadcast.id, DeliveryState::Failed).await,
            ["gave up after 1 tries: homeserver unreachable: down"]
        );
    }

    #[tokio::test]
    async fn someone_who_opted_out_after_queueing_is_skipped_and_not_messaged() {
        let test = TestApp::new().await;
        let (broadcast, claim) = claimed(&test, "Hi").await;
        test.store().opt_out(&claim.user_id).await.unwrap();
        deliver(&test.app, &broadcast, &claim).await.unwrap();
        assert_eq!(outcome(&test, broadcast.id, DeliveryState::Skipped).await, ["opted out"]);
        assert_eq!(test.hs.count("send_raw") + test.hs.count("create_dm"), 0);
    }

    #[tokio::test]
    async fn the_workers_deliver_a_whole_broadcast_and_stop() {
        let test = TestApp::new().await;
        let users: Vec<ruma::OwnedUserId> =
            (0..20).map(|n| test.hs.user(&format!("user{n}"), None)).collect();
        let id =
            test.running_broadcast(&test.control_room().await, "Hi", &users, SendOptions::default()).await;
        let (stop, stopped) = watch::channel(false);
        let workers = tokio::spawn(run_workers(test.app.clone(), stopped));
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while test.store().delivery_counts(id).await.unwrap().delivered < 20 {
            assert!(tokio::time::Instant::now() < until, "20 deliveries within 10 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(true).unwrap();
        workers.await.unwrap();
        for user in &users {
            assert_eq!(test.hs.dms_with(user).len(), 1, "{user}: exactly one DM");
        }
        assert_eq!(test.hs.count("send_raw"), 20, "one copy each");
    }

    /// Issue 10, item 11: a worker whose lease ran out cannot overwrite what the next claim
    /// recorded, nor bring back a cancelled delivery.
    #[tokio::test]
    async fn an_outcome_counts_only_while_the_claim_is_still_held() {
        let test = TestApp::new().await;
        let alice = test.hs.user("alice", None);
        let id =
            test.running_broadcast(&test.control_room().await, "Hi", &[alice], SendOptions::default()).await;
        let stale = test.store().claim_delivery(-1).await.unwrap().expect("claimed, lease already over");
        let current = test.store().claim_delivery(LEASE_MS).await.unwrap().expect("claimed again");
        assert_eq!(current.attempts, 2);
        test.store()
            .mark_delivered(&current, ruma::room_id!("!dm:example.org"), ruma::event_id!("$sent"))
            .await
            .unwrap();
        test.store().end_delivery(&stale, DeliveryState::Failed, "too late").await.unwrap();
        test.store().retry_delivery(&stale, now_ms(), "too late").await.unwrap();
        let counts = test.store().delivery_counts(id).await.unwrap();
        assert_eq!(
            (counts.delivered, counts.failed, counts.pending),
            (1, 0, 0),
            "the stale worker changed nothing"
        );

        let bob = test.hs.user("bob", None);
        let other =
            test.running_broadcast(&test.control_room().await, "Hi", &[bob], SendOptions::default()).await;
        let claim = test.store().claim_delivery(LEASE_MS).await.unwrap().unwrap();
        test.store().cancel_deliveries(other).await.unwrap();
        test.store().retry_delivery(&claim, now_ms(), "busy").await.unwrap();
        assert_eq!(
            test.store().delivery_counts(other).await.unwrap().cancelled,
            1,
            "a cancelled delivery stays cancelled"
        );
    }
}
