//! Default broadcasts: people who join later (or register later, for `server`) get the welcome
//! message once.

use crate::harness::{wait_for, TestEnv, TestUser};

/// The bodies of the bot's messages to `user`, across all their DM rooms.
async fn received(root: &TestUser, bot: &str, control_room: &str, user: &TestUser) -> Vec<String> {
    root.dm_census(bot, &[control_room])
        .await
        .iter()
        .filter(|dm| dm.others.contains(&user.user_id))
        .flat_map(|dm| {
            dm.messages.iter().map(|content| content["body"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

/// Waits until `user` received a message containing `text`.
async fn wait_received(root: &TestUser, bot: &str, control_room: &str, user: &TestUser, text: &str) {
    wait_for(&format!("{} to receive {text:?}", user.user_id), || async {
        received(root, bot, control_room, user).await.iter().any(|body| body.contains(text)).then_some(())
    })
    .await
}

async fn send(admin: &TestUser, room: &str, bot: &str, command: &str) -> String {
    let event = admin.send_text(room, command).await;
    let answer = admin.wait_for_answer(room, bot, &event).await;
    assert_eq!(answer.reaction, "✅", "{command}: {}", answer.body);
    answer.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_gets_the_welcome_once_even_after_leaving_and_rejoining() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root, alice) = (env.user("admin").await, env.server_admin().await, env.user("alice").await);
    let room = env.control_room(&admin).await;
    let space = env.space(&admin, "company", &[&alice]).await;
    send(
        &admin,
        &room,
        &bot,
        &format!("!bc send {space} --default --yes --name Welcome\nWelcome, {{displayname}}!"),
    )
    .await;
    wait_received(&root, &bot, &room, &alice, "Welcome, alice!").await;

    let space_id = admin.resolve_alias(&space).await;
    let bob = env.user("bob").await;
    bob.join(&space_id).await;
    wait_received(&root, &bot, &room, &bob, "Welcome, bob!").await;
    bob.leave(&space_id).await;
    bob.join(&space_id).await;
    // Joins are handled in order: once carol, who joined after bob's return, has it, bob's
    // return has been handled too.
    let carol = env.user("carol").await;
    carol.join(&space_id).await;
    wait_received(&root, &bot, &room, &carol, "Welcome, carol!").await;
    assert_eq!(received(&root, &bot, &room, &bob).await, ["Welcome, bob!"], "once per person, ever");
    assert_eq!(received(&root, &bot, &room, &alice).await, ["Welcome, alice!"]);

    let list = send(&admin, &room, &bot, "!bc defaults").await;
    assert!(
        list.contains("#1 «Welcome»") && list.contains(&space_id) && list.contains("on — 4 received it"),
        "{list}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_defaults_both_arrive_once_and_default_off_stops_one() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let room = env.control_room(&admin).await;
    let space = env.space(&admin, "company", &[]).await;
    send(&admin, &room, &bot, &format!("!bc send {space} --default --yes --name Hello\nHello from HR")).await;
    send(&admin, &room, &bot, &format!("!bc send {space} --default --yes --name Rules\nHouse rules")).await;
    admin.wait_for_finished_count(&room, &bot, 2, crate::harness::DEADLINE).await;

    let space_id = admin.resolve_alias(&space).await;
    let dave = env.user("dave").await;
    dave.join(&space_id).await;
    wait_for("dave's two welcomes", || async {
        let mut got = received(&root, &bot, &room, &dave).await;
        got.sort();
        (got == ["Hello from HR", "House rules"]).then_some(())
    })
    .await;

    let answer = send(&admin, &room, &bot, "!bc default off #1").await;
    assert!(answer.contains("no longer a default"), "{answer}");
    let erin = env.user("erin").await;
    erin.join(&space_id).await;
    wait_received(&root, &bot, &room, &erin, "House rules").await;
    assert_eq!(received(&root, &bot, &room, &erin).await, ["House rules"], "#1 is off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_who_joined_while_the_bot_was_stopped_gets_it_after_restart() {
    let mut env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let room = env.control_room(&admin).await;
    let space = env.space(&admin, "company", &[]).await;
    send(&admin, &room, &bot, &format!("!bc send {space} --default --yes\nGood to have you")).await;
    admin.wait_for_finished(&room, &bot).await;

    env.stop_bot().await.expect("stop");
    let frank = env.user("frank").await;
    frank.join(&admin.resolve_alias(&space).await).await;
    env.start_bot().await;
    wait_received(&root, &bot, &room, &frank, "Good to have you").await;
    assert_eq!(received(&root, &bot, &room, &frank).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_account_gets_the_server_default() {
    let env = TestEnv::start_with("broadcast:\n    new_user_poll_seconds: 1\n").await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let room = env.control_room(&admin).await;
    let (status, _) = root
        .call(
            reqwest::Method::PUT,
            &format!("/_synapse/admin/v2/users/{bot}"),
            Some(serde_json::json!({ "admin": true })),
        )
        .await;
    assert_eq!(status, 200);
    send(&admin, &room, &bot, "!bc send server --default --yes --name Onboarding\nWelcome to the server")
        .await;
    admin.wait_for_finished(&room, &bot).await;

    let gina = env.user("gina").await;
    wait_received(&root, &bot, &room, &gina, "Welcome to the server").await;
    assert_eq!(received(&root, &bot, &room, &gina).await.len(), 1);
}
