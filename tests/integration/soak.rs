//! The long scenarios of issue 13, run by `scripts/soak` (ignored by `scripts/test`): a crash
//! loop during a large broadcast, and a homeserver outage of minutes. Sizes come from the
//! environment (`SOAK_RECIPIENTS`, `SOAK_KILLS`, `SOAK_OUTAGE_SECONDS`); each prints one
//! `SOAK …` line for the summary before it asserts.

use std::{process::Stdio, time::Duration};

use rand::Rng;

use crate::harness::{
    backend, binary,
    census::assert_exactly_one_copy_each,
    scenario::{delivered, recipients, send_command},
    wait_for, wait_until, TestEnv, TestUser, DEADLINE,
};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// How many copies each recipient got and how many DMs each has with the bot, summed beyond
/// one: (duplicates, missing).
async fn count_duplicates(
    root: &TestUser,
    bot: &str,
    room: &str,
    users: &[TestUser],
    body: &str,
) -> (usize, usize) {
    let census = root.dm_census(bot, &[room]).await;
    let (mut duplicates, mut missing) = (0, 0);
    for user in users {
        let rooms: Vec<_> = census.iter().filter(|dm| dm.others.contains(&user.user_id)).collect();
        let copies: usize =
            rooms.iter().map(|dm| dm.messages.iter().filter(|content| content["body"] == body).count()).sum();
        duplicates += copies.saturating_sub(1) + rooms.len().saturating_sub(1);
        missing += usize::from(copies == 0);
    }
    (duplicates, missing)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: scripts/soak"]
async fn crash_loop_every_recipient_gets_exactly_one_copy() {
    let (count, kills) = (setting("SOAK_RECIPIENTS", 1000) as usize, setting("SOAK_KILLS", 5));
    let mut env = TestEnv::start().await;
    env.stop_bot().await.expect("stop the in-process bot");
    let dir = tempfile::tempdir().unwrap();
    let config = env.binary_config(dir.path());
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let users = recipients(&env, count).await;
    let mut child = binary::spawn(&config, Stdio::null());
    let room = env.control_room(&admin).await;
    let body = "Survives a crash loop";
    let started = std::time::Instant::now();
    admin.send_text(&room, &send_command(&users, body)).await;
    let mut moments: Vec<i64> = (0..kills).map(|_| rand::thread_rng().gen_range(1..count as i64)).collect();
    moments.sort();
    for moment in &moments {
        // A DM whose creation a kill interrupted waits up to 30 s (Synapse may still make it).
        let reached = || async { delivered(&env).await >= *moment };
        wait_until(&format!("{moment} delivered"), DEADLINE * 4, reached)
            .await
            .expect("progress after a restart");
        child.kill().expect("SIGKILL the bot");
        child.wait().unwrap();
        let pause = rand::thread_rng().gen_range(0..2_000);
        tokio::time::sleep(Duration::from_millis(pause)).await; // a random moment, not a wait
        child = binary::spawn(&config, Stdio::null());
    }
    let patience = DEADLINE * (count as u32 / 100 + 4);
    let summary = admin.wait_for_finished_count(&room, &bot, 1, patience).await.remove(0);
    let (duplicates, missing) = count_duplicates(&root, &bot, &room, &users, body).await;
    println!(
        "SOAK crash-loop backend={:?} recipients={count} kills={kills} at={moments:?} duplicates={duplicates} \
         missing={missing} seconds={:.0}",
        backend(),
        started.elapsed().as_secs_f64()
    );
    let delivered =
        matrix_broadcast::base::i18n::number(matrix_broadcast::base::i18n::Language::En, count as i64); // "1,000"
    assert!(summary.contains(&format!("{delivered} delivered, 0 failed")), "{summary}");
    assert_exactly_one_copy_each(&root, &bot, &room, &users, body).await;
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The sum of the bot's outbound requests, from its metrics.
async fn outbound_requests(env: &TestEnv) -> f64 {
    let text = reqwest::get(env.metrics_url()).await.expect("metrics").text().await.unwrap();
    text.lines()
        .filter(|line| line.starts_with("matrix_broadcast_outbound_requests_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// User plus system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|field| field.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: scripts/soak"]
async fn a_long_outage_pauses_and_resumes_once_and_what_came_while_the_bot_was_down_is_handled() {
    let outage = Duration::from_secs(setting("SOAK_OUTAGE_SECONDS", 300));
    let mut env = TestEnv::start().await;
    env.stop_bot().await.expect("stop the in-process bot");
    let dir = tempfile::tempdir().unwrap();
    let config = env.binary_config(dir.path());
    let log_path = dir.path().join("bot.log");
    let log = || Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap());
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let users = recipients(&env, 200).await;
    let mut child = binary::spawn(&config, log());
    let room = env.control_room(&admin).await;
    let body = "Survives a long outage";
    admin.send_text(&room, &send_command(&users, body)).await;
    wait_for("some deliveries", || async { (delivered(&env).await >= 20).then_some(()) }).await;

    env.synapse.stop();
    let (requests, cpu) = (outbound_requests(&env).await, cpu_seconds(child.id()));
    tokio::time::sleep(outage).await; // the outage itself
    let (requests, cpu) = (outbound_requests(&env).await - requests, cpu_seconds(child.id()) - cpu);
    let failed = env.count_in_bot_database("SELECT COUNT(*) FROM deliveries WHERE state = 'failed'").await;
    env.synapse.start_again().await;
    let summary = admin.wait_for_finished_count(&room, &bot, 1, DEADLINE * 10).await.remove(0);
    let (duplicates, missing) = count_duplicates(&root, &bot, &room, &users, body).await;
    let text = std::fs::read_to_string(&log_path).unwrap();
    let (down, up) =
        (text.matches("deliveries are paused until").count(), text.matches("deliveries resume").count());
    println!(
        "SOAK outage seconds={} requests_during_outage={requests} bot_cpu_during_outage={cpu:.2} \
         log_lines_down={down} up={up} recipients=200 duplicates={duplicates} missing={missing} failed={failed}",
        outage.as_secs()
    );
    assert_eq!(failed, 0, "nothing failed during the outage");
    // The delivery probe backs off to one try in 30 s, the health probe asks every 5 s: a hot
    // loop would make hundreds of requests a second.
    let bound = outage.as_secs_f64().max(30.0);
    assert!(requests < bound, "no hot loop: {requests} requests during {outage:?}");
    assert_eq!((down, up), (1, 1), "one log line each way");
    assert!(summary.contains("200 delivered, 0 failed"), "{summary}");
    assert_exactly_one_copy_each(&root, &bot, &room, &users, body).await;

    // The bot is down; Synapse keeps what happens meanwhile and pushes it once the bot is back.
    child.kill().unwrap();
    child.wait().unwrap();
    let alice = &users[0];
    let census = root.dm_census(&bot, &[&room]).await;
    let dm = census.iter().find(|dm| dm.others.contains(&alice.user_id)).expect("alice's DM").room_id.clone();
    alice.join(&dm).await;
    alice.send_text(&dm, "Written while the bot was down").await;
    let status = admin.send_text(&room, "!bc status #1").await;
    let mut child = binary::spawn(&config, log());
    admin.wait_for_message(&room, &bot, "Written while the bot was down").await;
    admin.wait_for_answer(&room, &bot, &status).await;
    child.kill().unwrap();
    child.wait().unwrap();
}
