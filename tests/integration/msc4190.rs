//! Homeservers with delegated logins (Matrix Authentication Service, MSC3861): the registration
//! has `io.element.msc4190: true`, Synapse refuses the appservice login, and the bot creates its
//! devices (and each persona's) as the appservice instead (`appservice.msc4190: true`).

use matrix_broadcast::base::matrix::{Account, MatrixClient};
use serde_json::json;

use crate::harness::{
    bot_config, client::encode, e2ee::E2eeUser, encryption_yaml, scenario::broadcast_and_join, wait_for,
    TestEnv, TestUser, SERVER_NAME,
};

/// The persona `hr`, for a broadcast sent `--as hr`.
const PERSONAS: &str = "personas:\n    hr:\n        username: broadcast_hr\n        displayname: HR Team\n";

/// Synapse with `io.element.msc4190: true` in the bot's registration (written there from the
/// config, as `generate-registration` does), and the bot with `appservice.msc4190: true`;
/// `extra` is appended to the bot's config.
async fn start_with_msc4190(extra: impl Fn(&std::path::Path) -> String) -> TestEnv {
    TestEnv::start_with_config(|url, port, dir| {
        let mut config = bot_config(url, port, dir, &extra(dir));
        config.appservice.msc4190 = true;
        config
    })
    .await
}

/// The device IDs of `user`, as the server admin `root` sees them.
async fn devices_of(root: &TestUser, user: &str) -> Vec<String> {
    let path = format!("/_synapse/admin/v2/users/{}/devices", encode(user));
    let (status, devices) = root.call(reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200, "{devices}");
    let ids = devices["devices"].as_array().into_iter().flatten();
    ids.filter_map(|device| device["device_id"].as_str().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_delegated_logins_a_broadcast_is_delivered_replied_to_and_answered_and_a_persona_sends() {
    let env = start_with_msc4190(|_| PERSONAS.to_owned()).await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let room = env.control_room(&admin).await;
    let dms = broadcast_and_join(&env, &admin, &root, &room, &[&alice, &bob], "Lunch at noon?", 1).await;
    assert_eq!(devices_of(&root, &bot).await, ["BROADCAST"], "the bot's device, made without a login");
    for (user, dm) in [(&alice, &dms[0]), (&bob, &dms[1])] {
        user.wait_for_message(dm, &bot, "Lunch at noon?").await;
    }

    // A reply reaches the control room in a thread, and the answer goes back to alice.
    alice.send_text(&dms[0], "Yes, please").await;
    let relayed = admin.wait_for_message(&room, &bot, "Yes, please").await;
    let thread = relayed["content"]["m.relates_to"]["event_id"].as_str().expect("in a thread").to_owned();
    let answer = json!({ "msgtype": "m.text", "body": "See you there",
                         "m.relates_to": { "rel_type": "m.thread", "event_id": thread } });
    admin.send_content(&room, answer).await;
    alice.wait_for_message(&dms[0], &bot, "See you there").await;

    // A persona gets its own device the same way, and sends from it.
    let hr = format!("@broadcast_hr:{SERVER_NAME}");
    let send = admin.send_text(&room, &format!("!bc send {} --as hr --yes\nFrom HR", alice.user_id)).await;
    admin.wait_for_answer(&room, &bot, &send).await;
    admin.wait_for_finished_count(&room, &bot, 2, crate::harness::DEADLINE).await;
    let hr_dm = wait_for("the persona's DM with alice", || async {
        let census = root.dm_census(&hr, &[]).await;
        census.into_iter().find(|dm| dm.others.contains(&alice.user_id)).map(|dm| dm.room_id)
    })
    .await;
    alice.join(&hr_dm).await;
    alice.wait_for_message(&hr_dm, &hr, "From HR").await;
    assert_eq!(devices_of(&root, &hr).await, ["BROADCAST"], "the persona's device, made without a login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_delegated_logins_an_encrypted_broadcast_decrypts_and_the_device_is_cross_signed() {
    let env = start_with_msc4190(encryption_yaml).await;
    let bot = env.bot_id();
    let (admin_user, carol_user) = (env.user("admin").await, env.user("carol").await);
    let (admin, carol) =
        (E2eeUser::login(&env.synapse, &admin_user).await, E2eeUser::login(&env.synapse, &carol_user).await);
    let room = admin.create_encrypted_room(&[&bot]).await;
    admin.wait_for_decrypted(&room, &bot, "This is now a control room").await;
    let device = env.config.appservice.device_id.to_string();
    assert!(admin.sees_cross_signed_by_owner(&bot, &device).await, "the bot cross-signed its device");

    admin.send_text(&room, &format!("!bc send {} --yes\nThe offsite is in May", carol.user_id)).await;
    let dm = carol.dm_with(&bot).await;
    let copy = carol.wait_for_decrypted(&dm, &bot, "The offsite is in May").await;
    assert_eq!(copy["encrypted"], true, "{copy}");
    carol.send_text(&dm, "Great news").await;
    admin.wait_for_decrypted(&room, &bot, "Great news").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_the_refused_login_names_what_to_set() {
    let env = start_with_msc4190(|_| String::new()).await;
    let mut config = env.config.clone();
    config.appservice.msc4190 = false;
    config.appservice.device_id = "ANOTHER".into();
    let client = MatrixClient::new(&config).await.expect("a client");
    let error = client.ensure_device().await.expect_err("Synapse refuses the appservice login").to_string();
    assert!(error.contains("M_APPSERVICE_LOGIN_UNSUPPORTED"), "{error}");
    assert!(
        error.contains("appservice.msc4190: true") && error.contains("io.element.msc4190: true"),
        "the error names the setting and the registration key: {error}"
    );
}
