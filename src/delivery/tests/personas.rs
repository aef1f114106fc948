//! Sending as a persona, through the delivery queue: the persona's own DM, replies in it
//! relayed, its DM retired and made again.

use ruma::{owned_event_id, OwnedUserId, UserId};
use serde_json::json;

use crate::{
    base::{
        matrix::fake::{FakeHomeserver, Sent},
        store::SendOptions,
    },
    delivery::testing::TestDelivery,
    rooms::testing::{TestRooms, HR_PERSONA},
};

fn hr() -> OwnedUserId {
    "@broadcast_hr:example.org".try_into().unwrap()
}

/// Options that send as the persona `hr`.
fn as_hr() -> SendOptions {
    SendOptions { persona: Some("hr".into()), ..SendOptions::default() }
}

/// What `sender` sent into `room`.
fn sent_by(hs: &FakeHomeserver, sender: &UserId, room: &ruma::RoomId) -> Vec<Sent> {
    hs.sent_to(room).into_iter().filter(|sent| sent.sender == sender).collect()
}

#[tokio::test]
async fn a_persona_broadcast_goes_into_the_personas_own_dm_sent_as_the_persona() {
    let test = TestDelivery::with_config(HR_PERSONA).await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", Some("Alice"));
    let from_bot = test
        .running_broadcast(&control, "From the bot", std::slice::from_ref(&alice), Default::default())
        .await;
    test.deliver_all(from_bot, 1).await;
    let from_hr =
        test.running_broadcast(&control, "Hello {displayname}", std::slice::from_ref(&alice), as_hr()).await;
    test.deliver_all(from_hr, 1).await;
    let again = test.running_broadcast(&control, "Again", std::slice::from_ref(&alice), as_hr()).await;
    test.deliver_all(again, 1).await;

    let bot_dm = test.hs.dms_with(&alice);
    let hr_dm = test.hs.dms_between(&hr(), &alice);
    assert_eq!((bot_dm.len(), hr_dm.len()), (1, 1), "one DM with each sender");
    assert_ne!(bot_dm, hr_dm, "two different rooms");
    let hr_room = &hr_dm[0];
    let bodies: Vec<_> =
        sent_by(&test.hs, &hr(), hr_room).iter().map(|sent| sent.content["body"].clone()).collect();
    assert_eq!(bodies, [json!("Hello Alice"), json!("Again")], "sent as the persona, DM reused");
    assert_eq!(test.hs.sent_to(hr_room).len(), 2, "nothing else, nobody else, in the persona's DM");
    assert_eq!(test.hs.bodies_in(&bot_dm[0]), ["From the bot"]);
    let stored = test.store().live_dm(Some("hr"), &alice).await.unwrap().expect("recorded");
    assert_eq!((stored.room_id.as_ref(), stored.persona.as_deref()), (Some(hr_room), Some("hr")));
    assert_eq!(
        test.store().live_dm(None, &alice).await.unwrap().and_then(|dm| dm.room_id).as_ref(),
        Some(&bot_dm[0])
    );
    assert_eq!(test.hs.count("create_dm"), 2);
    assert_eq!(test.hs.with(|state| state.registered.clone()), [hr()], "registered at its first broadcast");
}

/// A message `user` writes in their DM with `owner` (the bot or a persona).
async fn write_in_dm(test: &TestRooms, persona: Option<&str>, user: &UserId, body: &str, n: u32) {
    let dm = test.store().live_dm(persona, user).await.unwrap().expect("a DM");
    let room = dm.room_id.clone().expect("created");
    let event_id: ruma::OwnedEventId = format!("${}-{n}", user.localpart()).try_into().unwrap();
    let event = json!({ "type": "m.room.message", "room_id": room, "sender": user, "event_id": event_id,
                        "content": { "msgtype": "m.text", "body": body } });
    crate::rooms::relay::on_dm_message(&test.rooms, &dm, &room, &event_id, &event).await;
}

#[tokio::test]
async fn replies_in_a_persona_dm_reach_the_control_room_and_answers_go_back_as_the_persona() {
    let test = TestDelivery::with_config(HR_PERSONA).await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", Some("Alice"));
    let id = test.running_broadcast(&control, "Survey", std::slice::from_ref(&alice), as_hr()).await;
    test.deliver_all(id, 1).await;
    let hr_room = test.hs.dms_between(&hr(), &alice).pop().expect("the persona's DM");

    write_in_dm(&test, Some("hr"), &alice, "my answer", 1).await;
    let in_control = test.hs.sent_to(&control);
    let root = in_control[0].event_id.clone();
    assert_eq!(in_control[0].content["body"], format!("Replies from “Alice” ({alice}) to «Survey» {id}"));
    assert_eq!(in_control[1].content["body"], "my answer");
    assert!(in_control.iter().all(|sent| sent.sender == test.rooms.bot), "the bot relays");

    let answer = json!({ "type": "m.room.message", "event_id": "$answer", "content": {
        "msgtype": "m.text", "body": "thanks!", "m.relates_to": { "rel_type": "m.thread", "event_id": root } } });
    let admin: OwnedUserId = "@admin:example.org".try_into().unwrap();
    let handled = crate::rooms::relay::on_thread_message(
        &test.rooms,
        &control,
        &admin,
        &owned_event_id!("$answer"),
        &answer,
    )
    .await;
    assert!(matches!(handled, crate::rooms::handled::Handled::Done));
    let bodies: Vec<_> =
        sent_by(&test.hs, &hr(), &hr_room).iter().map(|sent| sent.content["body"].clone()).collect();
    assert_eq!(bodies, [json!("Survey"), json!("thanks!")], "the answer, sent as the persona");

    write_in_dm(&test, Some("hr"), &alice, "stop", 2).await;
    assert!(test.store().is_opted_out(&alice).await.unwrap());
    let notice = sent_by(&test.hs, &hr(), &hr_room).pop().unwrap();
    assert!(
        notice.content["body"].as_str().unwrap().starts_with("You will get no more broadcasts"),
        "{notice:?}"
    );
}

/// A member event pushed from a persona's DM is the persona's: the persona leaving retires
/// that DM (not the bot's), and the next broadcast makes a new one.
#[tokio::test]
async fn a_persona_removed_from_its_dm_gets_a_new_one() {
    let test = TestDelivery::with_config(HR_PERSONA).await;
    let control = test.control_room().await;
    let alice = test.hs.user("alice", None);
    let first = test.running_broadcast(&control, "One", std::slice::from_ref(&alice), as_hr()).await;
    test.deliver_all(first, 1).await;
    let dm = test.store().live_dm(Some("hr"), &alice).await.unwrap().unwrap();
    let dms = test.rooms.senders.dms_of(dm.persona.as_deref()).expect("the persona's DMs");
    dms.member_changed(&dm, &hr(), &ruma::events::room::member::MembershipState::Leave, None).await.unwrap();
    assert_eq!(test.store().live_dm(Some("hr"), &alice).await.unwrap(), None, "retired");
    let second = test.running_broadcast(&control, "Two", std::slice::from_ref(&alice), as_hr()).await;
    test.deliver_all(second, 1).await;
    let now = test.store().live_dm(Some("hr"), &alice).await.unwrap().unwrap().room_id.unwrap();
    assert_ne!(Some(now), dm.room_id);
}
