//! Hostile input, against a real Synapse and the bot's HTTP endpoint: bodies too large or too
//! deeply nested, invalid UTF-8, events of unknown types or with fields of the wrong type,
//! 100,000-character commands and replies, a 10,000-word audience. Each gets a clear answer
//! (a 4xx, or a refusal naming the limit) or is handled gracefully, and afterwards the bot
//! still answers a real `!bc help`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{
    bot_config,
    scenario::broadcast_and_join,
    transactions::{help_event, put_transaction, text_event},
    wait_for, TestEnv, TestUser,
};

/// A bot that reads bodies up to 1 MiB, so that 100,000-character events reach its parsers.
async fn start() -> TestEnv {
    TestEnv::start_with_config(|synapse_url, bot_port, dir| {
        let mut config = bot_config(synapse_url, bot_port, dir, "");
        config.appservice.max_body_bytes = 1 << 20;
        config
    })
    .await
}

/// Pushes `body` with the right hs_token; the status and the errcode.
async fn push(env: &TestEnv, txn: &str, body: impl Into<reqwest::Body>) -> (u16, Option<String>) {
    let token = env.config.appservice.hs_token.clone();
    let (status, answer) = put_transaction(env, txn, Some(&token), body.into()).await;
    (status, answer["errcode"].as_str().map(str::to_owned))
}

/// Pushes one text message of `sender` in `room` and waits for the bot's reply to it (a pushed
/// event exists only for the bot: Synapse refuses the reaction, not the reply).
async fn pushed_command(env: &TestEnv, admin: &TestUser, room: &str, id: &str, body: &str) -> String {
    let batch = json!({ "events": [text_event(id, room, &admin.user_id, body)] });
    assert_eq!(push(env, &format!("t{id}"), batch.to_string()).await, (200, None), "{id} accepted");
    let reply = admin.wait_for_reply(room, &env.bot_id(), id).await;
    reply["content"]["body"].as_str().unwrap_or_default().to_owned()
}

/// A real `!bc help` from a real client is answered with ✅.
async fn still_serving(env: &TestEnv, admin: &TestUser, room: &str) {
    let command = admin.send_text(room, "!bc help").await;
    let answer = admin.wait_for_answer(room, &env.bot_id(), &command).await;
    assert_eq!(answer.reaction, "✅", "the bot still answers: {}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_nested_and_invalid_bodies_get_a_clear_4xx_and_the_bot_keeps_serving() {
    let env = start().await;
    let admin = env.user("admin").await;
    let room = env.control_room(&admin).await;

    let oversized = json!({ "events": [{ "padding": "x".repeat(2 << 20) }] }).to_string();
    assert_eq!(
        push(&env, "t-big", oversized).await,
        (413, Some("M_TOO_LARGE".into())),
        "over max_body_bytes"
    );
    let nested = "[".repeat(100_000);
    assert_eq!(push(&env, "t-nested", nested).await, (400, Some("M_NOT_JSON".into())), "100,000 levels of [");
    let deep_event = format!(r#"{{"events": [{}1{}]}}"#, r#"{"a":"#.repeat(50_000), "}".repeat(50_000));
    assert_eq!(push(&env, "t-deep", deep_event).await, (400, Some("M_NOT_JSON".into())), "a deep event");
    let invalid_utf8 = b"{\"events\": [{\"type\": \"m.room.message\", \"body\": \"\xff\xfe\xc0\"}]}".to_vec();
    assert_eq!(push(&env, "t-utf8", invalid_utf8).await, (400, Some("M_NOT_JSON".into())), "invalid UTF-8");
    let lone_surrogate = r#"{"events": [{"type": "\ud800"}]}"#;
    assert_eq!(push(&env, "t-surrogate", lone_surrogate).await, (400, Some("M_NOT_JSON".into())));
    for (n, not_a_transaction) in
        ["[]", "\"events\"", "null", r#"{"events": {"0": 1}}"#].into_iter().enumerate()
    {
        let answer = push(&env, &format!("t-shape-{n}"), not_a_transaction).await;
        assert_eq!(answer, (200, None), "{not_a_transaction} has no events: acknowledged");
    }
    still_serving(&env, &admin, &room).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_wrongly_typed_events_are_skipped_one_by_one_and_nothing_panics() {
    let env = start().await;
    let admin = env.user("admin").await;
    let room = env.control_room(&admin).await;
    let sender = admin.user_id.as_str();
    let event = |id: &str, event_type: &str, content: Value| {
        json!({ "event_id": id, "type": event_type, "room_id": room, "sender": sender,
                "origin_server_ts": 1, "content": content })
    };
    let mut no_sender = help_event("$no-sender", &room, sender);
    no_sender.as_object_mut().unwrap().remove("sender");
    let mut room_number = help_event("$room-number", &room, sender);
    room_number["room_id"] = json!(12);
    let mut sender_object = help_event("$sender-object", &room, sender);
    sender_object["sender"] = json!({ "user": sender });
    let batch = json!({
        "events": [
            event("$unknown", "org.example.unknown", json!({ "anything": [1, 2, 3] })),
            event("$body-number", "m.room.message", json!({ "msgtype": "m.text", "body": 12 })),
            event("$content-string", "m.room.message", json!("!bc help")),
            event("$msgtype-array", "m.room.message", json!({ "msgtype": ["m.text"], "body": "!bc help" })),
            event("$membership-number", "m.room.member", json!({ "membership": 5 })),
            event("$reaction", "m.reaction", json!({ "m.relates_to": { "rel_type": "m.annotation", "key": 5 } })),
            event("$redaction", "m.room.redaction", json!({ "redacts": ["$x"] })),
            event("$poll-answer", "org.matrix.msc3381.poll.response", json!({ "m.relates_to": "$x" })),
            event("$join-rules", "m.room.join_rules", json!({ "join_rule": { "public": true } })),
            no_sender,
            room_number,
            sender_object,
            help_event("$help-after-all-that", &room, sender),
        ],
        "ephemeral": [
            { "type": "m.receipt", "room_id": room, "content": { "$e": { "m.read": ["@a:test.local"] } } },
            { "type": "m.receipt", "room_id": 5, "content": "nothing" },
        ],
    });
    assert_eq!(push(&env, "t-mixed", batch.to_string()).await, (200, None), "accepted, bad events skipped");
    let reply = admin.wait_for_reply(&room, &env.bot_id(), "$help-after-all-that").await;
    assert!(reply["content"]["body"].as_str().unwrap_or_default().contains("Commands"), "{reply}");
    // The dispatcher went through every event before the last, and none was taken for a command.
    let answered: Vec<Value> = admin
        .events(&room)
        .await
        .into_iter()
        .filter(|event| event["sender"] == env.bot_id().as_str() && event["type"] == "m.room.message")
        .filter(|event| {
            event["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] != "$help-after-all-that"
        })
        .filter(|event| event["content"]["m.relates_to"]["m.in_reply_to"].is_object())
        .collect();
    assert_eq!(answered, Vec::<Value>::new(), "no malformed event was answered as a command");
    still_serving(&env, &admin, &room).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_commands_and_huge_audiences_are_refused_naming_the_limit_before_anything_is_queued() {
    let env = start().await;
    let admin = env.user("admin").await;
    let alice = env.user("alice").await;
    let room = env.control_room(&admin).await;

    let body = format!("!bc send {} --yes\n{}", alice.user_id, "x".repeat(100_000));
    let answer = pushed_command(&env, &admin, &room, "$long-body", &body).await;
    assert!(answer.starts_with("The message is too long: 100,000 characters"), "{answer:.300}");
    assert!(answer.contains("at most 30,000 bytes"), "the limit is named: {answer:.300}");

    let line = format!("!bc send {} --yes {} --yse", alice.user_id, "y".repeat(100_000));
    let answer = pushed_command(&env, &admin, &room, "$long-line", &line).await;
    assert!(answer.len() < 3_000, "a short answer to a 100,000-character line: {} bytes", answer.len());
    assert!(answer.contains("yyy --yse\n") && answer.contains("^^^^^"), "a caret under --yse: {answer}");

    let words: Vec<String> = (0..10_000).map(|n| format!("@user{n}:test.local")).collect();
    let started = Instant::now();
    let answer = pushed_command(
        &env,
        &admin,
        &room,
        "$huge-audience",
        &format!("!bc send {} --yes\nHi", words.join(" ")),
    )
    .await;
    assert!(answer.contains("too many words: 10,000, at most 1,000"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10), "refused in {:?}", started.elapsed());

    let line = format!("!bc send {} --name {} --yes\nHi", alice.user_id, "n".repeat(100_000));
    let answer = pushed_command(&env, &admin, &room, "$long-name", &line).await;
    assert_eq!(answer, "The name is too long: 100,000 characters, at most 100.");

    // Through Synapse, as typed: the command fits into one event (45,000 characters), but the
    // broadcast's event would not (bold text as HTML too): refused at once, not failed per copy.
    let bold = "**bold** ".repeat(5_000);
    let command = admin.send_text(&room, &format!("!bc send {} --yes\n{bold}", alice.user_id)).await;
    let answer = admin.wait_for_answer(&room, &env.bot_id(), &command).await;
    assert_eq!(answer.reaction, "❌", "{}", answer.body);
    assert!(answer.body.starts_with("The message is too long: 45,000 characters"), "{}", answer.body);

    assert_eq!(env.count_in_bot_database("SELECT COUNT(*) FROM broadcasts").await, 0, "nothing made");
    assert_eq!(env.count_in_bot_database("SELECT COUNT(*) FROM deliveries").await, 0, "nothing queued");
    still_serving(&env, &admin, &room).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_of_100000_characters_is_relayed_cut_saying_so() {
    let env = start().await;
    let bot = env.bot_id();
    let (admin, root, alice) = (env.user("admin").await, env.server_admin().await, env.user("alice").await);
    let room = env.control_room(&admin).await;
    let dms = broadcast_and_join(&env, &admin, &root, &room, &[&alice], "Any thoughts?", 1).await;

    let long = format!("My thoughts: {}", "ü".repeat(100_000));
    let batch = json!({ "events": [text_event("$long-reply", &dms[0], &alice.user_id, &long)] });
    assert_eq!(push(&env, "t-long-reply", batch.to_string()).await, (200, None));
    let relayed = wait_for("the relayed reply", || async {
        admin.events(&room).await.into_iter().find(|event| {
            event["sender"] == bot.as_str()
                && event["content"]["body"].as_str().is_some_and(|body| body.starts_with("My thoughts: üü"))
        })
    })
    .await;
    let body = relayed["content"]["body"].as_str().unwrap();
    let note = body.rsplit("\n\n").next().unwrap_or_default();
    assert!(note.ends_with("of 100013 characters)"), "it says it was cut: {note:.100}");
    assert_eq!(relayed["content"]["m.relates_to"]["rel_type"], "m.thread", "in alice's thread");

    alice.send_text(&dms[0], "and a short one").await;
    admin.wait_for_message(&room, &bot, "and a short one").await;
    still_serving(&env, &admin, &room).await;
}
