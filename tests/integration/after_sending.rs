//! After sending (issue 12), against a real Synapse with people acting through the
//! client-server API: edits and retractions of every copy, scheduled broadcasts (also across a
//! restart of the bot), polls with a tally and their close, and `search:` audiences.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{
    census::{bodies, dms_of},
    client,
    scenario::{broadcast_and_join, make_server_admin},
    wait_for, TestEnv, TestUser,
};

/// The bot's copy in `dm` of the given event type, as `user` sees it.
async fn copy_in(user: &TestUser, dm: &str, bot: &str, event_type: &str) -> Value {
    wait_for(&format!("the bot's {event_type} in {dm}"), || async {
        user.events(dm).await.into_iter().find(|event| event["sender"] == bot && event["type"] == event_type)
    })
    .await
}

/// `admin` types `line` in `room`; returns the bot's answer once it came.
async fn command(admin: &TestUser, room: &str, bot: &str, line: &str) -> crate::harness::client::Answer {
    let event = admin.send_text(room, line).await;
    admin.wait_for_answer(room, bot, &event).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_changes_every_recipients_text_and_a_redact_removes_every_copy() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    alice.set_displayname("Alice Liddell").await;
    let room = env.control_room(&admin).await;
    let dms =
        broadcast_and_join(&env, &admin, &root, &room, &[&alice, &bob], "Hi {displayname}, Monday!", 1).await;
    let people = [(&alice, &dms[0], "Alice Liddell"), (&bob, &dms[1], "bob")];

    let line = "!bc edit #1\nHi {displayname}, it is **Tuesday**!";
    assert_eq!(command(&admin, &room, &bot, line).await.reaction, "✅");
    // The name is Markdown-escaped in the notice's plain body ("Monday\\!").
    let edited = admin.wait_for_message(&room, &bot, "2 copies show the new text.").await;
    assert!(edited["content"]["body"].as_str().unwrap().starts_with("Edited #1 «Hi {displayname}, Monday"));
    for (user, dm, name) in people {
        let original = copy_in(user, dm, &bot, "m.room.message").await;
        assert_eq!(original["content"]["body"], format!("Hi {name}, Monday!"));
        let seen = user.event(dm, original["event_id"].as_str().unwrap()).await;
        // What the recipient's client shows: the latest edit, bundled with the original.
        let edit = &seen["unsigned"]["m.relations"]["m.replace"];
        assert_eq!(edit["sender"], bot.as_str(), "{seen}");
        let new_content = &edit["content"]["m.new_content"];
        assert_eq!(new_content["body"], format!("Hi {name}, it is **Tuesday**!"), "{seen}");
        assert_eq!(new_content["formatted_body"], format!("Hi {name}, it is <strong>Tuesday</strong>!"));
    }

    let answer = command(&admin, &room, &bot, "!bc redact #1 sent too early").await;
    assert_eq!(answer.reaction, "✅", "{}", answer.body);
    let retracted = admin.wait_for_message(&room, &bot, "2 copies removed.").await;
    assert!(retracted["content"]["body"].as_str().unwrap().starts_with("Retracted #1 «Hi {displayname}"));
    for (user, dm, _) in people {
        let original = copy_in(user, dm, &bot, "m.room.message").await;
        let seen = user.event(dm, original["event_id"].as_str().unwrap()).await;
        assert_eq!(seen["content"], json!({}), "the copy is redacted: {seen}");
        assert_eq!(seen["unsigned"]["redacted_because"]["content"]["reason"], "sent too early", "{seen}");
    }
    let status = command(&admin, &room, &bot, "!bc status #1").await;
    assert!(status.body.contains("edited, retracted"), "{}", status.body);
}

/// Waits until the bot says it started broadcast #1 and it finished; returns the start notice.
async fn started_and_finished(admin: &TestUser, room: &str, bot: &str) -> String {
    let started = admin.wait_for_message(room, bot, "Sending #1").await;
    let summary = admin.wait_for_finished(room, bot).await;
    assert!(summary.contains("1 delivered, 0 failed"), "{summary}");
    started["content"]["body"].as_str().unwrap().to_owned()
}

/// How many notices of the bot in `room` start with `text`.
async fn notices_starting(user: &TestUser, room: &str, bot: &str, text: &str) -> usize {
    let events = user.events(room).await;
    events
        .iter()
        .filter(|event| {
            event["sender"] == bot
                && event["content"]["body"].as_str().is_some_and(|body| body.starts_with(text))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_scheduled_a_few_seconds_ahead_is_sent_once_when_due() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root, alice) = (env.user("admin").await, env.server_admin().await, env.user("alice").await);
    let room = env.control_room(&admin).await;
    let answer =
        command(&admin, &room, &bot, &format!("!bc send {} --in 4s --yes\nSoon", alice.user_id)).await;
    assert_eq!(answer.reaction, "✅", "{}", answer.body);
    assert!(
        answer.body.starts_with("Scheduled #1 «Soon» for ") && answer.body.contains(" UTC (in "),
        "{}",
        answer.body
    );
    assert!(root.dm_census(&bot, &[&room]).await.iter().all(|dm| dm.messages.is_empty()), "not sent yet");
    let list = command(&admin, &room, &bot, "!bc list").await;
    assert!(list.body.contains("scheduled for "), "{}", list.body);

    let started = started_and_finished(&admin, &room, &bot).await;
    assert!(started.contains("(scheduled for "), "{started}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let census = root.dm_census(&bot, &[&room]).await;
    let dms = dms_of(&census, &alice);
    assert_eq!(dms.len(), 1);
    assert_eq!(bodies(dms[0]), ["Soon"], "exactly one copy");
    assert_eq!(notices_starting(&admin, &room, &bot, "Sending #1").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_due_while_the_bot_is_stopped_is_sent_once_after_it_is_back() {
    let mut env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root, alice) = (env.user("admin").await, env.server_admin().await, env.user("alice").await);
    let room = env.control_room(&admin).await;
    let answer =
        command(&admin, &room, &bot, &format!("!bc send {} --in 5s --yes\nAfter the break", alice.user_id))
            .await;
    assert!(answer.body.starts_with("Scheduled #1"), "{}", answer.body);
    env.stop_bot().await.expect("a clean stop");
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        root.dm_census(&bot, &[&room]).await.iter().all(|dm| dm.messages.is_empty()),
        "nothing while stopped"
    );
    env.start_bot().await;

    started_and_finished(&admin, &room, &bot).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let census = root.dm_census(&bot, &[&room]).await;
    assert_eq!(bodies(dms_of(&census, &alice)[0]), ["After the break"], "exactly one copy");
    assert_eq!(notices_starting(&admin, &room, &bot, "Sending #1").await, 1);
}

/// `user` answers the poll `start` in `dm` with `answer`, as Element does.
async fn vote(user: &TestUser, dm: &str, start: &str, answer: &str) {
    let content = json!({
        "m.relates_to": { "rel_type": "m.reference", "event_id": start },
        "org.matrix.msc3381.poll.response": { "answers": [answer] },
    });
    user.send_event(dm, "org.matrix.msc3381.poll.response", content).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_answers_are_tallied_and_closing_ends_the_poll_in_every_dm() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let users = [env.user("alice").await, env.user("bob").await, env.user("carol").await];
    let room = env.control_room(&admin).await;
    let poll = admin.send_event(&room, "org.matrix.msc3381.poll.start", client::element_poll()).await;
    let ids: Vec<&str> = users.iter().map(|user| user.user_id.as_str()).collect();
    let line = format!("!bc send {} --yes", ids.join(" "));
    let command_event = admin
        .send_content(&room, json!({ "msgtype": "m.text", "body": line, "m.relates_to": { "m.in_reply_to": { "event_id": poll } } }))
        .await;
    assert_eq!(admin.wait_for_answer(&room, &bot, &command_event).await.reaction, "✅");
    admin.wait_for_finished(&room, &bot).await;

    let census = root.dm_census(&bot, &[&room]).await;
    let mut copies = Vec::new();
    for user in &users {
        let dm = dms_of(&census, user)[0].room_id.clone();
        user.join(&dm).await;
        let start = copy_in(user, &dm, &bot, "org.matrix.msc3381.poll.start").await;
        assert_eq!(start["content"]["org.matrix.msc3381.poll.start"]["question"]["body"], "Lunch?");
        copies.push((dm, start["event_id"].as_str().unwrap().to_owned()));
    }
    vote(&users[0], &copies[0].0, &copies[0].1, "pizza").await;
    vote(&users[1], &copies[1].0, &copies[1].1, "salad").await;
    vote(&users[2], &copies[2].0, &copies[2].1, "pizza").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    vote(&users[2], &copies[2].0, &copies[2].1, "salad").await; // carol changes her mind

    let tally = wait_for("the tally of three answers", || async {
        let status = command(&admin, &room, &bot, "!bc status #1").await;
        status.body.contains("3 of 3 answered").then_some(status.body)
    })
    .await;
    assert!(tally.contains("1 (33%) Pizza") && tally.contains("2 (66%) Salad"), "{tally}");

    let closed = command(&admin, &room, &bot, "!bc poll close #1").await;
    assert_eq!(closed.reaction, "✅", "{}", closed.body);
    assert!(closed.body.contains("Final tally") && closed.body.contains("2 (66%) Salad"), "{}", closed.body);
    admin.wait_for_message(&room, &bot, "Closed the poll #1 «Lunch?»: ended in 3 DMs.").await;
    for (user, (dm, start)) in users.iter().zip(&copies) {
        let end = copy_in(user, dm, &bot, "org.matrix.msc3381.poll.end").await;
        assert_eq!(end["content"]["m.relates_to"]["event_id"], start.as_str());
        assert_eq!(end["content"]["org.matrix.msc1767.text"], "The poll has ended. Top answer: Salad");
    }
    let threads = admin
        .events(&room)
        .await
        .into_iter()
        .filter(|event| event["content"]["m.relates_to"]["rel_type"] == "m.thread")
        .count();
    assert_eq!(threads, 0, "answers are tallied, not relayed as replies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_reaches_exactly_the_matching_accounts() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (anna, ben) = (env.user("smith_anna").await, env.user("ben").await);
    let (carl, dora) = (env.user("carl").await, env.user("dora").await);
    ben.set_displayname("Ben Smithers").await;
    dora.set_displayname("Dora Jones").await;
    let room = env.control_room(&admin).await;
    make_server_admin(&root, &bot).await;

    let audience = command(&admin, &room, &bot, "!bc audience search:smith").await;
    assert!(audience.body.starts_with("Dry run, nothing sent: 2 recipients:"), "{}", audience.body);
    let answer = command(&admin, &room, &bot, "!bc send search:smith search:carl --yes\nHi").await;
    assert_eq!(answer.reaction, "✅", "{}", answer.body);
    let summary = admin.wait_for_finished(&room, &bot).await;
    assert!(summary.contains("3 delivered, 0 failed"), "{summary}");
    let census = root.dm_census(&bot, &[&room]).await;
    for user in [&anna, &ben, &carl] {
        assert_eq!(dms_of(&census, user).len(), 1, "{} matches", user.user_id);
    }
    for user in [&dora, &admin, &root] {
        assert!(dms_of(&census, user).is_empty(), "{} does not match", user.user_id);
    }
    assert_eq!(census.len(), 3);
}
