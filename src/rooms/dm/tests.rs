use super::*;
use crate::{
    base::matrix::{fake::forbidden, DirectChats},
    rooms::testing::TestRooms,
};

/// Issue 13 (a 5-minute outage gave 16 of 200 recipients a second DM): a claim of a delivery
/// whose lease ran out during the outage saw the DM `creating`; another claim of the same
/// delivery made it since. The first must use that room, not make a second.
#[tokio::test]
async fn a_claim_that_saw_its_dm_being_created_uses_the_room_made_since() {
    let test = TestRooms::new().await;
    let alice = test.hs.user("alice", None);
    let control = test.control_room().await;
    let options = crate::base::store::SendOptions::default();
    test.running_broadcast(&control, "Hi", std::slice::from_ref(&alice), options).await;
    let mut claims = vec![test.store().claim_delivery(60_000).await.unwrap().expect("a claim")];
    test.rooms.senders.dms.begin_for(&mut claims).await.unwrap();
    let seen = claims[0].dm.clone();
    assert_eq!(seen.as_ref().map(|dm| dm.state), Some(DmState::Creating));
    let made = test.rooms.senders.dms.ensure_seen(&alice, seen.clone()).await.unwrap();
    let again = test.rooms.senders.dms.ensure_seen(&alice, seen).await.unwrap();
    assert_eq!(again.room, made.room);
    assert_eq!(test.hs.count("create_dm"), 1, "one room");
}

#[tokio::test]
async fn a_first_dm_is_created_private_and_recorded_then_reused() {
    let test = TestRooms::new().await;
    let alice = test.hs.user("alice", None);
    let room = test.rooms.senders.dms.ensure(&alice).await.unwrap().room;
    assert_eq!(test.hs.dms_with(&alice), std::slice::from_ref(&room), "bot and alice only, alice invited");
    let created = test.hs.with(|state| state.rooms[&room].create.clone());
    let nonce = test.store().live_dm(None, &alice).await.unwrap().unwrap().nonce;
    assert_eq!(created[DM_NONCE_KEY], nonce, "the create event carries the recorded nonce");
    assert_eq!(test.rooms.senders.dms.ensure(&alice).await.unwrap().room, room, "reused");
    assert_eq!(test.hs.count("create_dm"), 1);
    assert_eq!(test.hs.count("invite"), 0, "a pending invite is left as it is");
}

/// What a member event pushed into `alice`'s DM does.
async fn pushed(test: &TestRooms, alice: &UserId, member: &UserId, membership: MembershipState) {
    let dm = test.store().live_dm(None, alice).await.unwrap().expect("a live DM");
    test.rooms.senders.dms.member_changed(&dm, member, &membership, None).await.unwrap();
}

#[tokio::test]
async fn a_recipient_who_left_is_invited_again_into_the_same_room() {
    let test = TestRooms::new().await;
    let alice = test.hs.user("alice", None);
    let room = test.rooms.senders.dms.ensure(&alice).await.unwrap().room;
    pushed(&test, &alice, &alice, MembershipState::Join).await;
    assert_eq!(test.rooms.senders.dms.ensure(&alice).await.unwrap().room, room);
    assert_eq!(test.hs.count("invite"), 0, "joined: nothing to do");
    test.hs.set_membership(&room, &alice, MembershipState::Leave);
    pushed(&test, &alice, &alice, MembershipState::Leave).await;
    assert_eq!(test.rooms.senders.dms.ensure(&alice).await.unwrap().room, room);
    assert_eq!((test.hs.count("invite"), test.hs.count("create_dm")), (1, 1));
    assert_eq!(test.rooms.senders.dms.ensure(&alice).await.unwrap().room, room);
    assert_eq!(test.hs.count("invite"), 1, "invited once: the store knows");
    pushed(&test, &alice, &alice, MembershipState::Ban).await;
    let error = test.rooms.senders.dms.ensure(&alice).await.unwrap_err();
    assert!(error.to_string().contains("banned"), "{error}");
}

#[tokio::test]
async fn a_dm_with_a_third_member_is_retired_and_a_new_one_made() {
    let test = TestRooms::new().await;
    let alice = test.hs.user("alice", None);
    let mallory = test.hs.user("mallory", None);
    let first = test.rooms.senders.dms.ensure(&alice).await.unwrap().room;
    pushed(&test, &alice, &mallory, MembershipState::Invite).await;
    let second = test.rooms.senders.dms.ensure(&alice).await.unwrap().room;
    assert_ne!(first, second);
    assert_eq!(test.store().dm_by_room(&first).await.unwrap().unwrap().state, DmState::Retired);
    assert_eq!(
        test.store().ready_dms(None).await.unwrap(),
        [(alice, second)],
        "m.direct lists the new one only"
    );
}

/// Issue 11: the intents for a batch of claims are recorded at once, for those without a DM
/// only; the room is then made with the recorded nonce, without a search.
#[tokio::test]
async fn intents_are_recorded_for_a_batch_and_used_by_the_deliveries() {
    let test = TestRooms::new().await;
    let (alice, bob, carol) =
        (test.hs.user("alice", None), test.hs.user("bob", None), test.hs.user("carol", None));
    let bobs = test.rooms.senders.dms.ensure(&bob).await.unwrap().room;
    test.store().opt_out(&carol).await.unwrap();
    let users = [alice.clone(), bob.clone(), carol.clone()];
    let control = test.control_room().await;
    test.running_broadcast(&control, "Hi", &users, Default::default()).await;
    let mut claims = test.store().claim_deliveries(60_000, 10).await.unwrap();
    test.rooms.senders.dms.begin_for(&mut claims).await.unwrap();
    let states: Vec<_> = claims.iter().map(|claim| claim.dm.as_ref().map(|dm| dm.state)).collect();
    assert_eq!(states, [Some(DmState::Creating), Some(DmState::Ready), None], "alice, bob, carol");
    let nonce = claims[0].dm.as_ref().unwrap().nonce.clone();
    let room = test.rooms.senders.dms.ensure_seen(&alice, claims[0].dm.clone()).await.unwrap().room;
    assert_eq!(test.hs.with(|state| state.rooms[&room].create[DM_NONCE_KEY].clone()), nonce.as_str());
    assert_eq!(test.hs.count("joined_rooms"), 0, "no search for a room never asked for");
    assert_eq!(test.rooms.senders.dms.ensure_seen(&bob, claims[1].dm.clone()).await.unwrap().room, bobs);
}

#[tokio::test]
async fn a_room_created_before_a_crash_is_adopted_not_made_twice() {
    let test = TestRooms::new().await;
    let alice = test.hs.user("alice", None);
    // The bot recorded its intent and created the room, then died before recording it.
    assert!(test.store().begin_dm(None, &alice, "nonce-1").await.unwrap());
    let room = test.hs.create_dm(&alice, "nonce-1", false).await.unwrap();
    assert_eq!(test.rooms.senders.dms.ensure(&alice).await.unwrap().room, room);
    assert_eq!(test.hs.count("create_dm"), 1, "only the room made before the crash");
    // Died before creating it: the homeserver might still be at it, so nothing is made while
    // the record is young; later the room is made with the recorded nonce.
    let bob = test.hs.user("bob", None);
    assert!(test.store().begin_dm(None, &bob, "nonce-2").await.unwrap());
    assert!(matches!(test.rooms.senders.dms.ensure(&bob).await, Err(DmError::CreatingElsewhere)));
    assert_eq!(test.hs.count("create_dm"), 1);
    let later =
        Dms::new(test.store().clone(), test.hs.clone(), test.rooms.bot.clone()).without_creation_wait();
    let made = later.ensure(&bob).await.unwrap().room;
    assert_eq!(test.hs.with(|state| state.rooms[&made].create[DM_NONCE_KEY].clone()), "nonce-2");
    assert_eq!(test.hs.count("create_dm"), 2);
}

/// A room whose creation stopped before its `m.room.encryption` (the homeserver died) is
/// made encrypted when an encrypting bot adopts it, before the recipient gets anything there.
#[tokio::test]
async fn an_adopted_room_meant_to_be_encrypted_is_made_encrypted() {
    let test = TestRooms::new().await;
    let alice = test.hs.user("alice", None);
    assert!(test.store().begin_dm(None, &alice, "nonce-1").await.unwrap());
    let room = test.hs.create_dm(&alice, "nonce-1", false).await.unwrap();
    let dms = Dms::new(test.store().clone(), test.hs.clone(), test.rooms.bot.clone()).with_encryption(true);
    let dm = dms.ensure(&alice).await.unwrap();
    assert_eq!((dm.room.clone(), dm.encrypted), (room.clone(), true));
    assert!(test.hs.with(|state| state.rooms[&room].encrypted), "m.room.encryption sent");
    assert_eq!(test.hs.count("send_state"), 1);
    assert!(test.store().dm_by_room(&room).await.unwrap().unwrap().encrypted, "recorded encrypted");
}

#[tokio::test]
async fn refused_rooms_leave_nothing_to_reconcile() {
    let test = TestRooms::new().await;
    let alice = test.hs.user("alice", None);
    test.hs.fail_next("create_dm", forbidden("not allowed"));
    assert!(matches!(
        test.rooms.senders.dms.ensure(&alice).await,
        Err(DmError::Matrix(MatrixError::Permanent { .. }))
    ));
    assert_eq!(test.store().live_dm(None, &alice).await.unwrap(), None, "a refused creation is forgotten");

    test.hs.fail_next("create_dm", MatrixError::NetworkFailure("connection reset".into()));
    assert!(test.rooms.senders.dms.ensure(&alice).await.is_err());
    let kept = test.store().live_dm(None, &alice).await.unwrap().expect("an unknown outcome is kept");
    assert_eq!(kept.state, DmState::Creating);
    let room = test.rooms.senders.dms.ensure(&alice).await.unwrap().room;
    assert_eq!(test.hs.dms_with(&alice), [room], "reconciled into exactly one room");
}

#[tokio::test]
async fn a_chat_a_person_opens_is_adopted_unless_encrypted() {
    let test = TestRooms::new().await;
    let alice = test.hs.user("alice", None);
    let opened = test.hs.room(&alice, &[], false);
    test.hs.set_membership(&opened, &test.rooms.bot, MembershipState::Invite);
    test.rooms.senders.dms.adopt_invited(&opened, &alice, ruma::event_id!("$invite")).await;
    assert_eq!(test.store().live_dm(None, &alice).await.unwrap().and_then(|dm| dm.room_id), Some(opened));

    let bob = test.hs.user("bob", None);
    let secret = test.hs.room(&bob, &[], false);
    test.hs.with(|state| state.rooms.get_mut(&secret).unwrap().encrypted = true);
    test.rooms.senders.dms.adopt_invited(&secret, &bob, ruma::event_id!("$invite2")).await;
    assert_eq!(test.store().live_dm(None, &bob).await.unwrap(), None);
    let said = test.hs.bodies_in(&secret);
    assert!(said[0].starts_with("This chat is encrypted"), "{said:?}");
}

/// Issue 10, item 12: a DM the bot was removed from is retired and replaced, not failed
/// forever. Issue 11: the removal is known from the member event pushed to the bot.
#[tokio::test]
async fn a_dm_the_bot_was_removed_from_is_replaced() {
    let test = TestRooms::new().await;
    let alice = test.hs.user("alice", None);
    let first = test.rooms.senders.dms.ensure(&alice).await.unwrap().room;
    test.hs.set_membership(&first, &test.rooms.bot, MembershipState::Leave); // kicked by alice
    pushed(&test, &alice, &test.rooms.bot, MembershipState::Leave).await;
    let second = test.rooms.senders.dms.ensure(&alice).await.expect("a new DM").room;
    assert_ne!(first, second);
    assert_eq!(test.store().dm_by_room(&first).await.unwrap().unwrap().state, DmState::Retired);
    assert_eq!(test.hs.count("joined_members"), 0, "no member list asked for");
}
