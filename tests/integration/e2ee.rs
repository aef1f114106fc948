//! End-to-end encryption (issue #14): recipients and admins on a real E2EE client
//! ([`E2eeUser`], matrix-sdk), the bot with `encryption.enabled`, Synapse with MSC2409/MSC3202.

use serde_json::{json, Value};

use crate::harness::{
    client,
    e2ee::{synapse_holds_text, E2eeUser},
    wait_for, TestEnv,
};

/// An encrypted room made by `admin` (on an E2EE client) with the bot invited: a control room
/// once the bot said so, in a message `admin` could decrypt.
async fn encrypted_control_room(env: &TestEnv, admin: &E2eeUser) -> String {
    let room = admin.create_encrypted_room(&[&env.bot_id()]).await;
    admin.wait_for_decrypted(&room, &env.bot_id(), "This is now a control room").await;
    room
}

/// The bot's (decrypted) answer to `command`, typed by `admin` in `room`.
async fn answer_to(admin: &E2eeUser, room: &str, command: &str) -> String {
    let sent = admin.send_text(room, command).await;
    wait_for(&format!("the answer to {command}"), || async {
        let events = admin.decrypted_events(room).await;
        let answer = events
            .iter()
            .find(|event| event["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == sent.as_str())?;
        Some(body(answer).to_owned())
    })
    .await
}

/// The text of a decrypted event's body.
fn body(event: &Value) -> &str {
    event["content"]["body"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_space_broadcast_from_an_encrypted_control_room_arrives_encrypted_and_decrypts() {
    let env = TestEnv::start_encrypted().await;
    let bot = env.bot_id();
    let admin_user = env.user("admin").await;
    let (alice_user, bob_user) = (env.user("alice").await, env.user("bob").await);
    let admin = E2eeUser::login(&env.synapse, &admin_user).await;
    let (alice, bob) =
        (E2eeUser::login(&env.synapse, &alice_user).await, E2eeUser::login(&env.synapse, &bob_user).await);
    let space = env.space(&admin_user, "staff", &[&alice_user, &bob_user]).await;
    let room = encrypted_control_room(&env, &admin).await;
    let device = env.config.appservice.device_id.to_string();
    assert!(admin.sees_cross_signed_by_owner(&bot, &device).await, "the bot cross-signed its device");

    let secret = "The merger is announced on Monday";
    admin.send_text(&room, &format!("!bc send {space} --yes\n{secret}")).await;
    for recipient in [&alice, &bob] {
        let dm = recipient.dm_with(&bot).await;
        let copy = recipient.wait_for_decrypted(&dm, &bot, secret).await;
        assert_eq!(copy["encrypted"], true, "{copy}");
    }
    let summary = admin.wait_for_decrypted(&room, &bot, "finished").await;
    assert!(body(&summary).contains("3 delivered"), "the admin is in the space too: {summary}");
    assert!(
        !synapse_holds_text(&env.synapse, secret).await,
        "Synapse's event_json holds the broadcast in clear"
    );
    assert!(!synapse_holds_text(&env.synapse, "This is now a control room").await, "the control room too");

    admin.send_text(&room, "!bc status #1").await;
    let status = admin.wait_for_decrypted(&room, &bot, "encrypted end to end: 3").await;
    assert!(body(&status).contains("cannot decrypt yet (no device to share the key with): 0"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_reply_reaches_the_thread_and_the_answer_decrypts_in_the_dm() {
    let env = TestEnv::start_encrypted().await;
    let bot = env.bot_id();
    let (admin_user, carol_user) = (env.user("admin").await, env.user("carol").await);
    let (admin, carol) =
        (E2eeUser::login(&env.synapse, &admin_user).await, E2eeUser::login(&env.synapse, &carol_user).await);
    let room = encrypted_control_room(&env, &admin).await;
    admin.send_text(&room, &format!("!bc send {} --yes\nWho comes to the party?", carol.user_id)).await;
    let dm = carol.dm_with(&bot).await;
    carol.wait_for_decrypted(&dm, &bot, "Who comes to the party?").await;

    carol.send_text(&dm, "I come, with cake").await;
    let relayed = admin.wait_for_decrypted(&room, &bot, "I come, with cake").await;
    let root =
        relayed["content"]["m.relates_to"]["event_id"].as_str().expect("relayed into a thread").to_owned();
    assert_eq!(relayed["content"]["m.relates_to"]["rel_type"], "m.thread", "{relayed}");
    let answer = json!({ "msgtype": "m.text", "body": "Wonderful, thank you",
                         "m.relates_to": { "rel_type": "m.thread", "event_id": root } });
    admin.send_content(&room, answer).await;
    let back = carol.wait_for_decrypted(&dm, &bot, "Wonderful, thank you").await;
    assert_eq!(back["encrypted"], true, "{back}");
    for text in ["I come, with cake", "Wonderful, thank you", "Who comes to the party?"] {
        assert!(!synapse_holds_text(&env.synapse, text).await, "{text:?} is in Synapse's database in clear");
    }

    carol.send_text(&dm, "stop").await;
    carol.wait_for_decrypted(&dm, &bot, "no more broadcasts").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_device_logged_in_after_a_broadcast_reads_the_next_one() {
    let env = TestEnv::start_encrypted().await;
    let bot = env.bot_id();
    let (admin, dora_user) = (env.user("admin").await, env.user("dora").await);
    let dora = E2eeUser::login(&env.synapse, &dora_user).await;
    let room = env.control_room(&admin).await;
    let first = admin.send_text(&room, &format!("!bc send {} --yes\nFirst news", dora.user_id)).await;
    admin.wait_for_answer(&room, &bot, &first).await;
    let dm = dora.dm_with(&bot).await;
    dora.wait_for_decrypted(&dm, &bot, "First news").await;

    let laptop = dora.second_device().await;
    laptop.wait_joined(&dm).await;
    let second = admin.send_text(&room, &format!("!bc send {} --yes\nSecond news", dora.user_id)).await;
    admin.wait_for_answer(&room, &bot, &second).await;
    laptop.wait_for_decrypted(&dm, &bot, "Second news").await;
    dora.wait_for_decrypted(&dm, &bot, "Second news").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_without_a_device_gets_the_message_once_they_log_in() {
    let env = TestEnv::start_encrypted().await;
    let bot = env.bot_id();
    let (admin, erin_user) = (env.user("admin").await, env.user("erin").await);
    let room = env.control_room(&admin).await;
    // erin registered (Synapse gave the registration a device without keys) but has no E2EE client yet.
    let command = admin.send_text(&room, "!bc send @erin:test.local --yes\nWelcome aboard").await;
    admin.wait_for_answer(&room, &bot, &command).await;
    wait_for("the copy waits for a device", || async {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let status = admin.send_text(&room, "!bc status #1").await;
        let answer = admin.wait_for_answer(&room, &bot, &status).await;
        answer.body.contains("cannot decrypt yet (no device to share the key with): 1").then_some(())
    })
    .await;

    let erin = E2eeUser::login(&env.synapse, &erin_user).await;
    let dm = erin.dm_with(&bot).await;
    erin.wait_for_decrypted(&dm, &bot, "Welcome aboard").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_polls_and_retractions_work_in_encrypted_rooms() {
    let env = TestEnv::start_encrypted().await;
    let bot = env.bot_id();
    let (admin_user, fay_user) = (env.user("admin").await, env.user("fay").await);
    let (admin, fay) =
        (E2eeUser::login(&env.synapse, &admin_user).await, E2eeUser::login(&env.synapse, &fay_user).await);
    let room = encrypted_control_room(&env, &admin).await;
    admin.send_text(&room, &format!("!bc send {} --yes\nMeeting at 10", fay.user_id)).await;
    let dm = fay.dm_with(&bot).await;
    let copy = fay.wait_for_decrypted(&dm, &bot, "Meeting at 10").await;
    admin.wait_for_decrypted(&room, &bot, "finished").await;
    admin.send_text(&room, "!bc edit #1\nMeeting at 11").await;
    let edit = fay.wait_for_decrypted(&dm, &bot, "Meeting at 11").await;
    assert_eq!(edit["content"]["m.relates_to"]["event_id"], copy["event_id"], "{edit}");

    // A poll made in the encrypted control room, sent by replying to it: the bot decrypts it.
    let poll = admin.send_event(&room, "org.matrix.msc3381.poll.start", client::element_poll()).await;
    let command = format!("!bc send {} --yes", fay.user_id);
    let reply = json!({ "msgtype": "m.text", "body": command, "m.relates_to": { "m.in_reply_to": { "event_id": poll } } });
    admin.send_content(&room, reply).await;
    let start = wait_for("the poll in fay's DM", || async {
        let events = fay.decrypted_events(&dm).await;
        events
            .into_iter()
            .find(|event| event["type"] == "org.matrix.msc3381.poll.start" && event["sender"] == bot)
    })
    .await;
    let answer = json!({ "m.relates_to": { "rel_type": "m.reference", "event_id": start["event_id"] },
                         "org.matrix.msc3381.poll.response": { "answers": ["salad"] } });
    fay.send_event(&dm, "org.matrix.msc3381.poll.response", answer).await;
    let mut tallied = String::new();
    for _ in 0..20 {
        tallied = answer_to(&admin, &room, "!bc status #2").await;
        if tallied.contains("1 of 1 answered") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(tallied.contains("1 of 1 answered"), "fay's encrypted answer is tallied: {tallied}");

    admin.send_text(&room, "!bc redact #1").await;
    admin.wait_for_decrypted(&room, &bot, "1 copy removed").await;
    let seen = fay_user.event(&dm, copy["event_id"].as_str().unwrap()).await;
    assert!(seen["unsigned"]["redacted_because"].is_object(), "the encrypted copy is redacted: {seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_dm_stays_plain_unless_upgrade_dms_turns_it_encrypted() {
    let mut env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, gil_user) = (env.user("admin").await, env.user("gil").await);
    let gil = E2eeUser::login(&env.synapse, &gil_user).await;
    let room = env.control_room(&admin).await;
    let send = |text: &'static str| {
        let (admin, room, bot) = (&admin, &room, &bot);
        async move {
            let command = admin.send_text(room, &format!("!bc send @gil:test.local --yes\n{text}")).await;
            admin.wait_for_answer(room, bot, &command).await;
        }
    };
    send("Sent in the clear").await;
    let dm = gil.dm_with(&bot).await;
    gil_user.wait_for_message(&dm, &bot, "Sent in the clear").await;

    let crypto_dir = tempfile::tempdir().unwrap();
    env.stop_bot().await.expect("stop the bot");
    let yaml = crate::harness::encryption_yaml(crypto_dir.path());
    env.config.encryption = serde_yaml::from_str::<serde_yaml::Value>(&yaml)
        .and_then(|document| serde_yaml::from_value(document["encryption"].clone()))
        .expect("the encryption section");
    env.start_bot().await;
    send("Still in the clear").await;
    let still = gil_user.wait_for_message(&dm, &bot, "Still in the clear").await;
    assert_eq!(still["type"], "m.room.message", "a plain DM stays plain: {still}");

    env.stop_bot().await.expect("stop the bot");
    env.config.encryption.upgrade_dms = true;
    env.start_bot().await;
    send("Encrypted from now on").await;
    let copy = gil.wait_for_decrypted(&dm, &bot, "Encrypted from now on").await;
    assert_eq!(copy["encrypted"], true, "{copy}");
    assert_eq!(gil.dms_with(&bot).await, std::slice::from_ref(&dm), "the same DM, upgraded");
    // The command was typed in a plain control room; the copy in the DM is ciphertext.
    let stored = gil_user.event(&dm, copy["event_id"].as_str().unwrap()).await;
    assert_eq!(stored["type"], "m.room.encrypted", "{stored}");
}

/// Issue 22, item 10: a reply written in an encrypted DM is not relayed into a control room that
/// is not encrypted (the room is told so once); with `relay_encrypted_to_plain_rooms` it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_reply_is_not_relayed_into_a_plain_control_room_unless_allowed() {
    let mut env = TestEnv::start_encrypted().await;
    let bot = env.bot_id();
    let (admin, hal_user) = (env.user("admin").await, env.user("hal").await);
    let hal = E2eeUser::login(&env.synapse, &hal_user).await;
    let room = env.control_room(&admin).await;
    let command = admin.send_text(&room, "!bc send @hal:test.local --yes\nAre you coming?").await;
    admin.wait_for_answer(&room, &bot, &command).await;
    let dm = hal.dm_with(&bot).await;
    let copy = hal.wait_for_decrypted(&dm, &bot, "Are you coming?").await;
    assert_eq!(copy["encrypted"], true, "the DM is encrypted: {copy}");

    hal.send_text(&dm, "Yes, my salary is 4000").await;
    admin
        .wait_for_message(&room, &bot, "Replies written in encrypted DMs are not relayed into this room")
        .await;
    hal.send_text(&dm, "And my address is Main Street 1").await;
    // The second reply is handled (a `stop` after it is confirmed) and told nothing again.
    hal.send_text(&dm, "stop").await;
    hal.wait_for_decrypted(&dm, &bot, "no more broadcasts").await;
    let said: Vec<String> = admin
        .events(&room)
        .await
        .iter()
        .filter(|event| event["sender"] == bot.as_str())
        .filter_map(|event| event["content"]["body"].as_str().map(str::to_owned))
        .collect();
    assert!(!said.iter().any(|body| body.contains("salary") || body.contains("Main Street")), "{said:?}");
    assert_eq!(said.iter().filter(|body| body.contains("not relayed into this room")).count(), 1, "{said:?}");
    for text in ["salary is 4000", "Main Street 1"] {
        assert!(!synapse_holds_text(&env.synapse, text).await, "{text:?} is in Synapse's database in clear");
    }

    env.stop_bot().await.expect("stop the bot");
    env.config.broadcast.relay_encrypted_to_plain_rooms = true;
    env.start_bot().await;
    hal.send_text(&dm, "start").await;
    hal.wait_for_decrypted(&dm, &bot, "again").await;
    hal.send_text(&dm, "Relay this one").await;
    admin.wait_for_message(&room, &bot, "Relay this one").await;
}
