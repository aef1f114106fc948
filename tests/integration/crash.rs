//! Crashes in the middle of a broadcast: the bot killed with SIGKILL, Synapse killed and
//! restarted, Synapse down for longer than the retry budget. Afterwards every recipient has
//! exactly one copy in exactly one DM room. The first two also run with encryption on: then the
//! copy is one `m.room.encrypted` event that the recipient's own device decrypts.

use std::time::Instant;

use futures_util::future::join_all;
use serde_json::Value;

use crate::harness::{
    census::{assert_exactly_one_copy_each, one_dm_each},
    e2ee::{synapse_holds_text_outside, E2eeUser},
    scenario::{delivered, recipients, send_command},
    wait_for, TestEnv, TestUser, DEADLINE,
};

const RECIPIENTS: usize = 200;

/// One E2EE device for each of `users` (keys uploaded, no sync loop: [`E2eeUser::login_quiet`]),
/// logged in 25 at a time.
async fn quiet_devices(env: &TestEnv, users: &[TestUser]) -> Vec<E2eeUser> {
    let mut devices = Vec::with_capacity(users.len());
    for chunk in users.chunks(25) {
        devices.extend(join_all(chunk.iter().map(|user| E2eeUser::login_quiet(&env.synapse, user))).await);
    }
    devices
}

/// With encryption on: every recipient has exactly one DM room with the bot, holding exactly
/// one `m.room.encrypted` event from the bot and no message in clear (as the server admin sees
/// it), and their own device decrypts exactly one copy of `body` there, nothing it cannot.
async fn assert_exactly_one_encrypted_copy_each(
    root: &TestUser,
    bot: &str,
    control_room: &str,
    devices: &[E2eeUser],
    body: &str,
) {
    let users: Vec<&str> = devices.iter().map(|device| device.user_id.as_str()).collect();
    let dms = one_dm_each(root, bot, control_room, &users, |user, room| {
        assert!(room.messages.is_empty(), "{user} got a copy in clear: {room:?}");
        assert_eq!(room.encrypted.len(), 1, "{user} has exactly one encrypted event: {room:?}");
    })
    .await;
    let pairs: Vec<_> = devices.iter().zip(&dms).collect();
    for chunk in pairs.chunks(25) {
        join_all(chunk.iter().map(|(device, dm)| decrypts_one_copy(device, dm, bot, body))).await;
    }
}

/// `device` (without a sync loop) joins `dm` and decrypts exactly one copy of `body` from `bot`
/// there, and no event of the bot it cannot decrypt; room keys may come in a later sync.
async fn decrypts_one_copy(device: &E2eeUser, dm: &str, bot: &str, body: &str) {
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        device.catch_up().await;
        let events = device.decrypted_events(dm).await;
        let from_bot = |event: &&Value| event["sender"] == bot;
        let undecryptable =
            events.iter().filter(from_bot).filter(|event| event["type"] == "m.room.encrypted");
        let copies: Vec<&Value> = events
            .iter()
            .filter(from_bot)
            .filter(|event| event["type"] == "m.room.message" && event["content"]["body"] == body)
            .collect();
        if undecryptable.count() == 0 && !copies.is_empty() {
            assert_eq!(copies.len(), 1, "{} decrypts exactly one copy in {dm}: {events:?}", device.user_id);
            assert!(copies.iter().all(|copy| copy["encrypted"] == true), "{copies:?}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{} (device {}) cannot decrypt its copy in {dm} within {DEADLINE:?}: {events:?}",
            device.user_id,
            device.device_id(),
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A test bot, with encryption on or off.
async fn env(encrypted: bool) -> TestEnv {
    if encrypted {
        TestEnv::start_encrypted().await
    } else {
        TestEnv::start().await
    }
}

/// After a broadcast of `body` to `users` (with `devices` when encrypted): exactly one copy each,
/// and with encryption, none of it in clear on the homeserver but for the command.
async fn assert_one_copy_each(
    env: &TestEnv,
    root: &TestUser,
    control_room: &str,
    users: &[TestUser],
    devices: &[E2eeUser],
    body: &str,
) {
    let bot = env.bot_id();
    if devices.is_empty() {
        return assert_exactly_one_copy_each(root, &bot, control_room, users, body).await;
    }
    assert_exactly_one_encrypted_copy_each(root, &bot, control_room, devices, body).await;
    // The command in the (plain) control room quotes it; nowhere else may it be in clear.
    let in_clear = synapse_holds_text_outside(&env.synapse, body, &[control_room]).await;
    assert!(!in_clear, "Synapse's event_json holds {body:?} in clear outside the control room");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_killed_mid_broadcast_resumes_and_sends_exactly_one_copy_each() {
    bot_killed_mid_broadcast(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypting_bot_killed_mid_broadcast_resumes_and_sends_exactly_one_decryptable_copy_each() {
    bot_killed_mid_broadcast(true).await;
}

async fn bot_killed_mid_broadcast(encrypted: bool) {
    let mut env = env(encrypted).await;
    env.stop_bot().await.expect("stop the in-process bot");
    let dir = tempfile::tempdir().unwrap();
    let config = env.binary_config(dir.path());
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let started = Instant::now();
    let users = recipients(&env, RECIPIENTS).await;
    let devices = if encrypted { quiet_devices(&env, &users).await } else { Vec::new() };
    eprintln!("{RECIPIENTS} recipients (encrypted: {encrypted}) ready in {:?}", started.elapsed());

    let mut child = crate::harness::binary::spawn(&config, std::process::Stdio::null());
    let room = env.control_room(&admin).await;
    let started = Instant::now();
    let body = "Survives a crash";
    admin.send_text(&room, &send_command(&users, body)).await;
    // The binary runs on the in-process bot's database (see `binary_config`), and with its crypto store.
    wait_for("some deliveries before the crash", || async { (delivered(&env).await >= 20).then_some(()) })
        .await;
    child.kill().expect("SIGKILL the bot");
    child.wait().unwrap();
    let before = delivered(&env).await;
    let in_flight =
        env.count_in_bot_database("SELECT COUNT(*) FROM deliveries WHERE state = 'sending'").await;
    let census = root.dm_census(&bot, &[&room]).await;
    let sent: usize = census.iter().map(|dm| dm.messages.len() + dm.encrypted.len()).sum();
    eprintln!(
        "killed after {:?}: {before} delivered, {in_flight} claimed (sending), {sent} copies in {} DMs on the \
         homeserver ({} sent but not recorded)",
        started.elapsed(),
        census.len(),
        sent as i64 - before,
    );
    assert!(before < RECIPIENTS as i64, "killed mid-broadcast ({before} delivered)");

    let mut child = crate::harness::binary::spawn(&config, std::process::Stdio::null());
    // New DMs go at Synapse's pace of room creation: allow minutes, not seconds.
    let summary = admin.wait_for_finished_count(&room, &bot, 1, DEADLINE * 10).await.remove(0);
    eprintln!("finished {:?} after the command: {summary}", started.elapsed());
    assert!(summary.contains(&format!("{RECIPIENTS} delivered, 0 failed")), "{summary}");
    let checked = Instant::now();
    assert_one_copy_each(&env, &root, &room, &users, &devices, body).await;
    eprintln!("checked in {:?}", checked.elapsed());
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synapse_restart_mid_broadcast_still_gives_exactly_one_copy_each() {
    synapse_restart_mid_broadcast(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synapse_restart_mid_encrypted_broadcast_still_gives_exactly_one_decryptable_copy_each() {
    synapse_restart_mid_broadcast(true).await;
}

async fn synapse_restart_mid_broadcast(encrypted: bool) {
    let mut env = env(encrypted).await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let users = recipients(&env, RECIPIENTS).await;
    let devices = if encrypted { quiet_devices(&env, &users).await } else { Vec::new() };
    let room = env.control_room(&admin).await;
    let started = Instant::now();
    let body = "Survives a homeserver restart";
    admin.send_text(&room, &send_command(&users, body)).await;
    wait_for("some deliveries before the restart", || async { (delivered(&env).await >= 20).then_some(()) })
        .await;
    env.synapse.restart().await;
    let before = delivered(&env).await;
    eprintln!("restarted after {:?} with {before} delivered", started.elapsed());
    assert!(before < RECIPIENTS as i64, "restarted mid-broadcast ({before} delivered)");

    // New DMs go at Synapse's pace of room creation: allow minutes, not seconds.
    let summary = admin.wait_for_finished_count(&room, &bot, 1, DEADLINE * 10).await.remove(0);
    eprintln!("finished {:?} after the command: {summary}", started.elapsed());
    assert!(summary.contains(&format!("{RECIPIENTS} delivered, 0 failed")), "{summary}");
    assert_one_copy_each(&env, &root, &room, &users, &devices, body).await;
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
