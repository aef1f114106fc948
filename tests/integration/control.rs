//! Control rooms and commands, as an admin and other people in Element would use them.

use serde_json::json;

use crate::harness::{client::encode, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_invite_is_joined_and_help_is_answered() {
    let env = TestEnv::start().await;
    let admin = env.user("admin").await;
    let bot = env.bot_id();
    let room = env.control_room(&admin).await;
    assert_eq!(admin.membership(&room, &bot).await.as_deref(), Some("join"));

    let command = admin.send_text(&room, "!bc help").await;
    let answer = admin.wait_for_answer(&room, &bot, &command).await;
    assert_eq!(answer.reaction, "✅");
    assert_eq!(answer.msgtype, "m.notice");
    for name in ["send", "confirm", "cancel", "list", "status", "edit", "redact", "defaults", "audience"] {
        assert!(answer.body.contains(&format!("!bc {name}")), "help lists {name}: {}", answer.body);
    }
    assert!(answer.formatted_body.contains("<code>"), "help is formatted: {}", answer.formatted_body);

    let command = admin.send_text(&room, "!bc help send").await;
    let answer = admin.wait_for_answer(&room, &bot, &command).await;
    assert!(answer.body.contains("--dry-run"), "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_from_someone_who_is_not_an_admin_is_declined() {
    let env = TestEnv::start().await;
    // A broadcaster (everyone on test.local) may not make control rooms.
    let broadcaster = env.user("carol").await;
    let room = broadcaster.create_room(json!({ "preset": "private_chat" })).await;
    broadcaster.invite(&room, &env.bot_id()).await;
    broadcaster.wait_for_membership(&room, &env.bot_id(), "leave").await;
    let path = format!("/rooms/{}/state/m.room.member/{}", encode(&room), encode(&env.bot_id()));
    let (status, leave) = broadcaster.call(reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200, "{leave}");
    let reason = leave["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("Only admins of this bot can invite it"), "the decline says why: {leave}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_from_people_without_permission_are_refused_with_the_reason() {
    let env = TestEnv::start().await;
    let admin = env.user("admin").await;
    let nobody = env.user("nobody").await;
    let room = env.control_room(&admin).await;
    admin.invite(&room, &nobody.user_id).await;
    nobody.join(&room).await;

    let command = nobody.send_text(&room, "!bc help").await;
    let answer = nobody.wait_for_answer(&room, &env.bot_id(), &command).await;
    assert_eq!(answer.reaction, "❌");
    assert!(answer.body.contains("not allowed"), "{}", answer.body);
    assert!(answer.body.contains("none"), "names the level: {}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_command_gets_usage_and_a_caret() {
    let env = TestEnv::start().await;
    let admin = env.user("admin").await;
    let room = env.control_room(&admin).await;

    let command = admin.send_text(&room, "!bc sned #all:test.local").await;
    let answer = admin.wait_for_answer(&room, &env.bot_id(), &command).await;
    assert_eq!(answer.reaction, "❌");
    assert!(answer.body.contains("!bc sned #all:test.local\n    ^^^^"), "{}", answer.body);
    assert!(answer.body.contains("'send'"), "suggests the right command: {}", answer.body);

    let command = admin.send_text(&room, "!bc status twelve").await;
    let answer = admin.wait_for_answer(&room, &env.bot_id(), &command).await;
    assert!(answer.body.contains("Usage: !bc status <ID>"), "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_that_cannot_be_control_rooms_are_explained() {
    let env = TestEnv::start().await;
    let admin = env.user("admin").await;
    let bot = env.bot_id();

    let encrypted = admin
        .create_room(json!({
            "preset": "private_chat",
            "initial_state": [{ "type": "m.room.encryption", "state_key": "", "content": { "algorithm": "m.megolm.v1.aes-sha2" } }]
        }))
        .await;
    admin.invite(&encrypted, &bot).await;
    admin.wait_for_message(&encrypted, &bot, "I cannot read encrypted messages").await;
    // Element would encrypt this; sent in the clear it shows the room is not a control room.
    let command = admin.send_text(&encrypted, "!bc help").await;
    let answer = admin.wait_for_answer(&encrypted, &bot, &command).await;
    assert!(answer.body.contains("I only take commands in control rooms"), "{}", answer.body);

    let public = admin.create_room(json!({ "preset": "public_chat" })).await;
    admin.invite(&public, &bot).await;
    admin.wait_for_message(&public, &bot, "This room is public, so it is not a control room").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_control_rooms_are_joined_at_start_up() {
    // The rooms exist before the bot starts with them in broadcast.control_rooms.
    let mut env = TestEnv::start().await;
    let admin = env.user("admin").await;
    let public = admin.create_room(json!({ "preset": "public_chat", "room_alias_name": "lobby" })).await;
    let closed = admin.create_room(json!({ "preset": "private_chat", "room_alias_name": "comms" })).await;
    admin.invite(&closed, &env.bot_id()).await;
    env.stop_bot().await.expect("stop");
    env.config.broadcast.control_rooms = vec!["#lobby:test.local".into(), "#comms:test.local".into()];
    env.start_bot().await;
    admin.wait_for_membership(&closed, &env.bot_id(), "join").await;
    let command = admin.send_text(&closed, "!bc help").await;
    let answer = admin.wait_for_answer(&closed, &env.bot_id(), &command).await;
    assert_eq!(answer.reaction, "✅");

    // Issue 22, item 15: a configured room passes the must-be-closed check too.
    admin.wait_for_membership(&public, &env.bot_id(), "join").await;
    let command = admin.send_text(&public, "!bc help").await;
    let answer = admin.wait_for_answer(&public, &env.bot_id(), &command).await;
    assert_eq!(answer.reaction, "❌", "a public room is no control room: {}", answer.body);
}
