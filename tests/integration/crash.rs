//! Crashes in the middle of a broadcast: the bot killed with SIGKILL, Synapse killed and
//! restarted, Synapse down for longer than the retry budget. Afterwards every recipient has
//! exactly one copy in exactly one DM room.

use std::collections::HashMap;

use futures_util::future::join_all;

use crate::harness::{wait_for, TestEnv, TestUser, DEADLINE};

const RECIPIENTS: usize = 200;

pub async fn recipients(env: &TestEnv, count: usize) -> Vec<TestUser> {
    let mut users = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(25) {
        let names: Vec<String> = chunk.iter().map(|n| format!("person{n:03}")).collect();
        users.extend(join_all(names.iter().map(|name| env.user(name))).await);
    }
    users
}

/// How many deliveries the bot's database (SQLite or PostgreSQL) records as delivered.
pub async fn delivered(env: &TestEnv) -> i64 {
    env.count_in_bot_database("SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'").await
}

/// Every recipient has exactly one DM room, with only them and the bot, holding exactly one
/// copy of `body`.
pub async fn assert_exactly_one_copy_each(
    root: &TestUser,
    bot: &str,
    control_room: &str,
    users: &[TestUser],
    body: &str,
) {
    let census = root.dm_census(bot, &[control_room]).await;
    let mut by_user: HashMap<&str, Vec<_>> = HashMap::new();
    for room in &census {
        assert_eq!(room.others.len(), 1, "a DM has exactly one member besides the bot: {room:?}");
        by_user.entry(room.others[0].as_str()).or_default().push(room);
    }
    for user in users {
        let rooms = by_user.get(user.user_id.as_str()).cloned().unwrap_or_default();
        assert_eq!(rooms.len(), 1, "{} has exactly one DM room with the bot: {rooms:?}", user.user_id);
        let copies = rooms[0].messages.iter().filter(|content| content["body"] == body).count();
        assert_eq!(copies, 1, "{} has exactly one copy", user.user_id);
    }
    assert_eq!(census.len(), users.len(), "no stray rooms");
}

pub fn send_command(users: &[TestUser], body: &str) -> String {
    let audience: Vec<&str> = users.iter().map(|user| user.user_id.as_str()).collect();
    format!("!bc send {} --yes --name Crash\n{body}", audience.join(" "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_killed_mid_broadcast_resumes_and_sends_exactly_one_copy_each() {
    let mut env = TestEnv::start().await;
    env.stop_bot().await.expect("stop the in-process bot");
    let dir = tempfile::tempdir().unwrap();
    let config = env.binary_config(dir.path());
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let users = recipients(&env, RECIPIENTS).await;

    let mut child = crate::binary::spawn(&config, std::process::Stdio::null());
    let room = env.control_room(&admin).await;
    admin.send_text(&room, &send_command(&users, "Survives a crash")).await;
    // The binary runs on the in-process bot's database (see `binary_config`).
    wait_for("some deliveries before the crash", || async { (delivered(&env).await >= 20).then_some(()) })
        .await;
    child.kill().expect("SIGKILL the bot");
    child.wait().unwrap();
    let before = delivered(&env).await;
    assert!(before < RECIPIENTS as i64, "killed mid-broadcast ({before} delivered)");

    let mut child = crate::binary::spawn(&config, std::process::Stdio::null());
    // New DMs go at Synapse's pace of room creation: allow minutes, not seconds.
    let summary = admin.wait_for_finished_count(&room, &bot, 1, DEADLINE * 6).await.remove(0);
    assert!(summary.contains(&format!("{RECIPIENTS} delivered, 0 failed")), "{summary}");
    assert_exactly_one_copy_each(&root, &bot, &room, &users, "Survives a crash").await;
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synapse_restart_mid_broadcast_still_gives_exactly_one_copy_each() {
    let mut env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let users = recipients(&env, RECIPIENTS).await;
    let room = env.control_room(&admin).await;
    admin.send_text(&room, &send_command(&users, "Survives a homeserver restart")).await;
    wait_for("some deliveries before the restart", || async { (delivered(&env).await >= 20).then_some(()) })
        .await;
    env.synapse.restart().await;
    let before = delivered(&env).await;
    assert!(before < RECIPIENTS as i64, "restarted mid-broadcast ({before} delivered)");

    // New DMs go at Synapse's pace of room creation: allow minutes, not seconds.
    let summary = admin.wait_for_finished_count(&room, &bot, 1, DEADLINE * 6).await.remove(0);
    assert!(summary.contains(&format!("{RECIPIENTS} delivered, 0 failed")), "{summary}");
    assert_exactly_one_copy_each(&root, &bot, &room, &users, "Survives a homeserver restart").await;
}

/// Issue 10, item 6: a homeserver outage longer than `max_attempts` tries with backoff would take
/// pauses the deliveries instead of failing them; they resume when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_homeserver_outage_longer_than_the_retry_budget_fails_nobody() {
    // Two tries with backoff are spent within about three seconds; the outage lasts ten.
    let mut env = TestEnv::start_with("broadcast:\n    max_attempts: 2\n").await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let users = recipients(&env, 40).await;
    let room = env.control_room(&admin).await;
    admin.send_text(&room, &send_command(&users, "Survives an outage")).await;
    wait_for("some deliveries before the outage", || async { (delivered(&env).await >= 5).then_some(()) })
        .await;
    env.synapse.stop();
    tokio::time::sleep(std::time::Duration::from_secs(10)).await; // the outage itself, not a wait for a condition
    let failed = env.count_in_bot_database("SELECT COUNT(*) FROM deliveries WHERE state = 'failed'").await;
    assert_eq!(failed, 0, "nothing failed during the outage");
    env.synapse.start_again().await;
    let summary = admin.wait_for_finished_count(&room, &bot, 1, DEADLINE * 6).await.remove(0);
    assert!(summary.contains(&format!("{} delivered, 0 failed", users.len())), "{summary}");
    assert_exactly_one_copy_each(&root, &bot, &room, &users, "Survives an outage").await;
}
