use super::*;

#[test]
fn reply_fallbacks_are_stripped() {
    assert_eq!(strip_reply_fallback("> <@a:b> hello\n> more\n\n!bc send x"), "!bc send x");
    assert_eq!(strip_reply_fallback("!bc send x"), "!bc send x");
}

#[test]
fn command_lines_start_with_the_prefix_as_a_word() {
    assert_eq!(command_line("!bc", "!bc help\nbody"), Some("!bc help"));
    assert_eq!(command_line("!bc", "!bc"), Some("!bc"));
    assert_eq!(command_line("!bc", "!bcx help"), None);
    assert_eq!(command_line("!bc", "hello !bc help"), None);
}

#[tokio::test]
async fn a_read_receipt_from_the_inbox_marks_the_last_broadcast_in_that_dm_read() {
    let test = crate::edge::testing::TestApp::new().await;
    let alice = test.hs.user("alice", None);
    let control = test.control_room().await;
    let id = test.running_broadcast(&control, "News", std::slice::from_ref(&alice), Default::default()).await;
    let claim = test.store().claim_delivery(60_000).await.unwrap().unwrap();
    let dm = test.broadcasts.rooms.senders.dms.ensure(&alice).await.unwrap().room;
    test.store().mark_delivered(&claim, &dm, ruma::event_id!("$copy")).await.unwrap();
    let receipt = serde_json::json!({ "type": RECEIPT_EVENT_TYPE, "room_id": dm, "sender": alice });
    // Someone else's receipt in her DM, or hers elsewhere, counts for nothing.
    let other = serde_json::json!({ "type": RECEIPT_EVENT_TYPE, "room_id": control, "sender": alice });
    dispatch(&test.broadcasts, &other.to_string()).await;
    assert_eq!(test.store().read_and_replied(id).await.unwrap(), (0, 0));
    dispatch(&test.broadcasts, &receipt.to_string()).await;
    assert_eq!(test.store().read_and_replied(id).await.unwrap(), (1, 0));
}

/// Issue 11: the member events pushed from a DM keep the recipient's membership in the store
/// and retire the DM when a third person comes in, so that a send needs no request to know.
#[tokio::test]
async fn member_events_in_a_dm_are_kept_and_a_third_member_retires_it() {
    let test = crate::edge::testing::TestApp::new().await;
    let alice = test.hs.user("alice", None);
    let dm = test.broadcasts.rooms.senders.dms.ensure(&alice).await.unwrap().room;
    let member = |sender: &ruma::UserId, state_key: &ruma::UserId, membership: &str, n: u32| {
        serde_json::json!({ "type": "m.room.member", "event_id": format!("$member{n}"), "room_id": dm,
            "sender": sender, "state_key": state_key, "origin_server_ts": 1,
            "content": { "membership": membership } })
        .to_string()
    };
    dispatch(&test.broadcasts, &member(&alice, &alice, "join", 1)).await;
    let stored = test.store().live_dm(None, &alice).await.unwrap().unwrap();
    assert_eq!(stored.membership, MembershipState::Join);
    dispatch(&test.broadcasts, &member(&alice, &alice, "leave", 2)).await;
    assert_eq!(test.store().live_dm(None, &alice).await.unwrap().unwrap().membership, MembershipState::Leave);
    let mallory = test.hs.user("mallory", None);
    dispatch(&test.broadcasts, &member(&alice, &mallory, "invite", 3)).await;
    assert_eq!(test.store().live_dm(None, &alice).await.unwrap(), None, "retired");
}

/// Issue 10, item 13: in a reply thread, a command without message lines is not taken as a
/// reply to the thread's latest event (a recipient's private reply) but asks for the message.
#[tokio::test]
async fn a_command_in_a_thread_does_not_send_the_thread_fallback() {
    let test = crate::edge::testing::TestApp::new().await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", None);
    let private = test.hs.with(|state| {
        let event_id: OwnedEventId = "$private-reply".try_into().unwrap();
        let event = serde_json::json!({ "type": "m.room.message", "room_id": control, "sender": test.broadcasts.rooms.bot,
                                        "content": { "msgtype": "m.text", "body": "alice's secret" } });
        state.events.insert(event_id.clone(), event);
        event_id
    });
    let command = serde_json::json!({
        "type": "m.room.message", "room_id": control, "sender": "@admin:example.org", "event_id": "$command",
        "origin_server_ts": 1, "content": { "msgtype": "m.text", "body": format!("!bc send {alice}"),
            "m.relates_to": { "rel_type": "m.thread", "event_id": "$root", "is_falling_back": true,
                              "m.in_reply_to": { "event_id": private } } } });
    dispatch(&test.broadcasts, &command.to_string()).await;
    let made = test.store().broadcast_by_command(ruma::event_id!("$command")).await.unwrap();
    assert_eq!(made.map(|broadcast| broadcast.message.summary()), None, "no broadcast of the fallback");
    let answers = test.hs.bodies_in(&control);
    assert!(answers.last().is_some_and(|answer| answer.starts_with("What should I send?")), "{answers:?}");
}

/// Issue 10, item 5: a control room that becomes public, knockable, restricted or
/// world-readable stops being one, says so, and gets no more replies.
#[tokio::test]
async fn a_control_room_opened_up_later_stops_being_one() {
    for (event_type, content) in [
        ("m.room.join_rules", serde_json::json!({ "join_rule": "public" })),
        ("m.room.join_rules", serde_json::json!({ "join_rule": "knock" })),
        ("m.room.join_rules", serde_json::json!({ "join_rule": "restricted", "allow": [] })),
        ("m.room.history_visibility", serde_json::json!({ "history_visibility": "world_readable" })),
    ] {
        let test = crate::edge::testing::TestApp::new().await;
        let control = test.control_room().await;
        let event = serde_json::json!({ "type": event_type, "state_key": "", "room_id": control,
            "sender": "@admin:example.org", "event_id": "$opened", "origin_server_ts": 1, "content": content });
        dispatch(&test.broadcasts, &event.to_string()).await;
        assert!(!test.store().is_control_room(&control).await.unwrap(), "{content}");
        let said = test.hs.bodies_in(&control);
        assert!(said.last().is_some_and(|text| text.contains("no longer a control room")), "{said:?}");
    }
    let test = crate::edge::testing::TestApp::new().await;
    let control = test.control_room().await;
    let event = serde_json::json!({ "type": "m.room.join_rules", "state_key": "", "room_id": control,
        "sender": "@admin:example.org", "event_id": "$closed", "origin_server_ts": 1,
        "content": { "join_rule": "invite" } });
    dispatch(&test.broadcasts, &event.to_string()).await;
    assert!(test.store().is_control_room(&control).await.unwrap(), "invite-only stays a control room");
}

/// Runs the dispatcher on `test`'s inbox; it stops when the returned sender is dropped.
fn dispatcher(test: &crate::edge::testing::TestApp) -> watch::Sender<bool> {
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(run(test.broadcasts.clone(), test.inbox_ready.clone(), shutdown));
    stop
}

/// Puts `events` into the inbox, as a transaction from the homeserver does.
async fn push(test: &crate::edge::testing::TestApp, events: &[Value]) {
    let bot = &test.broadcasts.rooms.bot;
    let events: Vec<_> = events
        .iter()
        .map(|event| crate::base::store::Arrival {
            key: event["event_id"].as_str().unwrap().to_owned(),
            json: event.to_string(),
            lane: crate::edge::appservice::transactions::lane_of(bot, event),
        })
        .collect();
    test.store().push_inbox(&events).await.unwrap();
    test.inbox_ready.notify_one();
}

/// Waits until `done` holds (at most `within`), saying `what` was waited for if it does not.
async fn eventually(within: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn command(room: &RoomId, n: u32, body: &str) -> Value {
    serde_json::json!({ "type": "m.room.message", "room_id": room, "sender": "@admin:example.org",
        "event_id": format!("$command{n}"), "origin_server_ts": 1,
        "content": { "msgtype": "m.text", "body": body } })
}

/// Issue 22, item 4: invites from a remote server that never answers are declined in bounded
/// background work; a command that comes after them is answered at once.
#[tokio::test]
async fn invites_from_a_server_that_never_answers_do_not_hold_up_a_command() {
    let test = crate::edge::testing::TestApp::new().await;
    let control = test.control_room().await;
    test.hs.with(|state| state.slow.insert("leave", Duration::from_secs(3600)));
    let invites: Vec<Value> = (0..100)
        .map(|n| {
            serde_json::json!({ "type": "m.room.member", "state_key": test.broadcasts.rooms.bot,
                "room_id": format!("!stranger{n}:slow.example"), "sender": format!("@s{n}:slow.example"),
                "event_id": format!("$invite{n}"), "origin_server_ts": 1,
                "content": { "membership": "invite", "is_direct": true } })
        })
        .collect();
    push(&test, &invites).await;
    push(&test, &[command(&control, 1, "!bc help")]).await;
    let _running = dispatcher(&test);
    eventually(Duration::from_secs(1), "the command is answered", async || {
        !test.hs.bodies_in(&control).is_empty()
    })
    .await;
    assert_eq!(test.hs.count("leave"), BACKGROUND_AT_ONCE, "declines in flight at most");
}

/// Issue 22, item 7: a database error while a third member joins a DM keeps the event in the
/// inbox; it is tried again, and the DM is retired once the database answers.
#[tokio::test]
async fn a_database_error_keeps_an_event_for_another_try() {
    let test = crate::edge::testing::TestApp::new().await;
    let alice = test.hs.user("alice", None);
    let dm = test.broadcasts.rooms.senders.dms.ensure(&alice).await.unwrap().room;
    test.store()
        .execute_raw(
            "CREATE TRIGGER broken BEFORE UPDATE ON dm_rooms BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END",
        )
        .await;
    let mallory = test.hs.user("mallory", None);
    let joined = serde_json::json!({ "type": "m.room.member", "event_id": "$mallory", "room_id": dm,
        "sender": mallory, "state_key": mallory, "origin_server_ts": 1, "content": { "membership": "join" } });
    push(&test, &[joined]).await;
    let _running = dispatcher(&test);
    eventually(Duration::from_secs(2), "the event is put off for a later try", async || {
        test.store().inbox_next_due().await.unwrap().is_some_and(|due| due > crate::base::store::now_ms())
    })
    .await;
    assert!(test.store().live_dm(None, &alice).await.unwrap().is_some(), "not retired yet");
    test.store().execute_raw("DROP TRIGGER broken").await;
    eventually(Duration::from_secs(5), "the DM is retired on the next try", async || {
        test.store().live_dm(None, &alice).await.unwrap().is_none()
    })
    .await;
    eventually(Duration::from_secs(1), "the event leaves the inbox", async || {
        test.store().inbox_next_due().await.unwrap().is_none()
    })
    .await;
}

/// Issue 22, item 7: a reply whose relay meets a busy homeserver is relayed on a later try;
/// one the homeserver refuses is not tried again.
#[tokio::test]
async fn a_relay_that_meets_a_busy_homeserver_is_tried_again() {
    let test = crate::edge::testing::TestApp::new().await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", None);
    let id = test.running_broadcast(&control, "News", std::slice::from_ref(&alice), Default::default()).await;
    test.deliver_all(id, 1).await;
    let dm = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
    let reply = |n: u32| {
        serde_json::json!({ "type": "m.room.message", "room_id": dm, "sender": alice,
            "event_id": format!("$reply{n}"), "origin_server_ts": 1,
            "content": { "msgtype": "m.text", "body": format!("reply {n}") } })
    };
    let busy = || crate::base::matrix::MatrixError::Transient { retry_after: None, message: "busy".into() };
    test.hs.fail_next("send_raw", busy());
    push(&test, &[reply(1)]).await;
    let _running = dispatcher(&test);
    eventually(Duration::from_secs(5), "the reply is relayed", async || {
        test.hs.bodies_in(&control).contains(&"reply 1".to_owned())
    })
    .await;
    eventually(Duration::from_secs(1), "the event leaves the inbox", async || {
        test.store().inbox_next_due().await.unwrap().is_none()
    })
    .await;
    let refused = crate::base::matrix::MatrixError::Permanent {
        errcode: Some("M_FORBIDDEN".into()),
        status: Some(403),
        message: "no".into(),
    };
    test.hs.fail_next("send_raw", refused);
    let sends = test.hs.count("send_raw");
    push(&test, &[reply(2)]).await;
    eventually(Duration::from_secs(1), "a refused relay leaves the inbox", async || {
        test.hs.count("send_raw") > sends && test.store().inbox_next_due().await.unwrap().is_none()
    })
    .await;
    assert!(!test.hs.bodies_in(&control).contains(&"reply 2".to_owned()));
}

/// Issue 22, item 13: a transaction the homeserver pushes again (the bot crashed before its
/// answer) is not handled twice.
#[tokio::test]
async fn an_event_pushed_again_is_handled_once() {
    let test = crate::edge::testing::TestApp::new().await;
    let control = test.control_room().await;
    let _running = dispatcher(&test);
    let before = test.hs.count("send_raw");
    push(&test, &[command(&control, 1, "!bc help")]).await;
    eventually(Duration::from_secs(2), "the command is answered", async || {
        test.hs.bodies_in(&control).len() == 1 && test.store().inbox_next_due().await.unwrap().is_none()
    })
    .await;
    let per_command = test.hs.count("send_raw") - before;
    push(&test, &[command(&control, 1, "!bc help")]).await;
    push(&test, &[command(&control, 2, "!bc help")]).await;
    eventually(Duration::from_secs(2), "the next command is answered", async || {
        test.hs.bodies_in(&control).len() >= 2
    })
    .await;
    // Requests, not messages: the homeserver would drop a repeated transaction ID itself.
    assert_eq!(test.hs.count("send_raw"), before + 2 * per_command, "the command pushed again is left alone");
}

/// Issue 25, item 4: the joins that thousands of new DMs bring in are handled after a command
/// that came behind them. Seen failing before the inbox had lanes: the command was read after
/// every join, each costing a few statements, two minutes at 100,000 on PostgreSQL.
#[tokio::test]
async fn a_command_is_handled_before_the_joins_pushed_ahead_of_it() {
    let test = crate::edge::testing::TestApp::new().await;
    let control = test.control_room().await;
    let joins: Vec<Value> = (0..2000)
        .map(|n| {
            let user = format!("@recipient{n}:example.org");
            serde_json::json!({ "type": "m.room.member", "state_key": user, "sender": user,
                "room_id": format!("!dm{n}:example.org"), "event_id": format!("$join{n}"),
                "origin_server_ts": 1, "content": { "membership": "join" } })
        })
        .collect();
    push(&test, &joins).await;
    push(&test, &[command(&control, 1, "!bc help")]).await;
    let first: Vec<String> =
        test.store().inbox_batch(3).await.unwrap().into_iter().map(|event| event.key).collect();
    assert_eq!(first, ["$command1", "$join0", "$join1"], "the command first, the joins in their order");
    let _running = dispatcher(&test);
    eventually(Duration::from_secs(5), "the command is answered", async || {
        !test.hs.bodies_in(&control).is_empty()
    })
    .await;
    let left = test.store().inbox_batch(5000).await.unwrap().len();
    assert!(left >= 1000, "the command waited for {} joins", 2000 - left);
}
