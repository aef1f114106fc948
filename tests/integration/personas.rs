//! Personas: a broadcast sent `--as` a persona comes from the persona's own user, with its
//! profile, in a DM of its own (not the bot's); what a recipient writes there reaches the control
//! room, and the answer written in the thread goes back into that DM, sent by the persona.

use serde_json::{json, Value};

use crate::harness::{client::encode, wait_for, TestEnv, TestUser, SERVER_NAME};

/// The persona `hr` of the bot's config.
const PERSONAS: &str = r#"
personas:
    hr:
        username: broadcast_hr
        displayname: HR Team
"#;

/// The DM `creator` made for `user`, as the server admin `root` sees it.
async fn dm_made_by(root: &TestUser, creator: &str, user: &TestUser) -> String {
    let census = root.dm_census(creator, &[]).await;
    let dms: Vec<_> = census.iter().filter(|dm| dm.others.contains(&user.user_id)).collect();
    assert_eq!(dms.len(), 1, "{} has one DM made by {creator}: {census:?}", user.user_id);
    assert!(dms[0].is_direct, "{dms:?}");
    dms[0].room_id.clone()
}

/// Sends `!bc send …` as `admin` in `room` and returns the bot's answer's body.
async fn command(env: &TestEnv, admin: &TestUser, room: &str, text: &str) -> String {
    let command = admin.send_text(room, text).await;
    let answer = admin.wait_for_answer(room, &env.bot_id(), &command).await;
    assert_eq!(answer.reaction, "✅", "{text}: {}", answer.body);
    answer.body
}

/// The messages of `room` that `sender` sent, as `reader` sees them.
async fn messages_from(reader: &TestUser, room: &str, sender: &str) -> Vec<Value> {
    let events = reader.events(room).await;
    events
        .into_iter()
        .filter(|event| event["type"] == "m.room.message" && event["sender"] == sender)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persona_broadcast_comes_from_the_persona_in_its_own_dm_and_replies_come_home() {
    let env = TestEnv::start_with(PERSONAS).await;
    let bot = env.bot_id();
    let hr = format!("@broadcast_hr:{SERVER_NAME}");
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let room = env.control_room(&admin).await;

    // Alice has had a broadcast from the bot already.
    command(&env, &admin, &room, &format!("!bc send {} --yes\nFrom the bot", alice.user_id)).await;
    admin.wait_for_finished_count(&room, &bot, 1, crate::harness::DEADLINE).await;
    let send = format!("!bc send {} {} --as hr --yes\nHello from HR", alice.user_id, bob.user_id);
    let answer = command(&env, &admin, &room, &send).await;
    assert!(answer.contains(&format!("from HR Team (`{hr}`)")), "the answer says who sends: {answer}");
    admin.wait_for_finished_count(&room, &bot, 2, crate::harness::DEADLINE).await;

    let alice_hr = dm_made_by(&root, &hr, &alice).await;
    let bob_hr = dm_made_by(&root, &hr, &bob).await;
    let alice_bot = dm_made_by(&root, &bot, &alice).await;
    assert_ne!(alice_hr, alice_bot, "alice has one DM with the bot and another with HR");
    alice.join(&alice_bot).await;
    for (user, dm) in [(&alice, &alice_hr), (&bob, &bob_hr)] {
        user.join(dm).await;
        let copies = messages_from(user, dm, &hr).await;
        let bodies: Vec<&str> = copies.iter().filter_map(|event| event["content"]["body"].as_str()).collect();
        assert_eq!(bodies, ["Hello from HR"], "{}'s copy, sent by the persona", user.user_id);
        assert!(messages_from(user, dm, &bot).await.is_empty(), "the bot is not in the persona's DM");
    }
    let (status, profile) =
        alice.call(reqwest::Method::GET, &format!("/profile/{}", encode(&hr)), None).await;
    assert_eq!((status, &profile["displayname"]), (200, &json!("HR Team")), "the persona's profile");
    let devices = format!("/_synapse/admin/v2/users/{}/devices", encode(&hr));
    let (_, devices) = root.call(reqwest::Method::GET, &devices, None).await;
    let ids: Vec<&str> =
        devices["devices"].as_array().into_iter().flatten().filter_map(|d| d["device_id"].as_str()).collect();
    assert_eq!(ids, ["BROADCAST"], "the persona sends from its own logged-in device");

    // Alice answers HR: the reply reaches the control room, in a thread the bot starts.
    alice.send_text(&alice_hr, "When is the offsite?").await;
    let title = format!("Replies from “alice” ({}) to «Hello from HR» #2", alice.user_id);
    let thread = wait_for("the thread of alice's reply", || async {
        admin.events(&room).await.into_iter().find_map(|event| {
            let from_bot = event["sender"] == bot.as_str();
            (from_bot && event["content"]["body"] == title.as_str())
                .then(|| event["event_id"].as_str().unwrap().to_owned())
        })
    })
    .await;
    wait_for("alice's reply in the thread", || async {
        admin.events(&room).await.into_iter().find(|event| {
            event["content"]["body"] == "When is the offsite?"
                && event["content"]["m.relates_to"]["event_id"] == thread.as_str()
        })
    })
    .await;

    // The admin's answer in the thread goes into alice's DM with HR, sent by HR.
    let reply = json!({ "msgtype": "m.text", "body": "In May!",
                        "m.relates_to": { "rel_type": "m.thread", "event_id": thread } });
    admin.send_content(&room, reply).await;
    alice.wait_for_message(&alice_hr, &hr, "In May!").await;
    let in_bot_dm = alice.events(&alice_bot).await;
    assert!(in_bot_dm.iter().all(|event| event["content"]["body"] != "In May!"), "not into the bot's DM");
    let in_bob_dm = bob.events(&bob_hr).await;
    assert!(in_bob_dm.iter().all(|event| event["content"]["body"] != "In May!"), "not to bob");

    // The persona's m.direct lists its DMs (and only its DMs).
    let account_data = format!("/_synapse/admin/v1/users/{}/accountdata", encode(&hr));
    let direct = wait_for("the persona's m.direct", || async {
        let (_, data) = root.call(reqwest::Method::GET, &account_data, None).await;
        let direct = data["account_data"]["global"]["m.direct"].clone();
        (direct.as_object().is_some_and(|users| users.len() == 2)).then_some(direct)
    })
    .await;
    assert_eq!(direct[&alice.user_id], json!([alice_hr]), "{direct}");
    assert_eq!(direct[&bob.user_id], json!([bob_hr]), "{direct}");
}
