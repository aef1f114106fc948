//! What a self-hoster sees when the bot starts and stops.

use serde_json::Value;

use crate::harness::{bot_config, client::encode, TestEnv, TestUser, DEADLINE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_registers_sets_its_profile_and_logs_in_its_device() {
    const AVATAR: &str = "mxc://test.local/broadcast-avatar";
    let env = TestEnv::start_with_config(|synapse_url, bot_port, dir| {
        let mut config = bot_config(synapse_url, bot_port, dir, "");
        config.appservice.bot.avatar = AVATAR.into();
        config
    })
    .await;
    let server_admin = TestUser::register(&env.synapse, "root", true).await;
    let bot = env.bot_id();

    // The bot takes commands only once start-up is done: from then on its profile and device are
    // what start-up left, and nothing below is waited for.
    let admin = env.user("admin").await;
    env.control_room(&admin).await;

    let (status, profile) =
        server_admin.call(reqwest::Method::GET, &format!("/profile/{}", encode(&bot)), None).await;
    assert_eq!(status, 200, "{profile}");
    // Synapse's own default would be the localpart, "broadcast".
    assert_eq!(profile["displayname"], "Broadcast", "the configured display name: {profile}");
    assert_eq!(profile["avatar_url"], AVATAR, "the configured avatar: {profile}");

    let devices_path = format!("/_synapse/admin/v2/users/{}/devices", encode(&bot));
    let (status, devices) = server_admin.call(reqwest::Method::GET, &devices_path, None).await;
    assert_eq!(status, 200, "{devices}");
    let device_ids: Vec<&str> = devices["devices"]
        .as_array()
        .map(|devices| devices.iter().filter_map(|device| device["device_id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(device_ids, ["BROADCAST"], "exactly the configured device: {devices}");

    let health = reqwest::get(format!("{}/health", env.bot_url)).await.expect("GET /health");
    assert_eq!(health.status(), 200, "/health answers once the bot is up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn homeserver_can_ping_the_bot() {
    let env = TestEnv::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/_matrix/client/v1/appservice/{}/ping", env.synapse.url, env.config.appservice.id);
    let response = http
        .post(url)
        .bearer_auth(&env.config.appservice.as_token)
        .json(&serde_json::json!({ "transaction_id": "test-ping" }))
        .send()
        .await
        .expect("ping request");
    let status = response.status();
    let body: Value = response.json().await.expect("ping json");
    assert_eq!(status, 200, "Synapse reached the bot: {body}");
    assert!(body["duration_ms"].is_number(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_stops_gracefully_and_resumes_on_the_same_database() {
    let mut env = TestEnv::start().await;
    let admin = env.user("admin").await;
    let room = env.control_room(&admin).await;
    env.stop_bot().await.expect("a graceful stop returns Ok");

    // Commands written while the bot is down are pushed by Synapse once it is back.
    let command = admin.send_text(&room, "!bc help").await;
    env.start_bot().await;
    let answer = admin.wait_for_answer(&room, &env.bot_id(), &command).await;
    assert_eq!(answer.reaction, "✅");
    assert!(answer.body.contains("Commands"), "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_and_stops_cleanly_on_sigterm() {
    let mut env = TestEnv::start().await;
    env.stop_bot().await.expect("stop the in-process bot");
    let dir = tempfile::tempdir().unwrap();
    let child = crate::harness::binary::spawn(&env.binary_config(dir.path()), std::process::Stdio::piped());

    // Ready means: a command typed in a control room is answered.
    let admin = env.user("admin").await;
    let room = env.control_room(&admin).await;
    let command = admin.send_text(&room, "!bc help").await;
    assert_eq!(admin.wait_for_answer(&room, &env.bot_id(), &command).await.reaction, "✅");

    let status =
        std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || child.wait_with_output());
    let output =
        tokio::time::timeout(DEADLINE, exited).await.expect("exits within the deadline").unwrap().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit status {:?}: {stderr}", output.status);
    assert!(stderr.contains("the homeserver can reach the bot"), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_homeserver_does_not_know_stops_start_up_with_what_to_check() {
    let mut env = TestEnv::start().await;
    env.stop_bot().await.expect("stop");
    env.config.appservice.as_token = "a-token-synapse-never-heard-of".into();
    env.start_bot().await;
    let error = env.bot_result().await.expect_err("start-up fails").to_string();
    assert!(error.contains("cannot register the bot user"), "{error}");
    assert!(error.contains("app_service_config_files"), "{error}");
}

/// Issue 24: the demo's flow, run by the real binary from a fresh start (its user and device do
/// not exist yet) as an operator runs it. Its log, at the default level, has no ERROR or WARN
/// line; and with matrix-sdk's request errors switched on as well, every request the homeserver
/// refused is an expected absence (404), not a fault of the bot such as a request naming its
/// device before the device exists (`M_UNKNOWN_DEVICE`, which the start-up probe caused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demos_flow_from_a_fresh_start_logs_no_error_or_warning() {
    let env = TestEnv::start_synapse_only().await;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("bot.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let config = env.binary_config(dir.path());
    let mut child =
        crate::harness::binary::spawn_logging(&config, "info,matrix_sdk::http_client=error", log.into());

    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    alice.set_displayname("Alice Liddell").await;
    let space = env.space(&admin, "company", &[&alice, &bob]).await;
    let room = env.control_room(&admin).await;
    let command = admin
        .send_text(&room, &format!("!bc send {space} --yes --name Welcome\nHello {{displayname}}"))
        .await;
    assert_eq!(admin.wait_for_answer(&room, &bot, &command).await.reaction, "✅");
    admin.wait_for_progress_saying(&room, &bot, " finished").await;
    let census = root.dm_census(&bot, &[&room]).await;
    let dm = census.iter().find(|dm| dm.others.contains(&alice.user_id)).expect("alice's DM");
    assert_eq!(dm.messages[0]["body"], "Hello Alice Liddell");
    alice.join(&dm.room_id).await;
    alice.send_text(&dm.room_id, "Thanks, see you there").await;
    admin.wait_for_message(&room, &bot, "Thanks, see you there").await;
    let status = admin.send_text(&room, "!bc status #1").await;
    assert_eq!(admin.wait_for_answer(&room, &bot, &status).await.reaction, "✅");
    let exit = crate::harness::binary::terminate(&mut child, DEADLINE).expect("stops on SIGTERM");
    assert!(exit.success(), "{exit:?}");

    let text = std::fs::read_to_string(&log_path).unwrap();
    let loud = |line: &&str| line.contains(" ERROR ") || line.contains(" WARN ");
    let (requests, own): (Vec<&str>, Vec<&str>) =
        text.lines().filter(loud).partition(|line| line.contains("matrix_sdk::http_client"));
    assert!(own.is_empty(), "ERROR or WARN lines at the default level:\n{}", own.join("\n"));
    let unexpected: Vec<&&str> = requests.iter().filter(|line| !line.contains("status_code: 404")).collect();
    assert!(unexpected.is_empty(), "refused requests that are no expected absence:\n{unexpected:#?}");
    assert!(text.contains("ready"), "{text}");
}
