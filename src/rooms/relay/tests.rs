use ruma::{events::room::member::MembershipState, owned_event_id, OwnedEventId, OwnedRoomId, OwnedUserId};

use super::*;
use crate::{base::store::SendOptions, rooms::testing::TestRooms};

/// Broadcast `text` from `control` delivered to `users` in their DMs (as the workers would).
async fn delivered(test: &TestRooms, control: &RoomId, text: &str, users: &[OwnedUserId]) -> BroadcastId {
    let id = test.running_broadcast(control, text, users, SendOptions::default()).await;
    while let Some(claim) = test.store().claim_delivery(60_000).await.unwrap() {
        let room = test.rooms.senders.dms.ensure(&claim.user_id).await.unwrap().room;
        let event: OwnedEventId = format!("$copy-{}-{}", id.0, claim.user_id.localpart()).try_into().unwrap();
        test.store().mark_delivered(&claim, &room, &event).await.unwrap();
    }
    id
}

/// `user` writes `body` in their DM; returns the event ID.
async fn write_in_dm(test: &TestRooms, user: &UserId, body: &str, n: u32) -> OwnedEventId {
    let dm = test.store().live_dm(None, user).await.unwrap().expect("a DM");
    let room = dm.room_id.clone().expect("created");
    let event_id: OwnedEventId = format!("${}-{n}", user.localpart()).try_into().unwrap();
    let event = json!({ "type": "m.room.message", "room_id": room, "sender": user, "event_id": event_id,
                        "content": { "msgtype": "m.text", "body": body } });
    on_dm_message(&test.rooms, &dm, &room, &event_id, &event).await;
    event_id
}

fn thread_of(sent: &crate::base::matrix::fake::Sent) -> Option<String> {
    sent.content["m.relates_to"]["event_id"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn a_reply_too_long_for_one_event_is_relayed_cut_and_says_so() {
    let test = TestRooms::new().await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", Some("Alice"));
    delivered(&test, &control, "Survey", std::slice::from_ref(&alice)).await;
    let long = format!("My answer: {}", "<b>yes</b> ".repeat(10_000));
    write_in_dm(&test, &alice, &long, 1).await;
    let relayed = test.hs.sent_to(&control).pop().expect("relayed");
    let size = relayed.content.to_string().len();
    assert!(size <= MAX_RELAYED_BYTES + 300, "{size} bytes relayed");
    let body = relayed.content["body"].as_str().unwrap();
    assert!(body.starts_with("My answer: <b>yes</b>"), "{:.40}", body);
    assert!(
        body.ends_with(&format!("of {} characters)", long.chars().count())),
        "{}",
        &body[body.len() - 80..]
    );
    assert!(thread_of(&relayed).is_some(), "in the thread");
    assert_eq!(relayed.content["m.mentions"], json!({}), "still mentions nobody");
}

#[tokio::test]
async fn replies_go_to_the_thread_of_the_last_broadcast_and_never_cross() {
    let test = TestRooms::new().await;
    let (room_a, room_b) = (test.control_room().await, test.control_room().await);
    let alice = test.hs.user("alice", Some("Alice"));
    let bob = test.hs.user("bob", None);
    let first = delivered(&test, &room_a, "Offsite?", &[alice.clone(), bob.clone()]).await;
    let second = delivered(&test, &room_b, "Lunch?", std::slice::from_ref(&alice)).await;

    write_in_dm(&test, &alice, "Lunch yes", 1).await;
    write_in_dm(&test, &alice, "and dessert", 2).await;
    write_in_dm(&test, &bob, "Offsite yes", 1).await;

    let in_b = test.hs.sent_to(&room_b);
    assert_eq!(in_b[0].content["body"], "Replies from “Alice” (@alice:example.org) to «Lunch?» #2");
    let root = in_b[0].event_id.to_string();
    let replies: Vec<_> =
        in_b[1..].iter().map(|sent| (sent.content["body"].clone(), thread_of(sent))).collect();
    assert_eq!(replies, [(json!("Lunch yes"), Some(root.clone())), (json!("and dessert"), Some(root))]);
    let in_a = test.hs.bodies_in(&room_a);
    assert_eq!(in_a, ["Replies from “bob” (@bob:example.org) to «Offsite?» #1", "Offsite yes"], "bob's only");
    assert_eq!(test.store().read_and_replied(second).await.unwrap().1, 1);
    assert_eq!(test.store().repliers(first, 10).await.unwrap(), [bob]);
}

#[tokio::test]
async fn messages_about_no_broadcast_go_to_the_default_control_room_or_get_a_polite_notice() {
    let test = TestRooms::new().await;
    let alice = test.hs.user("alice", None);
    let dm = test.rooms.senders.dms.ensure(&alice).await.unwrap().room;
    write_in_dm(&test, &alice, "hello?", 1).await;
    assert_eq!(
        test.hs.bodies_in(&dm),
        ["Thanks for your message. Nobody reads messages here yet, so it was not passed on."]
    );
    let control = test.control_room().await;
    test.rooms.default_control_room.set(control.clone()).unwrap();
    write_in_dm(&test, &alice, "anyone?", 2).await;
    assert_eq!(
        test.hs.bodies_in(&control),
        ["Messages from “alice” (@alice:example.org), not about a broadcast", "anyone?"]
    );
}

#[tokio::test]
async fn stop_and_start_switch_broadcasts_off_and_on_and_are_not_relayed() {
    let test = TestRooms::new().await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", None);
    delivered(&test, &control, "News", std::slice::from_ref(&alice)).await;
    let dm: OwnedRoomId = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
    write_in_dm(&test, &alice, "  STOP ", 1).await;
    assert!(test.store().is_opted_out(&alice).await.unwrap());
    write_in_dm(&test, &alice, "start", 2).await;
    assert!(!test.store().is_opted_out(&alice).await.unwrap());
    assert_eq!(
        test.hs.bodies_in(&dm),
        [
            "You will get no more broadcasts from here. Write `start` to get them again.",
            "You will get broadcasts again."
        ]
    );
    assert!(test.hs.sent_to(&control).is_empty(), "keywords are not replies");
}

#[tokio::test]
async fn an_answer_in_the_thread_reaches_only_that_recipient_or_says_why_not() {
    let test = TestRooms::new().await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", None);
    let bob = test.hs.user("bob", None);
    delivered(&test, &control, "News", &[alice.clone(), bob.clone()]).await;
    write_in_dm(&test, &alice, "question", 1).await;
    let root = test.hs.sent_to(&control)[0].event_id.clone();
    let answer = |n: u32| {
        let event_id: OwnedEventId = format!("$answer-{n}").try_into().unwrap();
        let event = json!({ "type": "m.room.message", "event_id": event_id, "content": {
            "msgtype": "m.text", "body": format!("answer {n}"),
            "m.relates_to": { "rel_type": "m.thread", "event_id": root } } });
        (event_id, event)
    };
    let admin: OwnedUserId = "@admin:example.org".try_into().unwrap();
    let (event_id, event) = answer(1);
    assert!(matches!(
        on_thread_message(&test.rooms, &control, &admin, &event_id, &event).await,
        Handled::Done
    ));
    let alice_dm = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
    let bob_dm = test.store().live_dm(None, &bob).await.unwrap().unwrap().room_id.unwrap();
    assert_eq!(test.hs.bodies_in(&alice_dm), ["answer 1"]);
    assert!(test.hs.bodies_in(&bob_dm).is_empty(), "never another recipient");
    let reactions: Vec<_> =
        test.hs.sent_to(&control).into_iter().filter(|sent| sent.event_type == "m.reaction").collect();
    assert_eq!(reactions[0].content["m.relates_to"]["key"], "✅");

    let nobody: OwnedUserId = "@nobody:example.org".try_into().unwrap();
    let (event_id, event) = answer(2);
    assert!(matches!(
        on_thread_message(&test.rooms, &control, &nobody, &event_id, &event).await,
        Handled::Done
    ));
    assert_eq!(test.hs.bodies_in(&alice_dm), ["answer 1"], "people without the level are not passed on");

    test.hs.set_membership(&alice_dm, &alice, MembershipState::Leave);
    let (event_id, event) = answer(3);
    assert!(matches!(
        on_thread_message(&test.rooms, &control, &admin, &event_id, &event).await,
        Handled::Done
    ));
    let last = test.hs.sent_to(&control).pop().unwrap();
    assert_eq!(last.content["body"], "Not delivered: @alice:example.org has left their DM with me");
    assert_eq!(thread_of(&last), Some(root.to_string()));
    // Issue 10, item 15: never into a DM that gained a third member.
    test.hs.set_membership(&alice_dm, &alice, MembershipState::Join);
    let mallory = test.hs.user("mallory", None);
    test.hs.set_membership(&alice_dm, &mallory, MembershipState::Join);
    let (event_id, event) = answer(4);
    assert!(matches!(
        on_thread_message(&test.rooms, &control, &admin, &event_id, &event).await,
        Handled::Done
    ));
    assert_eq!(test.hs.bodies_in(&alice_dm), ["answer 1"], "nothing into a room with a third member");
    let last = test.hs.sent_to(&control).pop().unwrap();
    assert_eq!(
        last.content["body"],
        "Not delivered: the DM of @alice:example.org has a third member, so nothing is sent there"
    );
    let sent_before = test.hs.sent_to(&control).len();
    let not_a_thread = json!({ "content": { "body": "x" } });
    on_thread_message(&test.rooms, &control, &admin, &owned_event_id!("$x"), &not_a_thread).await;
    assert_eq!(test.hs.sent_to(&control).len(), sent_before, "a message outside a thread is left alone");
    assert_eq!(test.hs.bodies_in(&alice_dm), ["answer 1"]);
}

/// Issue 10, item 14: what a recipient writes cannot ping the control room or smuggle markup.
#[tokio::test]
async fn relayed_replies_cannot_ping_or_spoof() {
    let test = TestRooms::new().await;
    let control = test.control_room().await;
    let mallory = test.hs.user("mallory", Some("@room"));
    delivered(&test, &control, "News", std::slice::from_ref(&mallory)).await;
    let dm = test.store().live_dm(None, &mallory).await.unwrap().unwrap();
    let room = dm.room_id.clone().unwrap();
    let event_id = owned_event_id!("$evil");
    let event = json!({ "type": "m.room.message", "room_id": room, "sender": mallory, "event_id": event_id,
        "content": { "msgtype": "m.text", "body": "@room look", "format": "org.matrix.custom.html",
            "formatted_body": "<b>hi</b><script>alert(1)</script><img src=\"https://evil.example/x.png\">",
            "m.mentions": { "room": true }, "evil.key": 1 } });
    on_dm_message(&test.rooms, &dm, &room, &event_id, &event).await;
    let sent = test.hs.sent_to(&control);
    let (title, relayed) = (&sent[0].content, &sent[1].content);
    assert_eq!(title["body"], "Replies from “@room” (@mallory:example.org) to «News» #1");
    assert_eq!(title["m.mentions"], json!({}), "the title mentions nobody");
    assert_eq!(relayed["m.mentions"], json!({}), "the relayed copy mentions nobody");
    let html = relayed["formatted_body"].as_str().unwrap();
    assert!(html.starts_with("<b>hi</b>") && !html.contains("<script") && !html.contains("<img"), "{html}");
    assert!(relayed.get("evil.key").is_none(), "only known content keys: {relayed}");
    assert_eq!(relayed["body"], "@room look");
}

/// `user`'s edit `n` in their DM `room` of their message `original`, to `new` (content).
async fn edit_in_dm(test: &TestRooms, user: &UserId, room: &RoomId, original: &EventId, n: u32, new: Value) {
    let dm = test.store().live_dm(None, user).await.unwrap().expect("a DM");
    let event_id: OwnedEventId = format!("${}-edit-{n}", user.localpart()).try_into().unwrap();
    let event = json!({ "type": "m.room.message", "room_id": room, "sender": user, "event_id": event_id,
        "content": { "msgtype": "m.text", "body": "* edited", "m.new_content": new,
            "m.relates_to": { "rel_type": "m.replace", "event_id": original } } });
    on_dm_message(&test.rooms, &dm, room, &event_id, &event).await;
}

fn edits_in(test: &TestRooms, room: &RoomId) -> Vec<Value> {
    let sent = test.hs.sent_to(room).into_iter();
    sent.filter(|sent| sent.content["m.relates_to"]["rel_type"] == "m.replace")
        .map(|sent| sent.content)
        .collect()
}

/// Issue 22, item 5: an edit of a relayed reply passes the gate a new reply passes: its HTML
/// is sanitized, it mentions nobody, the per-person limit counts it, and it never goes into a
/// room that stopped being a control room.
#[tokio::test]
async fn an_edit_of_a_relayed_reply_passes_the_same_gate() {
    let test = TestRooms::new().await;
    let control = test.control_room().await;
    let mallory = test.hs.user("mallory", None);
    delivered(&test, &control, "News", std::slice::from_ref(&mallory)).await;
    let dm = test.store().live_dm(None, &mallory).await.unwrap().unwrap().room_id.unwrap();
    let original = write_in_dm(&test, &mallory, "hello", 1).await;
    let evil = json!({ "msgtype": "m.text", "body": "@room look", "format": "org.matrix.custom.html",
        "formatted_body": "<b>hi</b><script>alert(1)</script>", "m.mentions": { "room": true } });
    edit_in_dm(&test, &mallory, &dm, &original, 1, evil).await;
    let edits = edits_in(&test, &control);
    assert_eq!(edits.len(), 1, "{edits:?}");
    let edit = &edits[0];
    assert_eq!(edit["m.mentions"], json!({}), "the edit mentions nobody: {edit}");
    assert_eq!(edit["m.new_content"]["m.mentions"], json!({}), "{edit}");
    let html = edit["m.new_content"]["formatted_body"].as_str().unwrap();
    assert!(html.starts_with("<b>hi</b>") && !html.contains("<script"), "{html}");
    assert!(!edit["formatted_body"].as_str().unwrap().contains("<script"), "{edit}");
    assert_eq!(edit["body"], "* @room look");

    // Two more messages and the next edit fill the minute's five; the edit after is held.
    for n in 2..=3 {
        write_in_dm(&test, &mallory, &format!("more {n}"), n).await;
    }
    edit_in_dm(&test, &mallory, &dm, &original, 2, json!({ "msgtype": "m.text", "body": "fifth" })).await;
    edit_in_dm(&test, &mallory, &dm, &original, 3, json!({ "msgtype": "m.text", "body": "sixth" })).await;
    let bodies: Vec<_> = edits_in(&test, &control).iter().map(|edit| edit["body"].clone()).collect();
    assert_eq!(bodies, [json!("* @room look"), json!("* fifth")], "the sixth message of the minute is held");

    let test = TestRooms::new().await;
    let control = test.control_room().await;
    delivered(&test, &control, "News", std::slice::from_ref(&mallory)).await;
    let dm = test.store().live_dm(None, &mallory).await.unwrap().unwrap().room_id.unwrap();
    let original = write_in_dm(&test, &mallory, "hello", 1).await;
    test.store().remove_control_room(&control).await.unwrap();
    edit_in_dm(&test, &mallory, &dm, &original, 1, json!({ "msgtype": "m.text", "body": "late" })).await;
    assert!(edits_in(&test, &control).is_empty(), "nothing into a room that is no longer a control room");
}

/// Issue 22, item 12: an edit or redaction names a relayed message by its event ID, which
/// counts only in the DM the message came from.
#[tokio::test]
async fn edits_and_redactions_count_only_in_the_dm_of_the_relayed_message() {
    let test = TestRooms::new().await;
    let control = test.control_room().await;
    let (alice, bob) = (test.hs.user("alice", None), test.hs.user("bob", None));
    delivered(&test, &control, "News", &[alice.clone(), bob.clone()]).await;
    let alice_dm = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
    let bob_dm = test.store().live_dm(None, &bob).await.unwrap().unwrap().room_id.unwrap();
    let original = write_in_dm(&test, &alice, "hello", 1).await;

    edit_in_dm(&test, &bob, &bob_dm, &original, 1, json!({ "msgtype": "m.text", "body": "forged" })).await;
    assert!(edits_in(&test, &control).is_empty(), "an edit from another DM is ignored");
    on_dm_redaction(&test.rooms, &bob_dm, &original).await;
    assert!(test.hs.with(|state| state.redacted.is_empty()), "a redaction from another DM is ignored");

    edit_in_dm(&test, &alice, &alice_dm, &original, 1, json!({ "msgtype": "m.text", "body": "fixed" })).await;
    assert_eq!(edits_in(&test, &control).len(), 1, "her own edit is relayed");
    on_dm_redaction(&test.rooms, &alice_dm, &original).await;
    assert_eq!(test.hs.with(|state| state.redacted.len()), 1, "her own redaction retracts the copy");
}

/// Issue 10, item 5: nothing is relayed into a room that is no longer a control room.
#[tokio::test]
async fn nothing_is_relayed_into_a_room_that_stopped_being_a_control_room() {
    let test = TestRooms::new().await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", None);
    delivered(&test, &control, "News", std::slice::from_ref(&alice)).await;
    test.store().remove_control_room(&control).await.unwrap();
    write_in_dm(&test, &alice, "secret", 1).await;
    assert!(test.hs.sent_to(&control).is_empty(), "{:?}", test.hs.bodies_in(&control));
}

/// Issue 10, item 3: a flood from one person folds into one notice per minute.
#[tokio::test]
async fn a_flood_of_replies_folds_into_one_notice() {
    let test = TestRooms::new().await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", None);
    delivered(&test, &control, "News", std::slice::from_ref(&alice)).await;
    for n in 0..10 {
        write_in_dm(&test, &alice, &format!("spam {n}"), n).await;
    }
    let bodies = test.hs.bodies_in(&control);
    assert_eq!(bodies.len(), 1 + 5 + 1, "title, five replies, one notice: {bodies:?}");
    assert_eq!(bodies[5], "spam 4");
    assert!(bodies[6].contains("more than 5 messages within a minute"), "{bodies:?}");
}

/// Issue 10, item 3: a slow remote profile look-up does not hold up the dispatcher; issue 22:
/// the thread's title takes the name from the member event in the DM, never asking a profile.
#[tokio::test]
async fn a_slow_profile_look_up_does_not_hold_up_a_reply() {
    let test = TestRooms::new().await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", Some("Alice"));
    delivered(&test, &control, "News", std::slice::from_ref(&alice)).await;
    test.hs.with(|state| state.slow.insert("displayname", std::time::Duration::from_secs(30)));
    let started = std::time::Instant::now();
    write_in_dm(&test, &alice, "hello", 1).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(test.hs.bodies_in(&control)[0], "Replies from “Alice” (@alice:example.org) to «News» #1");
    assert_eq!(test.hs.count("displayname"), 0, "no profile look-up");
}

/// Issue 15: with `language: de`, `stopp` opts out and the recipient is answered in German.
#[tokio::test]
async fn in_german_stopp_opts_out_with_a_german_confirmation() {
    let test = TestRooms::with_config("language: de\n").await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", None);
    delivered(&test, &control, "Neuigkeiten", std::slice::from_ref(&alice)).await;
    let dm: OwnedRoomId = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
    write_in_dm(&test, &alice, "Stopp", 1).await;
    assert!(test.store().is_opted_out(&alice).await.unwrap());
    write_in_dm(&test, &alice, "start", 2).await;
    assert!(!test.store().is_opted_out(&alice).await.unwrap());
    write_in_dm(&test, &alice, "stop", 3).await;
    assert!(test.store().is_opted_out(&alice).await.unwrap(), "`stop` too");
    assert_eq!(
        test.hs.bodies_in(&dm),
        [
            "Sie erhalten von hier keine Rundsendungen mehr. Schreiben Sie `start`, um sie wieder zu erhalten.",
            "Sie erhalten wieder Rundsendungen.",
            "Sie erhalten von hier keine Rundsendungen mehr. Schreiben Sie `start`, um sie wieder zu erhalten.",
        ]
    );
    assert!(test.hs.sent_to(&control).is_empty(), "keywords are not replies");
}

/// Issue 15: in German, the thread of a recipient's replies has a German title, and the
/// notices about a flood and an undelivered answer are German.
#[tokio::test]
async fn in_german_threads_and_their_notices_are_german() {
    let test = TestRooms::with_config("language: de\n").await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", Some("Alice"));
    delivered(&test, &control, "Umfrage", std::slice::from_ref(&alice)).await;
    for n in 0..7 {
        write_in_dm(&test, &alice, &format!("Antwort {n}"), n).await;
    }
    let bodies = test.hs.bodies_in(&control);
    assert_eq!(bodies[0], "Antworten von „Alice“ (@alice:example.org) auf »Umfrage« #1");
    assert_eq!(
        bodies[6],
        "@alice:example.org hat innerhalb einer Minute mehr als 5 Nachrichten gesendet; die weiteren dieser \
         Minute werden nicht weitergeleitet (sie bleiben im Direktchat)."
    );
    let root = test.hs.sent_to(&control)[0].event_id.clone();
    let dm = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
    test.hs.set_membership(&dm, &alice, MembershipState::Leave);
    let event = json!({ "type": "m.room.message", "event_id": "$answer", "content": {
        "msgtype": "m.text", "body": "Danke", "m.relates_to": { "rel_type": "m.thread", "event_id": root } } });
    let admin: OwnedUserId = "@admin:example.org".try_into().unwrap();
    assert!(matches!(
        on_thread_message(&test.rooms, &control, &admin, &owned_event_id!("$answer"), &event).await,
        Handled::Done
    ));
    assert_eq!(
        test.hs.bodies_in(&control).pop().unwrap(),
        "Nicht zugestellt: @alice:example.org hat den Direktchat mit mir verlassen"
    );
}

/// Issue 15: with `recipient_language: user`, `sprache de` switches the bot's notices to
/// that recipient to German; the control room stays in the config's language.
#[tokio::test]
async fn a_recipient_who_chooses_german_gets_german_notices_while_admins_keep_english() {
    let test = TestRooms::with_config("broadcast:\n  recipient_language: user\n").await;
    let control = test.control_room().await;
    let (alice, bob) = (test.hs.user("alice", Some("Alice")), test.hs.user("bob", None));
    delivered(&test, &control, "News", &[alice.clone(), bob.clone()]).await;
    let alice_dm = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
    let bob_dm = test.store().live_dm(None, &bob).await.unwrap().unwrap().room_id.unwrap();

    write_in_dm(&test, &alice, "  SPRACHE de ", 1).await;
    assert_eq!(test.store().language(&alice).await.unwrap(), Some(Language::De));
    write_in_dm(&test, &alice, "stopp", 2).await;
    assert!(test.store().is_opted_out(&alice).await.unwrap(), "German stop words for her");
    write_in_dm(&test, &alice, "start", 3).await;
    write_in_dm(&test, &alice, "Hallo", 4).await;
    assert_eq!(
        test.hs.bodies_in(&alice_dm),
        [
            "Ab jetzt schreibe ich Ihnen auf Deutsch.",
            "Sie erhalten von hier keine Rundsendungen mehr. Schreiben Sie `start`, um sie wieder zu erhalten.",
            "Sie erhalten wieder Rundsendungen.",
        ]
    );
    assert_eq!(
        test.hs.bodies_in(&control),
        ["Replies from “Alice” (@alice:example.org) to «News» #1", "Hallo"],
        "the admins' texts stay English, and the language words are not relayed"
    );
    assert_eq!(test.rooms.recipient_language(&alice).await, Language::De);

    write_in_dm(&test, &bob, "stopp", 1).await;
    assert!(!test.store().is_opted_out(&bob).await.unwrap(), "bob speaks English: `stopp` is a reply");
    write_in_dm(&test, &bob, "stop", 2).await;
    write_in_dm(&test, &alice, "language EN", 5).await;
    write_in_dm(&test, &alice, "stop", 6).await;
    assert_eq!(
        test.hs.bodies_in(&bob_dm),
        ["You will get no more broadcasts from here. Write `start` to get them again."]
    );
    assert_eq!(
        test.hs.bodies_in(&alice_dm)[3..],
        [
            "From now on I will write to you in English.",
            "You will get no more broadcasts from here. Write `start` to get them again.",
        ]
    );
}

/// Issue 15: a language the bot does not speak gets a short answer naming those it does.
#[tokio::test]
async fn an_unknown_language_gets_the_list_of_languages() {
    let test = TestRooms::with_config("broadcast:\n  recipient_language: user\n").await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", None);
    delivered(&test, &control, "News", std::slice::from_ref(&alice)).await;
    let dm = test.store().live_dm(None, &alice).await.unwrap().unwrap().room_id.unwrap();
    write_in_dm(&test, &alice, "language fr", 1).await;
    write_in_dm(&test, &alice, "sprache de", 2).await;
    write_in_dm(&test, &alice, "Sprache xx", 3).await;
    assert_eq!(
        test.hs.bodies_in(&dm),
        [
            "I do not speak “fr”. Write `language en` for English or `language de` for German.",
            "Ab jetzt schreibe ich Ihnen auf Deutsch.",
            "Die Sprache „xx“ spreche ich nicht. Schreiben Sie `sprache de` für Deutsch oder `sprache en` für \
             Englisch.",
        ]
    );
    assert_eq!(test.store().language(&alice).await.unwrap(), Some(Language::De), "kept");
    assert!(test.hs.sent_to(&control).is_empty(), "not relayed");
}

/// Issue 15: with `recipient_language: config` (the default), `sprache de` is a reply.
#[tokio::test]
async fn without_a_recipients_choice_language_words_are_replies() {
    let test = TestRooms::new().await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", None);
    delivered(&test, &control, "News", std::slice::from_ref(&alice)).await;
    write_in_dm(&test, &alice, "sprache de", 1).await;
    assert_eq!(test.hs.bodies_in(&control)[1], "sprache de");
    assert_eq!(test.store().language(&alice).await.unwrap(), None);
    assert_eq!(test.rooms.recipient_language(&alice).await, Language::En);
}
