//! The E2EE test client itself (`harness::e2ee`), against a real Synapse: two people on it talk in
//! an encrypted room, each reading what the other wrote, a device logged in later reads what is
//! sent after it, and Synapse never stores the text in clear.

use serde_json::json;

use crate::harness::{
    e2ee::{synapse_holds_text, E2eeUser},
    wait_for, TestEnv,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_messages_reach_every_device_and_never_the_server_in_clear() {
    let env = TestEnv::start().await;
    let (alice_account, bob_account) = (env.user("alice").await, env.user("bob").await);
    let alice = E2eeUser::login(&env.synapse, &alice_account).await;
    let bob = E2eeUser::login(&env.synapse, &bob_account).await;

    let room = alice.create_encrypted_room(&[&bob.user_id]).await;
    bob.wait_joined(&room).await;
    let secret = alice.send_text(&room, "hello secret").await;
    let received = bob.wait_for_decrypted(&room, &alice.user_id, "hello secret").await;
    assert_eq!(received["event_id"], secret, "bob decrypts alice's event: {received}");
    assert_eq!(received["content"]["msgtype"], "m.text", "bob decrypts alice's text: {received}");

    let question = bob.send_text(&room, "hello alice").await;
    alice.wait_for_decrypted(&room, &bob.user_id, "hello alice").await;
    let reply = json!({
        "msgtype": "m.text",
        "body": "a threaded answer",
        "m.relates_to": { "rel_type": "m.thread", "event_id": question },
    });
    alice.send_content(&room, reply).await;
    let threaded = bob.wait_for_decrypted(&room, &alice.user_id, "a threaded answer").await;
    assert_eq!(threaded["content"]["m.relates_to"]["event_id"], question, "the relation is kept: {threaded}");

    let bob_phone = bob.second_device().await;
    alice.wait_for_device(&bob.user_id, &bob_phone.device_id()).await;
    alice.send_text(&room, "for every device").await;
    bob_phone.wait_for_decrypted(&room, &alice.user_id, "for every device").await;
    bob.wait_for_decrypted(&room, &alice.user_id, "for every device").await;
    let before_the_phone = bob_phone.decrypted_events(&room).await;
    let unreadable = before_the_phone.iter().find(|event| event["event_id"] == secret);
    assert_eq!(
        unreadable.map(|event| &event["type"]),
        Some(&json!("m.room.encrypted")),
        "a device logged in later cannot read what was sent before it (no key backup): {before_the_phone:#?}"
    );

    for text in ["hello secret", "hello alice", "a threaded answer", "for every device"] {
        assert!(!synapse_holds_text(&env.synapse, text).await, "Synapse stores {text:?} in clear");
    }
    // The check can see plaintext: a message in an unencrypted room is there.
    let clear_room = alice_account.create_room(json!({ "preset": "private_chat" })).await;
    alice_account.send_text(&clear_room, "not a secret").await;
    assert!(synapse_holds_text(&env.synapse, "not a secret").await, "an unencrypted message is found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_on_the_e2ee_client_joins_the_bots_dm_and_reads_the_broadcast() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let admin = env.user("admin").await;
    let carol = E2eeUser::login(&env.synapse, &env.user("carol").await).await;
    let control = env.control_room(&admin).await;

    let command = admin.send_text(&control, &format!("!bc send {} --yes\nHi Carol", carol.user_id)).await;
    let answer = admin.wait_for_answer(&control, &bot, &command).await;
    assert_eq!(answer.reaction, "✅", "{}", answer.body);

    let dm = carol.dm_with(&bot).await;
    assert_eq!(
        carol.dms_with(&bot).await,
        std::slice::from_ref(&dm),
        "carol has exactly one DM with the bot"
    );
    wait_for("carol to read the broadcast in her DM", || async {
        let events = carol.decrypted_events(&dm).await;
        events.into_iter().find(|event| {
            event["type"] == "m.room.message"
                && event["sender"] == bot
                && event["content"]["body"] == "Hi Carol"
        })
    })
    .await;
}
