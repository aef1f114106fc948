//! Replies come home: what recipients write in their DMs reaches the control room, in a thread
//! per person and broadcast, and answers written there go back; `stop`/`start`; read counts.

use serde_json::{json, Value};

use crate::harness::{client::encode, scenario::broadcast_and_join, wait_for, TestEnv, TestUser};

/// The thread root the bot started in `room` whose body starts with `title`.
async fn thread_root(user: &TestUser, room: &str, bot: &str, title: &str) -> String {
    wait_for(&format!("a thread {title:?}"), || async {
        user.events(room).await.into_iter().find_map(|event| {
            let body = event["content"]["body"].as_str()?;
            (event["sender"] == bot && body.starts_with(title))
                .then(|| event["event_id"].as_str().unwrap().to_owned())
        })
    })
    .await
}

/// The bot's messages in `room` that are in the thread of `root`.
async fn in_thread(user: &TestUser, room: &str, bot: &str, root: &str) -> Vec<Value> {
    user.events(room)
        .await
        .into_iter()
        .filter(|event| {
            event["sender"] == bot
                && event["content"]["m.relates_to"]["rel_type"] == "m.thread"
                && event["content"]["m.relates_to"]["event_id"] == root
        })
        .map(|event| event["content"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_reach_their_own_thread_and_answers_go_back_to_that_person_only() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    alice.set_displayname("Alice Liddell").await;
    let room = env.control_room(&admin).await;
    let dms =
        broadcast_and_join(&env, &admin, &root, &room, &[&alice, &bob], "How was the offsite?", 1).await;

    alice.send_content(&dms[0], json!({ "msgtype": "m.text", "body": "It was *great*", "format": "org.matrix.custom.html", "formatted_body": "It was <em>great</em>" })).await;
    alice
        .send_content(
            &dms[0],
            json!({ "msgtype": "m.image", "body": "photo.jpg", "url": "mxc://test.local/photo" }),
        )
        .await;
    bob.send_text(&dms[1], "Too long").await;

    let alice_root = thread_root(
        &admin,
        &room,
        &bot,
        "Replies from “Alice Liddell” (@alice:test.local) to «How was the offsite?» #1",
    )
    .await;
    let bob_root = thread_root(&admin, &room, &bot, "Replies from “bob” (@bob:test.local)").await;
    let alice_thread = wait_for("alice's two replies", || async {
        let thread = in_thread(&admin, &room, &bot, &alice_root).await;
        (thread.len() == 2).then_some(thread)
    })
    .await;
    assert_eq!(alice_thread[0]["formatted_body"], "It was <em>great</em>", "formatting is kept");
    assert_eq!(
        (alice_thread[1]["msgtype"].as_str(), alice_thread[1]["url"].as_str()),
        (Some("m.image"), Some("mxc://test.local/photo"))
    );
    let bob_thread = wait_for("bob's reply", || async {
        let thread = in_thread(&admin, &room, &bot, &bob_root).await;
        (thread.len() == 1).then_some(thread)
    })
    .await;
    assert_eq!(bob_thread[0]["body"], "Too long", "bob's reply is in bob's thread only");

    // The admin answers in alice's thread: it reaches alice's DM, ✅, and not bob's.
    let answer = admin
        .send_content(
            &room,
            json!({ "msgtype": "m.text", "body": "Glad to hear!",
            "m.relates_to": { "rel_type": "m.thread", "event_id": alice_root } }),
        )
        .await;
    alice.wait_for_message(&dms[0], &bot, "Glad to hear!").await;
    wait_for("✅ on the answer", || async {
        admin.events(&room).await.into_iter().find(|event| {
            event["type"] == "m.reaction"
                && event["content"]["m.relates_to"]["event_id"] == answer.as_str()
                && event["content"]["m.relates_to"]["key"] == "✅"
        })
    })
    .await;
    let bob_saw = bob.events(&dms[1]).await;
    assert!(
        bob_saw.iter().all(|event| event["content"]["body"] != "Glad to hear!"),
        "bob never sees alice's answer"
    );

    let command = admin.send_text(&room, "!bc status #1").await;
    let status = admin.wait_for_answer(&room, &bot, &command).await;
    assert!(status.body.contains("replied: 2"), "{}", status.body);
    assert!(
        status.body.contains("@alice:test.local") && status.body.contains("@bob:test.local"),
        "{}",
        status.body
    );

    // Bob leaves; an answer to him cannot be delivered, and says why.
    bob.leave(&dms[1]).await;
    bob.wait_for_membership(&dms[1], &bob.user_id, "leave").await;
    let answer = admin
        .send_content(
            &room,
            json!({ "msgtype": "m.text", "body": "Sorry to hear",
            "m.relates_to": { "rel_type": "m.thread", "event_id": bob_root } }),
        )
        .await;
    let reason = wait_for("the reason it was not delivered", || async {
        admin.events(&room).await.into_iter().find_map(|event| {
            let body = event["content"]["body"].as_str()?;
            (event["sender"] == bot.as_str() && body.starts_with("Not delivered")).then(|| body.to_owned())
        })
    })
    .await;
    assert!(reason.contains("has left"), "{reason}");
    let reactions: Vec<Value> = admin
        .events(&room)
        .await
        .into_iter()
        .filter(|event| {
            event["type"] == "m.reaction" && event["content"]["m.relates_to"]["event_id"] == answer.as_str()
        })
        .collect();
    assert_eq!(reactions.len(), 1);
    assert_eq!(reactions[0]["content"]["m.relates_to"]["key"], "❌");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_opts_out_of_later_broadcasts_and_start_opts_back_in() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let room = env.control_room(&admin).await;
    let dms = broadcast_and_join(&env, &admin, &root, &room, &[&alice, &bob], "First", 1).await;

    alice.send_text(&dms[0], "STOP").await;
    alice.wait_for_message(&dms[0], &bot, "You will get no more broadcasts").await;
    broadcast_and_join(&env, &admin, &root, &room, &[&alice, &bob], "Second", 2).await;
    let command = admin.send_text(&room, "!bc status #2").await;
    let status = admin.wait_for_answer(&room, &bot, &command).await;
    assert!(status.body.contains("delivered: 1") && status.body.contains("skipped: 1"), "{}", status.body);
    assert!(status.body.contains("`@alice:test.local`: opted out"), "{}", status.body);
    assert!(alice.events(&dms[0]).await.iter().all(|event| event["content"]["body"] != "Second"));
    // "stop" itself is not relayed as a reply.
    assert!(admin.events(&room).await.iter().all(|event| event["content"]["body"] != "STOP"));

    alice.send_text(&dms[0], "start").await;
    alice.wait_for_message(&dms[0], &bot, "You will get broadcasts again").await;
    broadcast_and_join(&env, &admin, &root, &room, &[&alice, &bob], "Third", 3).await;
    alice.wait_for_message(&dms[0], &bot, "Third").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_receipt_counts_as_read() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let room = env.control_room(&admin).await;
    let dms = broadcast_and_join(&env, &admin, &root, &room, &[&alice, &bob], "Please read", 1).await;
    let message = alice.wait_for_message(&dms[0], &bot, "Please read").await;
    let path = format!(
        "/rooms/{}/receipt/m.read/{}",
        encode(&dms[0]),
        encode(message["event_id"].as_str().unwrap())
    );
    let (status, _) = alice.call(reqwest::Method::POST, &path, Some(json!({}))).await;
    assert_eq!(status, 200);
    let body = wait_for("read: 1 in the status", || async {
        let command = admin.send_text(&room, "!bc status #1").await;
        let status = admin.wait_for_answer(&room, &bot, &command).await;
        status.body.contains("read: 1").then_some(status.body)
    })
    .await;
    assert!(body.contains("replied: 0"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_chat_opened_by_a_person_is_adopted_and_relayed_to_the_first_control_room() {
    let env = TestEnv::start_with_config(|synapse_url, bot_port, dir| {
        crate::harness::bot_config(
            synapse_url,
            bot_port,
            dir,
            "broadcast:\n    control_rooms: [\"#comms:test.local\"]\n",
        )
    })
    .await;
    let bot = env.bot_id();
    let (admin, alice) = (env.user("admin").await, env.user("alice").await);
    let mut env = env;
    // A configured control room must be closed too (issue 22, item 15): invite-only, the bot
    // invited.
    let room = admin.create_room(json!({ "preset": "private_chat", "room_alias_name": "comms" })).await;
    admin.invite(&room, &bot).await;
    env.stop_bot().await.expect("stop");
    env.start_bot().await;
    admin.wait_for_membership(&room, &bot, "join").await;

    let dm = alice.create_room(json!({ "preset": "private_chat", "is_direct": true, "invite": [bot] })).await;
    alice.wait_for_membership(&dm, &bot, "join").await;
    alice.send_text(&dm, "Hello, who do I ask about holidays?").await;
    let root =
        thread_root(&admin, &room, &bot, "Messages from “alice” (@alice:test.local), not about a broadcast")
            .await;
    let relayed = wait_for("alice's message in the thread", || async {
        let thread = in_thread(&admin, &room, &bot, &root).await;
        thread.into_iter().next()
    })
    .await;
    assert_eq!(relayed["body"], "Hello, who do I ask about holidays?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_redactions_by_the_recipient_follow_the_relayed_copy() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root, alice) = (env.user("admin").await, env.server_admin().await, env.user("alice").await);
    let room = env.control_room(&admin).await;
    let dms = broadcast_and_join(&env, &admin, &root, &room, &[&alice], "Feedback please", 1).await;
    let original = alice.send_text(&dms[0], "Teh answer").await;
    let thread = thread_root(&admin, &room, &bot, "Replies from “alice”").await;
    let copy = wait_for("the relayed copy", || async {
        admin.events(&room).await.into_iter().find_map(|event| {
            (event["sender"] == bot.as_str()
                && event["content"]["body"] == "Teh answer"
                && event["content"]["m.relates_to"]["event_id"] == thread.as_str())
            .then(|| event["event_id"].as_str().unwrap().to_owned())
        })
    })
    .await;

    alice
        .send_content(
            &dms[0],
            json!({ "msgtype": "m.text", "body": "* The answer",
            "m.new_content": { "msgtype": "m.text", "body": "The answer" },
            "m.relates_to": { "rel_type": "m.replace", "event_id": original } }),
        )
        .await;
    wait_for("the copy to be edited", || async {
        admin.events(&room).await.into_iter().find(|event| {
            event["sender"] == bot.as_str()
                && event["content"]["m.relates_to"]["rel_type"] == "m.replace"
                && event["content"]["m.relates_to"]["event_id"] == copy.as_str()
                && event["content"]["m.new_content"]["body"] == "The answer"
        })
    })
    .await;

    let path = format!(
        "/rooms/{}/redact/{}/{}",
        encode(&dms[0]),
        encode(&original),
        crate::harness::random_secret()
    );
    let (status, _) = alice.call(reqwest::Method::PUT, &path, Some(json!({}))).await;
    assert_eq!(status, 200);
    wait_for("the copy to be redacted", || async {
        admin.events(&room).await.into_iter().find(|event| {
            event["event_id"] == copy.as_str()
                && event["content"].as_object().is_some_and(|content| content.is_empty())
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_relaying_or_a_control_room_nothing_leaves_the_dm() {
    let env = TestEnv::start_with("broadcast:\n    relay_replies: false\n").await;
    let bot = env.bot_id();
    let (admin, root, alice) = (env.user("admin").await, env.server_admin().await, env.user("alice").await);
    let room = env.control_room(&admin).await;
    let dms = broadcast_and_join(&env, &admin, &root, &room, &[&alice], "No replies please", 1).await;
    alice.send_text(&dms[0], "A reply nobody relays").await;
    // stop still works with relaying off, and its notice shows the reply was handled.
    alice.send_text(&dms[0], "stop").await;
    alice.wait_for_message(&dms[0], &bot, "You will get no more broadcasts").await;
    assert!(admin
        .events(&room)
        .await
        .iter()
        .all(|event| event["content"]["body"] != "A reply nobody relays"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_who_opens_a_chat_when_no_control_room_is_configured_gets_a_polite_notice() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let bob = env.user("bob").await;
    let dm = bob.create_room(json!({ "preset": "private_chat", "is_direct": true, "invite": [bot] })).await;
    bob.wait_for_membership(&dm, &bot, "join").await;
    bob.send_text(&dm, "Anyone there?").await;
    bob.wait_for_message(&dm, &bot, "Nobody reads messages here yet").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_chat_a_person_opens_is_not_adopted_and_they_are_told_why() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root, alice) = (env.user("admin").await, env.server_admin().await, env.user("alice").await);
    let room = env.control_room(&admin).await;
    let encrypted = alice
        .create_room(json!({
            "preset": "private_chat", "is_direct": true, "invite": [bot],
            "initial_state": [{ "type": "m.room.encryption", "state_key": "", "content": { "algorithm": "m.megolm.v1.aes-sha2" } }]
        }))
        .await;
    alice.wait_for_message(&encrypted, &bot, "I cannot read encrypted messages").await;
    // A broadcast still reaches alice, in a DM of the bot's own.
    let dms = broadcast_and_join(&env, &admin, &root, &room, &[&alice], "Hello", 1).await;
    assert_ne!(dms[0], encrypted);
    alice.wait_for_message(&dms[0], &bot, "Hello").await;
}
