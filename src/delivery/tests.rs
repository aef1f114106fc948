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

use ruma::{events::room::member::MembershipState, OwnedUserId};

use crate::{
    base::{
        matrix::fake::forbidden,
        store::{DmState, SendOptions},
    },
    delivery::testing::TestDelivery,
};

/// A running broadcast of `text` to a new user `alice` ("Alice Liddell"), and her claim.
async fn claimed(test: &TestDelivery, text: &str) -> (Broadcast, Claim) {
    let alice = test.hs.user("alice", Some("Alice Liddell"));
    claimed_for(test, &alice, text).await
}

/// A running broadcast of `text` to `user`, and the claim of it.
async fn claimed_for(test: &TestDelivery, user: &UserId, text: &str) -> (Broadcast, Claim) {
    let control = test.control_room().await;
    let id = test.running_broadcast(&control, text, &[user.to_owned()], SendOptions::default()).await;
    let claim = test.store().claim_delivery(LEASE_MS).await.unwrap().expect("a due delivery");
    (test.store().broadcast(id).await.unwrap(), claim)
}

/// One try of `claim`, recorded as the outcome recorder would.
async fn try_once(test: &TestDelivery, outage: &Arc<Outage>, broadcast: &Broadcast, claim: &Claim) {
    let outcome = deliver(&test.delivery, outage, broadcast, claim).await.expect("an outcome");
    test.store().record_outcomes(&[(claim.clone(), outcome)]).await.expect("recorded");
}

async fn outcome(test: &TestDelivery, id: BroadcastId, state: DeliveryState) -> Vec<String> {
    let rows = test.store().deliveries_with_reason(id, state, 10).await.unwrap();
    rows.into_iter().map(|(_, reason)| reason).collect()
}

#[tokio::test]
async fn a_delivery_sends_the_personalised_copy_into_the_dm_once() {
    let test = TestDelivery::new().await;
    let (broadcast, claim) = claimed(&test, "Hello **{displayname}**").await;
    try_once(&test, &Arc::new(Outage::default()), &broadcast, &claim).await;
    let room = test.hs.dms_with(&claim.user_id).pop().expect("a DM");
    assert_eq!(test.hs.bodies_in(&room), ["Hello **Alice Liddell**"]);
    assert_eq!(test.store().delivery_counts(broadcast.id).await.unwrap().delivered, 1);
    // Sent again after a crash: the same transaction ID gives the same event, no second copy.
    try_once(&test, &Arc::new(Outage::default()), &broadcast, &claim).await;
    assert_eq!(test.hs.sent_to(&room).len(), 1);
}

#[tokio::test]
async fn temporary_failures_come_back_later_and_honour_retry_after() {
    let test = TestDelivery::new().await;
    let (broadcast, claim) = claimed(&test, "Hi").await;
    let busy = MatrixError::Transient { retry_after: None, message: "too many requests".into() };
    test.hs.fail_next("send_raw", busy);
    let before = now_ms();
    try_once(&test, &Arc::new(Outage::default()), &broadcast, &claim).await;
    let due = test.store().next_due_at().await.unwrap().expect("pending again");
    assert!(
        (before + 500..=now_ms() + 1_000).contains(&due),
        "first backoff is 0.5–1 s, due in {}",
        due - before
    );
    assert_eq!(
        outcome(&test, broadcast.id, DeliveryState::Pending).await,
        ["homeserver busy (too many requests)"]
    );

    let limited =
        MatrixError::Transient { retry_after: Some(Duration::from_secs(7)), message: "slow down".into() };
    let test = TestDelivery::new().await;
    let (broadcast, claim) = claimed(&test, "Hi").await;
    test.hs.fail_next("send_raw", limited);
    let before = now_ms();
    try_once(&test, &Arc::new(Outage::default()), &broadcast, &claim).await;
    let due = test.store().next_due_at().await.unwrap().expect("pending again");
    assert!((before + 7_000..=now_ms() + 7_000).contains(&due), "retry_after wins: due in {}", due - before);
}

#[tokio::test]
async fn permanent_failures_and_the_last_try_are_recorded_with_a_reason() {
    let test = TestDelivery::new().await;
    let (broadcast, claim) = claimed(&test, "Hi").await;
    test.hs.fail_next("send_raw", forbidden("blocked"));
    try_once(&test, &Arc::new(Outage::default()), &broadcast, &claim).await;
    assert_eq!(
        outcome(&test, broadcast.id, DeliveryState::Failed).await,
        ["the homeserver refused (blocked)"]
    );

    let test = TestDelivery::with_config("broadcast:\n  max_attempts: 1\n").await;
    let (broadcast, claim) = claimed(&test, "Hi").await;
    let busy = MatrixError::Transient { retry_after: None, message: "too many requests".into() };
    test.hs.fail_next("send_raw", busy);
    try_once(&test, &Arc::new(Outage::default()), &broadcast, &claim).await;
    assert_eq!(
        outcome(&test, broadcast.id, DeliveryState::Failed).await,
        ["gave up after 1 tries: homeserver busy (too many requests)"]
    );
}

/// Issue 14: a copy for an encrypted DM whose recipient has no device yet waits in the
/// queue, due again after the wait, with no try used up (even at the last try).
#[tokio::test]
async fn a_copy_waiting_for_a_device_uses_up_no_try() {
    let test = TestDelivery::with_config("broadcast:\n  max_attempts: 1\n").await;
    let (broadcast, claim) = claimed(&test, "Hi").await;
    let waiting =
        MatrixError::Waiting { retry_after: Duration::from_secs(15), message: "no device yet".into() };
    test.hs.fail_next("send_raw", waiting);
    let before = now_ms();
    try_once(&test, &Arc::new(Outage::default()), &broadcast, &claim).await;
    assert_eq!(outcome(&test, broadcast.id, DeliveryState::Pending).await, ["no device yet"]);
    let due = test.store().next_due_at().await.unwrap().expect("pending again");
    assert!((before + 15_000..=now_ms() + 15_000).contains(&due), "due in {}", due - before);
    assert_eq!(test.store().deliveries_waiting(broadcast.id, "no device yet").await.unwrap(), 1);
    // With max_attempts 1 a counted try would have failed it (see the test above).
    assert!(outcome(&test, broadcast.id, DeliveryState::Failed).await.is_empty());
}

/// Issue 10, item 6: tries are not the only bound; a delivery still not sent
/// `give_up_after_hours` after it was queued fails, outage or not.
#[tokio::test]
async fn a_delivery_older_than_the_time_limit_fails_instead_of_waiting_longer() {
    let test = TestDelivery::with_config("broadcast:\n  give_up_after_hours: 1\n").await;
    let (broadcast, claim) = claimed(&test, "Hi").await;
    let old = Claim { queued_at: now_ms() - 3_600_001, ..claim };
    let broadcast = Broadcast { started_at: Some(old.queued_at), ..broadcast };
    test.hs.fail_next("send_raw", MatrixError::NetworkFailure("down".into()));
    let outage = Arc::new(Outage::default());
    try_once(&test, &outage, &broadcast, &old).await;
    assert_eq!(
        outcome(&test, broadcast.id, DeliveryState::Failed).await,
        ["not delivered within 1 hours: homeserver unreachable: down"]
    );
    assert!(!outage.down.load(Ordering::SeqCst), "a failure past the limit pauses nobody");
}

/// Issue 22, item 2: the time limit counts from when the copy became due (the broadcast
/// started: confirmed the next day, or scheduled `--at` 25 h ahead), not from when its
/// audience was resolved; one hiccup inside the limit is retried, not the end.
#[tokio::test]
async fn a_copy_of_a_late_broadcast_is_retried_after_a_hiccup_within_the_limit() {
    let test = TestDelivery::with_config("broadcast:\n  give_up_after_hours: 24\n").await;
    let (broadcast, claim) = claimed(&test, "Hi").await;
    let resolved_yesterday = Claim { queued_at: now_ms() - 25 * 3_600_000, ..claim };
    let busy = MatrixError::Transient { retry_after: None, message: "too many requests".into() };
    test.hs.fail_next("send_raw", busy);
    try_once(&test, &Arc::new(Outage::default()), &broadcast, &resolved_yesterday).await;
    assert!(outcome(&test, broadcast.id, DeliveryState::Failed).await.is_empty(), "not failed");
    assert_eq!(
        outcome(&test, broadcast.id, DeliveryState::Pending).await,
        ["homeserver busy (too many requests)"]
    );
}

#[tokio::test]
async fn someone_who_opted_out_after_queueing_is_skipped_and_not_messaged() {
    let test = TestDelivery::new().await;
    let alice = test.hs.user("alice", None);
    let control = test.control_room().await;
    let id =
        test.running_broadcast(&control, "Hi", std::slice::from_ref(&alice), SendOptions::default()).await;
    test.store().opt_out(&alice).await.unwrap();
    let claim = test.store().claim_delivery(LEASE_MS).await.unwrap().expect("a due delivery");
    assert!(claim.opted_out, "the claim says so, without another query");
    let broadcast = test.store().broadcast(id).await.unwrap();
    try_once(&test, &Arc::new(Outage::default()), &broadcast, &claim).await;
    assert_eq!(outcome(&test, broadcast.id, DeliveryState::Skipped).await, ["opted out"]);
    assert_eq!(test.hs.count("send_raw") + test.hs.count("create_dm"), 0);
}

/// Issue 11: a message the homeserver refuses into a DM whose change the store had not heard
/// of yet (the recipient removed the bot) goes into a new DM.
#[tokio::test]
async fn a_send_refused_into_a_dm_the_bot_was_removed_from_goes_into_a_new_one() {
    let test = TestDelivery::new().await;
    let alice = test.hs.user("alice", None);
    let first = test.delivery.rooms.senders.dms.ensure(&alice).await.unwrap().room;
    test.hs.set_membership(&first, &test.delivery.rooms.bot, MembershipState::Leave); // not pushed yet
    let (broadcast, claim) = claimed_for(&test, &alice, "Hi").await;
    try_once(&test, &Arc::new(Outage::default()), &broadcast, &claim).await;
    let second = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
    assert_ne!(first, second);
    assert_eq!(test.hs.bodies_in(&second), ["Hi"]);
    assert_eq!(test.store().delivery_counts(broadcast.id).await.unwrap().delivered, 1);
}

/// Issue 11: a refused send into a DM the recipient left (the store had not heard) invites
/// them again and sends once more into the same room.
#[tokio::test]
async fn a_send_refused_into_a_dm_the_recipient_left_invites_them_again() {
    let test = TestDelivery::new().await;
    let alice = test.hs.user("alice", None);
    let room = test.delivery.rooms.senders.dms.ensure(&alice).await.unwrap().room;
    test.hs.set_membership(&room, &alice, MembershipState::Leave); // not pushed yet
    test.hs.fail_next("send_raw", forbidden("not allowed"));
    let (broadcast, claim) = claimed_for(&test, &alice, "Hi").await;
    try_once(&test, &Arc::new(Outage::default()), &broadcast, &claim).await;
    assert_eq!(test.hs.count("invite"), 1);
    assert_eq!(test.hs.bodies_in(&room), ["Hi"]);
    assert_eq!(
        test.store().live_dm(None, &alice).await.unwrap().unwrap().membership,
        MembershipState::Invite
    );
}

#[tokio::test]
async fn the_workers_deliver_a_whole_broadcast_and_stop() {
    let test = TestDelivery::new().await;
    let users: Vec<ruma::OwnedUserId> = (0..20).map(|n| test.hs.user(&format!("user{n}"), None)).collect();
    let id = test.running_broadcast(&test.control_room().await, "Hi", &users, SendOptions::default()).await;
    let (stop, stopped) = watch::channel(false);
    let workers = tokio::spawn(run_workers(test.delivery.clone(), stopped));
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

/// Starts the workers on a broadcast of `count` recipients whose sends take `send` each,
/// and stops them once every worker is in a send; returns the broadcast and how long the
/// workers took to stop.
async fn stop_during_sends(test: &TestDelivery, count: usize, send: Duration) -> (BroadcastId, Duration) {
    let users: Vec<OwnedUserId> = (0..count).map(|n| test.hs.user(&format!("user{n}"), None)).collect();
    let id = test.running_broadcast(&test.control_room().await, "Hi", &users, SendOptions::default()).await;
    test.hs.with(|state| state.slow.insert("send_raw", send));
    let (stop, stopped) = watch::channel(false);
    let workers = tokio::spawn(run_workers(test.delivery.clone(), stopped));
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while test.hs.count("send_raw") < 2 {
        assert!(tokio::time::Instant::now() < until, "both workers are sending within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    let stopping = tokio::time::Instant::now();
    tokio::time::timeout(STOP_GRACE + Duration::from_secs(2), workers)
        .await
        .expect("the workers stop within the grace")
        .unwrap();
    (id, stopping.elapsed())
}

/// Issue 13: at a stop the workers finish the sends they are in, record them, and start no
/// other; what was claimed and not sent goes back to the queue: nothing stays `sending`.
#[tokio::test]
async fn a_stop_finishes_the_sends_in_flight_and_starts_no_other() {
    let test = TestDelivery::with_config("broadcast:\n  concurrency: 2\n").await;
    let (id, _) = stop_during_sends(&test, 10, Duration::from_millis(500)).await;
    let counts = test.store().delivery_counts(id).await.unwrap();
    assert_eq!((counts.delivered, counts.pending, counts.sending), (2, 8, 0), "{counts:?}");
    assert_eq!(test.hs.count("send_raw"), 2, "no send started after the stop");
    let claim = test.store().claim_delivery(LEASE_MS).await.unwrap().expect("claimable again at once");
    assert_eq!(claim.attempts, 1, "a delivery given back used up no try");
    for n in 0..10 {
        let user: OwnedUserId = format!("@user{n}:example.org").try_into().unwrap();
        if let Some(dm) = test.store().live_dm(None, &user).await.unwrap() {
            assert_eq!(dm.state, DmState::Ready, "no intent to create a DM is left for {user}");
        }
    }
}

/// Issue 13: a send that hangs does not hold the stop: after [`STOP_GRACE`] its delivery
/// goes back to the queue (a re-send has the same transaction ID: no second copy).
#[tokio::test]
async fn a_hung_send_gives_its_delivery_back_after_the_grace() {
    let test = TestDelivery::with_config("broadcast:\n  concurrency: 2\n").await;
    let (id, took) = stop_during_sends(&test, 4, Duration::from_secs(3600)).await;
    assert!(took >= STOP_GRACE, "the send had its grace: {took:?}");
    let counts = test.store().delivery_counts(id).await.unwrap();
    assert_eq!((counts.delivered, counts.pending, counts.sending), (0, 4, 0), "{counts:?}");
}

/// Issue 10, item 11: a worker whose lease ran out cannot overwrite what the next claim
/// recorded, nor bring back a cancelled delivery.
#[tokio::test]
async fn an_outcome_counts_only_while_the_claim_is_still_held() {
    let test = TestDelivery::new().await;
    let alice = test.hs.user("alice", None);
    let id = test.running_broadcast(&test.control_room().await, "Hi", &[alice], SendOptions::default()).await;
    let stale = test.store().claim_delivery(-1).await.unwrap().expect("claimed, lease already over");
    assert_eq!(test.store().release_expired_leases().await.unwrap(), 1);
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

/// Issue 22, item 3: a 5xx on one copy (a dead remote server behind an invite) while the
/// probe finds the homeserver up is that copy's error: a try used, a backoff, no pause.
#[tokio::test]
async fn a_5xx_on_one_copy_while_the_homeserver_answers_is_that_copys_error() {
    let test = TestDelivery::new().await;
    let (broadcast, claim) = claimed(&test, "Hi").await;
    test.hs.fail_next("send_raw", MatrixError::Unavailable("502 Bad Gateway".into()));
    let outage = Arc::new(Outage::default());
    let before = now_ms();
    try_once(&test, &outage, &broadcast, &claim).await;
    assert!(!outage.down.load(Ordering::SeqCst), "the workers are not paused");
    let due = test.store().next_due_at().await.unwrap().expect("pending again");
    assert!(due >= before + 500, "retried after a backoff, due in {} ms", due - before);
    let next = test.store().claim_delivery(LEASE_MS).await.unwrap();
    assert!(next.is_none(), "not due at once");

    // When the probe cannot reach the homeserver either, it is an outage: a pause, no try.
    let test = TestDelivery::with_config("broadcast:\n  max_attempts: 1\n").await;
    let (broadcast, claim) = claimed(&test, "Hi").await;
    test.hs.fail_next("send_raw", MatrixError::Unavailable("502 Bad Gateway".into()));
    test.hs.fail_next("profile", MatrixError::Unavailable("502 Bad Gateway".into()));
    let outage = Arc::new(Outage::default());
    try_once(&test, &outage, &broadcast, &claim).await;
    assert!(outage.down.load(Ordering::SeqCst), "an outage the probe confirmed pauses the workers");
    assert!(outcome(&test, broadcast.id, DeliveryState::Failed).await.is_empty(), "no try used");
}

/// Issue 10, item 6: while the homeserver cannot be reached, the workers pause (one probe
/// with backoff, no hot loop) and no try is used up; everything goes out once it is back.
#[tokio::test]
async fn an_outage_pauses_the_workers_and_uses_up_no_tries() {
    let test = TestDelivery::with_config("broadcast:\n  max_attempts: 1\n").await;
    let users: Vec<ruma::OwnedUserId> = (0..5).map(|n| test.hs.user(&format!("user{n}"), None)).collect();
    let id = test.running_broadcast(&test.control_room().await, "Hi", &users, SendOptions::default()).await;
    test.hs.with(|state| state.down = true);
    let (stop, stopped) = watch::channel(false);
    let workers = tokio::spawn(run_workers(test.delivery.clone(), stopped));
    tokio::time::sleep(Duration::from_secs(3)).await; // the outage itself
    let during = test.hs.with(|state| state.requests.values().sum::<usize>());
    assert!(during < 20, "no hot loop: {during} requests in a 3 s outage");
    assert_eq!(test.store().delivery_counts(id).await.unwrap().failed, 0, "nothing failed");
    assert!(test.delivery.health.state().is_err(), "the outage is known to /health");
    test.hs.with(|state| state.down = false);
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while test.store().delivery_counts(id).await.unwrap().delivered < 5 {
        assert!(tokio::time::Instant::now() < until, "all delivered within 10 s of the end of the outage");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    workers.await.unwrap();
    assert_eq!(test.hs.with(|state| state.sent.len()), 5, "one copy each");
    assert_eq!(test.delivery.health.state(), Ok(()), "and so is its end");
}

mod personas;

/// Issue 25: a claim reads the queue from the position after the last one (on PostgreSQL the
/// index entries of what was claimed before stay until a vacuum, and were read again by every
/// claim); a delivery made due again behind that position (a lease that ran out) is found by a
/// claim from the start, which the claimer makes every few seconds and after a short claim.
#[tokio::test]
async fn a_claim_reads_on_from_its_position_and_the_start_finds_what_is_behind() {
    let test = TestDelivery::new().await;
    let users: Vec<OwnedUserId> =
        ["alice", "bob", "carol", "dave", "erin"].map(|name| test.hs.user(name, None)).into();
    test.running_broadcast(&test.control_room().await, "Hi", &users, SendOptions::default()).await;
    let store = test.store();
    let names = |claims: &[Claim]| {
        claims.iter().map(|claim| claim.user_id.localpart().to_owned()).collect::<Vec<_>>()
    };

    let first = store.claim_deliveries_from(&QueuePosition::START, -1, 2).await.unwrap();
    assert_eq!(names(&first), ["alice", "bob"], "their leases are over at once");
    let next = store.claim_deliveries_from(&QueuePosition::of_first(&first), LEASE_MS, 2).await.unwrap();
    assert_eq!(names(&next), ["carol", "dave"]);
    assert_eq!(store.release_expired_leases().await.unwrap(), 2, "alice and bob are due again");

    let after = store.claim_deliveries_from(&QueuePosition::of_first(&next), LEASE_MS, 5).await.unwrap();
    assert_eq!(names(&after), ["erin"], "alice and bob are behind the position");
    let mut reader =
        QueueReader { position: QueuePosition::of_first(&next), restarted_at: Some(Instant::now()) };
    reader.advance(&after, 5);
    assert_eq!(reader.position, QueuePosition::START, "a short claim starts again from the start");
    let behind = store.claim_deliveries_from(&reader.position, LEASE_MS, 5).await.unwrap();
    assert_eq!(names(&behind), ["alice", "bob"]);
    assert_eq!((behind[0].attempts, behind[1].attempts), (2, 2));
}
