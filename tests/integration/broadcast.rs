//! Broadcasts end to end, as an admin in Element sends them and recipients receive them.

use serde_json::json;

use crate::harness::{
    census::{bodies, dms_of},
    client::encode,
    scenario::make_server_admin,
    TestEnv, TestUser, DEADLINE,
};

/// Registers `@bridge_ghost:test.local` through the test Synapse's second appservice ("bridge"),
/// as a bridge registers its ghosts.
async fn register_bridge_ghost(env: &TestEnv) {
    let ghost = reqwest::Client::new()
        .post(format!("{}/_matrix/client/v3/register", env.synapse.url))
        .bearer_auth(crate::harness::synapse::BRIDGE_TOKEN)
        .json(&json!({ "type": "m.login.application_service", "username": "bridge_ghost", "inhibit_login": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(ghost.status(), 200, "{:?}", ghost.text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_space_broadcast_reaches_exactly_its_members_in_private_dms_reused_and_reinvited() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (alice, bob, carol) = (env.user("alice").await, env.user("bob").await, env.user("carol").await);
    alice.set_displayname("Alice Liddell").await;
    let room = env.control_room(&admin).await;
    let space = env.space(&admin, "company", &[&alice, &bob]).await;

    let command = admin
        .send_text(&room, &format!("!bc send {space} --yes --name Welcome\nHello **{{displayname}}**!"))
        .await;
    let answer = admin.wait_for_answer(&room, &bot, &command).await;
    assert_eq!(answer.reaction, "✅", "{}", answer.body);
    let summary = admin.wait_for_finished(&room, &bot).await;
    assert!(
        summary.contains("«Welcome» #1 finished") && summary.contains("3 delivered, 0 failed"),
        "{summary}"
    );

    let census = root.dm_census(&bot, &[&room]).await;
    for (user, greeting) in
        [(&alice, "Hello **Alice Liddell**!"), (&bob, "Hello **bob**!"), (&admin, "Hello **admin**!")]
    {
        let dms = dms_of(&census, user);
        assert_eq!(dms.len(), 1, "{} has exactly one DM room: {census:?}", user.user_id);
        assert_eq!(
            dms[0].others,
            std::slice::from_ref(&user.user_id),
            "nobody else is in {}'s DM",
            user.user_id
        );
        assert!(dms[0].is_direct, "the invite is flagged is_direct");
        assert_eq!(bodies(dms[0]), [greeting]);
    }
    let formatted = &dms_of(&census, &alice)[0].messages[0]["formatted_body"];
    assert_eq!(formatted, "Hello <strong>Alice Liddell</strong>!");
    assert!(dms_of(&census, &carol).is_empty(), "a non-member gets nothing");
    assert_eq!(census.len(), 3, "one room per recipient: {census:?}");

    // A second broadcast reuses each DM; bob rejected his invite, so he is invited again.
    let bob_dm = dms_of(&census, &bob)[0].room_id.clone();
    bob.leave(&bob_dm).await;
    bob.wait_for_membership(&bob_dm, &bob.user_id, "leave").await;
    let command = admin.send_text(&room, &format!("!bc send {space} --yes\nSecond")).await;
    assert_eq!(admin.wait_for_answer(&room, &bot, &command).await.reaction, "✅");
    admin.wait_for_finished_count(&room, &bot, 2, DEADLINE).await;
    let census = root.dm_census(&bot, &[&room]).await;
    for user in [&alice, &bob, &admin] {
        let dms = dms_of(&census, user);
        assert_eq!(dms.len(), 1, "{} still has exactly one DM room", user.user_id);
        assert_eq!(bodies(dms[0]).last().map(String::as_str), Some("Second"));
    }
    assert_eq!(dms_of(&census, &bob)[0].room_id, bob_dm, "bob is invited back into the same room");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcaster_is_limited_to_spaces_they_moderate_and_never_server() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let admin = env.user("admin").await;
    let carol = env.user("carol").await; // a broadcaster (everyone on test.local)
    let alice = env.user("alice").await;
    let room = env.control_room(&admin).await;
    admin.invite(&room, &carol.user_id).await;
    carol.join(&room).await;
    let space = env.space(&admin, "company", &[&carol, &alice]).await;

    let command = carol.send_text(&room, &format!("!bc send {space} --yes\nHi")).await;
    let answer = carol.wait_for_answer(&room, &bot, &command).await;
    assert_eq!(answer.reaction, "❌");
    assert!(answer.body.contains("power level 50"), "{}", answer.body);

    let command = carol.send_text(&room, "!bc send server --yes\nHi").await;
    let answer = carol.wait_for_answer(&room, &bot, &command).await;
    assert_eq!(answer.reaction, "❌");
    assert!(answer.body.contains("Only admins"), "{}", answer.body);

    // Explicit users are fine for a broadcaster.
    let command = carol.send_text(&room, &format!("!bc send {} --yes\nHi Alice", alice.user_id)).await;
    assert_eq!(carol.wait_for_answer(&room, &bot, &command).await.reaction, "✅");
    let summary = carol.wait_for_finished(&room, &bot).await;
    assert!(summary.contains("1 delivered"), "{summary}");

    // Made a moderator of the space, carol may send to it.
    let space_id = admin.resolve_alias("#company:test.local").await;
    let levels_path =
        format!("/rooms/{}/state/m.room.power_levels/", crate::harness::client::encode(&space_id));
    let (_, mut levels) = admin.call(reqwest::Method::GET, &levels_path, None).await;
    levels["users"][&carol.user_id] = json!(50);
    let (status, _) = admin.call(reqwest::Method::PUT, &levels_path, Some(levels)).await;
    assert_eq!(status, 200);
    let command = carol.send_text(&room, &format!("!bc send {space} --yes\nHi everyone")).await;
    let answer = carol.wait_for_answer(&room, &bot, &command).await;
    assert_eq!(answer.reaction, "✅", "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_and_audience_send_nothing() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let room = env.control_room(&admin).await;
    let space = env.space(&admin, "company", &[&alice, &bob]).await;

    let command =
        admin.send_text(&room, &format!("!bc send {space} --dry-run --except @bob:test.local\nHello")).await;
    let answer = admin.wait_for_answer(&room, &bot, &command).await;
    assert_eq!(answer.reaction, "✅");
    assert!(answer.body.contains("Dry run, nothing sent: 2 recipients"), "{}", answer.body);
    assert!(
        answer.body.contains("@alice:test.local") && !answer.body.contains("@bob:test.local"),
        "{}",
        answer.body
    );

    let command = admin.send_text(&room, &format!("!bc audience {space}")).await;
    let answer = admin.wait_for_answer(&room, &bot, &command).await;
    assert!(answer.body.contains("3 recipients"), "{}", answer.body);

    let census = root.dm_census(&bot, &[&room]).await;
    assert!(census.is_empty(), "no DM was created: {census:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replied_to_image_is_sent_as_that_image() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root, alice) = (env.user("admin").await, env.server_admin().await, env.user("alice").await);
    let room = env.control_room(&admin).await;
    let image = json!({ "msgtype": "m.image", "body": "poster.png", "url": "mxc://test.local/poster",
                        "info": { "mimetype": "image/png", "w": 10, "h": 10 } });
    let image_event = admin.send_content(&room, image).await;
    let command = admin
        .send_content(
            &room,
            json!({
                "msgtype": "m.text",
                "body": format!("> <@admin:test.local> poster.png\n\n!bc send {} --yes", alice.user_id),
                "m.relates_to": { "m.in_reply_to": { "event_id": image_event } }
            }),
        )
        .await;
    // Older clients put a quoted fallback of the replied-to message first; the command follows.
    assert_eq!(admin.wait_for_answer(&room, &bot, &command).await.reaction, "✅");
    admin.wait_for_finished(&room, &bot).await;
    let census = root.dm_census(&bot, &[&room]).await;
    let dms = dms_of(&census, &alice);
    assert_eq!(dms.len(), 1);
    let sent = &dms[0].messages[0];
    assert_eq!(
        (sent["msgtype"].as_str(), sent["url"].as_str()),
        (Some("m.image"), Some("mxc://test.local/poster"))
    );
    assert!(sent.get("m.relates_to").is_none(), "the copy is not a reply: {sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_audiences_wait_for_confirmation_by_reaction_or_command() {
    let env = TestEnv::start_with("broadcast:\n    confirm_above: 1\n").await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let room = env.control_room(&admin).await;
    let space = env.space(&admin, "company", &[&alice, &bob]).await;

    let command = admin.send_text(&room, &format!("!bc send {space} --name Survey\nPlease answer")).await;
    let preview = admin.wait_for_answer(&room, &bot, &command).await;
    assert!(
        preview.body.contains("Preview of #1 «Survey»") && preview.body.contains("3 recipients"),
        "{}",
        preview.body
    );
    let preview_event = admin
        .events(&room)
        .await
        .into_iter()
        .find(|event| {
            event["sender"] == bot.as_str()
                && event["content"]["body"].as_str().is_some_and(|b| b.contains("Preview of #1"))
        })
        .expect("the preview")["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let census = root.dm_census(&bot, &[&room]).await;
    assert!(census.iter().all(|dm| dm.messages.is_empty()), "nothing sent before confirmation");

    admin.react(&room, &preview_event, "✅").await;
    let summary = admin.wait_for_finished(&room, &bot).await;
    assert!(summary.contains("3 delivered"), "{summary}");

    // The same with the command, then status, list and cancel.
    let command = admin.send_text(&room, &format!("!bc send {space}\nSecond")).await;
    admin.wait_for_answer(&room, &bot, &command).await;
    let command = admin.send_text(&room, "!bc cancel #2").await;
    let answer = admin.wait_for_answer(&room, &bot, &command).await;
    assert!(answer.body.contains("Cancelled #2"), "{}", answer.body);
    let command = admin.send_text(&room, "!bc confirm #2").await;
    let answer = admin.wait_for_answer(&room, &bot, &command).await;
    assert_eq!(answer.reaction, "❌", "a cancelled broadcast cannot be confirmed: {}", answer.body);

    let command = admin.send_text(&room, &format!("!bc send {space}\nThird")).await;
    admin.wait_for_answer(&room, &bot, &command).await;
    let command = admin.send_text(&room, "!bc confirm #3").await;
    assert_eq!(admin.wait_for_answer(&room, &bot, &command).await.reaction, "✅");
    admin.wait_for_finished_count(&room, &bot, 2, DEADLINE).await;

    let command = admin.send_text(&room, "!bc status #3").await;
    let status = admin.wait_for_answer(&room, &bot, &command).await;
    assert!(status.body.contains("delivered: 3") && status.body.contains("failed: 0"), "{}", status.body);
    let command = admin.send_text(&room, "!bc list").await;
    let list = admin.wait_for_answer(&room, &bot, &command).await;
    for line in
        ["#3 «Third» — done — 3 / 3 delivered", "#2 «Second» — cancelled", "#1 «Survey» — done — 3 / 3"]
    {
        assert!(list.body.contains(line), "{line} in {}", list.body);
    }
    let census = root.dm_census(&bot, &[&room]).await;
    assert_eq!(bodies(dms_of(&census, &alice)[0]), ["Please answer", "Third"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_reaches_every_active_local_user_once_the_bot_is_a_server_admin() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (alice, bob, dave) = (env.user("alice").await, env.user("bob").await, env.user("dave").await);
    // Matches broadcast.exclude's default (user IDs ending in -bot or _bot).
    let helper_bot = env.user("helper_bot").await;
    register_bridge_ghost(&env).await;
    let room = env.control_room(&admin).await;
    let (status, _) = root
        .call(
            reqwest::Method::POST,
            &format!("/_synapse/admin/v1/deactivate/{}", dave.user_id),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);

    let command = admin.send_text(&room, "!bc send server --yes\nHello everyone").await;
    let answer = admin.wait_for_answer(&room, &bot, &command).await;
    assert_eq!(answer.reaction, "❌");
    assert!(
        answer.body.contains("server admin") && answer.body.contains("/_synapse/admin/v2/users/"),
        "{}",
        answer.body
    );

    make_server_admin(&root, &bot).await;
    let command = admin.send_text(&room, "!bc send server --yes\nHello everyone").await;
    assert_eq!(admin.wait_for_answer(&room, &bot, &command).await.reaction, "✅");
    let summary = admin.wait_for_finished(&room, &bot).await;
    assert!(summary.contains("4 delivered, 0 failed"), "{summary}");

    let census = root.dm_census(&bot, &[&room]).await;
    for user in [&admin, &root, &alice, &bob] {
        assert_eq!(dms_of(&census, user).len(), 1, "{} got it", user.user_id);
    }
    for user in [&dave.user_id, &helper_bot.user_id, &"@bridge_ghost:test.local".to_owned()] {
        assert!(census.iter().all(|room| !room.others.contains(user)), "{user} did not");
    }
    assert!(census.iter().all(|room| !room.others.contains(&bot)), "the bot never messages itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_that_gains_a_third_member_is_never_used_again_and_m_direct_follows() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (alice, eve) = (env.user("alice").await, env.user("eve").await);
    let room = env.control_room(&admin).await;

    let command = admin.send_text(&room, &format!("!bc send {} --yes\nFirst", alice.user_id)).await;
    admin.wait_for_answer(&room, &bot, &command).await;
    admin.wait_for_finished(&room, &bot).await;
    let first_dm = dms_of(&root.dm_census(&bot, &[&room]).await, &alice)[0].room_id.clone();
    let direct = wait_for_direct(&root, &bot, &alice.user_id, &first_dm).await;
    assert_eq!(direct[&alice.user_id], json!([first_dm]), "m.direct lists the DM: {direct}");

    // Alice brings someone into her DM with the bot.
    alice.join(&first_dm).await;
    alice.invite(&first_dm, &eve.user_id).await;
    eve.join(&first_dm).await;

    let command = admin.send_text(&room, &format!("!bc send {} --yes\nSecond", alice.user_id)).await;
    admin.wait_for_answer(&room, &bot, &command).await;
    admin.wait_for_finished_count(&room, &bot, 2, DEADLINE).await;
    let census = root.dm_census(&bot, &[&room]).await;
    let new_dm =
        census.iter().find(|dm| dm.others == [alice.user_id.clone()]).expect("a new two-member DM for alice");
    assert_ne!(new_dm.room_id, first_dm);
    assert_eq!(bodies(new_dm), ["Second"]);
    let old = census.iter().find(|dm| dm.room_id == first_dm).expect("the old room");
    assert_eq!(bodies(old), ["First"], "nothing more is sent where a third member is");
    let direct = wait_for_direct(&root, &bot, &alice.user_id, &new_dm.room_id).await;
    assert_eq!(direct[&alice.user_id], json!([new_dm.room_id]), "m.direct follows: {direct}");
}

/// The bot's `m.direct` once it lists `room` for `user` (read with the Synapse admin API).
async fn wait_for_direct(root: &TestUser, bot: &str, user: &str, room: &str) -> serde_json::Value {
    crate::harness::wait_for("the bot's m.direct", || async {
        let (_, data) = root
            .call(reqwest::Method::GET, &format!("/_synapse/admin/v1/users/{bot}/accountdata"), None)
            .await;
        let direct = data["account_data"]["global"]["m.direct"].clone();
        direct[user].as_array().is_some_and(|rooms| rooms.iter().any(|r| r == room)).then_some(direct)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_who_does_not_exist_is_a_failure_with_a_reason_and_the_rest_is_delivered() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, alice) = (env.user("admin").await, env.user("alice").await);
    let room = env.control_room(&admin).await;
    let command = admin
        .send_text(&room, &format!("!bc send {} @nobody-here:test.local --yes\nHello", alice.user_id))
        .await;
    admin.wait_for_answer(&room, &bot, &command).await;
    let summary = admin.wait_for_finished(&room, &bot).await;
    assert!(summary.contains("1 delivered, 1 failed"), "{summary}");
    let command = admin.send_text(&room, "!bc status #1").await;
    let status = admin.wait_for_answer(&room, &bot, &command).await;
    assert!(status.body.contains("`@nobody-here:test.local`: this user does not exist"), "{}", status.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_reaches_the_members_of_the_rooms_of_a_space() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (alice, dave) = (env.user("alice").await, env.user("dave").await);
    let room = env.control_room(&admin).await;
    let space = env.space(&admin, "company", &[&alice]).await;
    let space_id = admin.resolve_alias("#company:test.local").await;
    // A room of the space that dave is in, but not the space itself.
    let child = admin.create_room(json!({ "preset": "public_chat" })).await;
    let path = format!(
        "/rooms/{}/state/m.space.child/{}",
        crate::harness::client::encode(&space_id),
        crate::harness::client::encode(&child)
    );
    let (status, _) = admin.call(reqwest::Method::PUT, &path, Some(json!({ "via": ["test.local"] }))).await;
    assert_eq!(status, 200);
    dave.join(&child).await;
    admin.invite(&child, &bot).await;
    admin.wait_for_membership(&child, &bot, "join").await;

    let command = admin.send_text(&room, &format!("!bc audience {space}")).await;
    let answer = admin.wait_for_answer(&room, &bot, &command).await;
    assert!(answer.body.contains("2 recipients") && !answer.body.contains(&dave.user_id), "{}", answer.body);

    let command = admin.send_text(&room, &format!("!bc send {space} --recursive --yes\nAll of you")).await;
    admin.wait_for_answer(&room, &bot, &command).await;
    let summary = admin.wait_for_finished(&room, &bot).await;
    assert!(summary.contains("3 delivered"), "admin, alice and dave, once each: {summary}");
    let census = root.dm_census(&bot, &[&room]).await;
    assert_eq!(bodies(dms_of(&census, &dave)[0]), ["All of you"]);
}

/// Issue 10, item 16: a bridged ghost (another appservice's account) in a space is left out of a
/// space broadcast, as it is of `server`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridged_ghosts_in_a_space_are_left_out() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root, alice) = (env.user("admin").await, env.server_admin().await, env.user("alice").await);
    let http = reqwest::Client::new();
    register_bridge_ghost(&env).await;
    let space = env.space(&admin, "company", &[&alice]).await;
    let joined = http
        .post(format!(
            "{}/_matrix/client/v3/join/{}?user_id=%40bridge_ghost%3Atest.local",
            env.synapse.url,
            crate::harness::client::encode(&space)
        ))
        .bearer_auth(crate::harness::synapse::BRIDGE_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), 200, "{:?}", joined.text().await);
    make_server_admin(&root, &bot).await;
    let room = env.control_room(&admin).await;
    let command = admin.send_text(&room, &format!("!bc send {space} --yes\nHello")).await;
    assert_eq!(admin.wait_for_answer(&room, &bot, &command).await.reaction, "✅");
    let summary = admin.wait_for_finished(&room, &bot).await;
    assert!(summary.contains("2 delivered, 0 failed"), "admin and alice: {summary}");
    let census = root.dm_census(&bot, &[&room]).await;
    assert!(
        census.iter().all(|dm| !dm.others.contains(&"@bridge_ghost:test.local".to_owned())),
        "the ghost got nothing"
    );
    assert_eq!(dms_of(&census, &alice).len(), 1, "alice got it");
}

/// Issue 10, item 17: a Synapse that makes private rooms encrypted by default makes the bot's
/// DMs encrypted behind its back; replies there cannot be read. The admins are told once, and
/// `!bc status` counts those recipients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dms_the_homeserver_makes_encrypted_are_reported() {
    let env =
        TestEnv::start_with_homeserver_config("encryption_enabled_by_default_for_room_type: invite\n").await;
    let bot = env.bot_id();
    let (admin, alice, bob) = (env.user("admin").await, env.user("alice").await, env.user("bob").await);
    // An unencrypted, invite-only control room: made with the public preset, which the setting
    // leaves alone.
    let invite_only =
        json!([{ "type": "m.room.join_rules", "state_key": "", "content": { "join_rule": "invite" } }]);
    let room = admin.create_room(json!({ "preset": "public_chat", "initial_state": invite_only })).await;
    admin.invite(&room, &bot).await;
    admin.wait_for_message(&room, &bot, "This is now a control room").await;

    let command =
        admin.send_text(&room, &format!("!bc send {} {} --yes\nHello", alice.user_id, bob.user_id)).await;
    assert_eq!(admin.wait_for_answer(&room, &bot, &command).await.reaction, "✅");
    admin.wait_for_finished(&room, &bot).await;
    let warning = admin.wait_for_message(&room, &bot, "encryption_enabled_by_default_for_room_type").await;
    assert!(warning["content"]["body"].as_str().unwrap_or("").contains("cannot read"), "{warning}");
    let command = admin.send_text(&room, "!bc status #1").await;
    let status = admin.wait_for_answer(&room, &bot, &command).await;
    assert!(status.body.contains("DM is encrypted, replies cannot be read: 2"), "{}", status.body);
    let warnings = admin
        .events(&room)
        .await
        .into_iter()
        .filter(|event| {
            event["content"]["body"]
                .as_str()
                .is_some_and(|body| body.contains("encryption_enabled_by_default"))
        })
        .count();
    assert_eq!(warnings, 1, "said once");
}

/// Issue 25, item 3: a personalised broadcast to someone seen before costs one request, the
/// send: their name is the one their member event in the DM showed last, not a profile look-up.
/// Alice shows another name in her DM than in her profile; the second copy uses the DM's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_shown_in_the_dm_names_the_next_copy_without_a_look_up() {
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root, alice) = (env.user("admin").await, env.server_admin().await, env.user("alice").await);
    alice.set_displayname("Alice Liddell").await;
    let room = env.control_room(&admin).await;
    let dms = crate::harness::scenario::broadcast_and_join(
        &env,
        &admin,
        &root,
        &room,
        &[&alice],
        "Hi {displayname}",
        1,
    )
    .await;
    let path = format!("/rooms/{}/state/m.room.member/{}", encode(&dms[0]), encode(&alice.user_id));
    let member = json!({ "membership": "join", "displayname": "Alice in the DM" });
    let (status, body) = alice.call(reqwest::Method::PUT, &path, Some(member)).await;
    assert_eq!(status, 200, "{body}");
    crate::harness::wait_until("the bot keeps the name shown in the DM", DEADLINE, || async {
        env.count_in_bot_database("SELECT COUNT(*) FROM displaynames WHERE displayname = 'Alice in the DM'")
            .await
            == 1
    })
    .await
    .unwrap();
    let command =
        admin.send_text(&room, &format!("!bc send {} --yes\nHi again {{displayname}}", alice.user_id)).await;
    assert_eq!(admin.wait_for_answer(&room, &bot, &command).await.reaction, "✅");
    admin.wait_for_finished_count(&room, &bot, 2, DEADLINE).await;
    let census = root.dm_census(&bot, &[&room]).await;
    assert_eq!(bodies(dms_of(&census, &alice)[0]), ["Hi Alice Liddell", "Hi again Alice in the DM"]);
}
