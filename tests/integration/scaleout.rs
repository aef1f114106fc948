//! Issue 13: running under fire and scaled out. Delivery workers in processes of their own next
//! to the main process on one PostgreSQL database; SIGTERM in the middle of a broadcast;
//! `/health` and the metrics while the homeserver is down.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;

use crate::harness::{
    binary::{spawn_worker, terminate},
    bot_config,
    census::assert_exactly_one_copy_each,
    free_port, postgres_schema_uri,
    scenario::{delivered, make_server_admin, recipients, send_command},
    wait_for, wait_until, TestEnv, TestUser, DEADLINE,
};

/// How long the process may take to exit after SIGTERM.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// `GET /health`: its status code and JSON body.
async fn health(env: &TestEnv) -> (u16, Value) {
    answer(env, "/health").await
}

/// What `GET path` on the bot's port answers: status and JSON body.
async fn answer(env: &TestEnv, path: &str) -> (u16, Value) {
    answer_at(&env.bot_url, path).await.expect("the bot answers")
}

/// What `GET path` at `base` (`http://host:port`) answers: status and JSON body; `None` while
/// nothing listens there.
async fn answer_at(base: &str, path: &str) -> Option<(u16, Value)> {
    let response = reqwest::get(format!("{base}{path}")).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.expect("answers JSON")))
}

/// Waits until `/ready` at `base` answers 200, then checks `/live`: each process's listener
/// for `/metrics` (a worker's `--listen`, the main process's `metrics.listen`) has both.
async fn wait_until_ready(base: &str) {
    let ready = (200, serde_json::json!({ "status": "ready" }));
    wait_for(&format!("{base}/ready"), || async {
        (answer_at(base, "/ready").await? == ready).then_some(())
    })
    .await;
    assert_eq!(answer_at(base, "/live").await, Some((200, serde_json::json!({ "status": "ok" }))));
}

/// The metrics served at `url`, once they answer.
async fn scrape(url: &str) -> String {
    wait_for("metrics", || async { reqwest::get(url).await.ok()?.text().await.ok() }).await
}

/// The value of the metric line that starts with `series` (name and labels), if there is one.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_tells_the_homeserver_from_the_database_and_recovers() {
    let mut env = TestEnv::start().await;
    wait_until("/health is ok", DEADLINE, || async { health(&env).await.0 == 200 }).await.unwrap();
    let (_, body) = health(&env).await;
    assert_eq!(body, serde_json::json!({ "status": "ok", "database": "ok", "homeserver": "ok" }));

    env.synapse.stop();
    let down = wait_for("/health says the homeserver is down", || async {
        let (status, body) = health(&env).await;
        (status == 503).then_some(body)
    })
    .await;
    // Terse: why is in the log, not in an answer to anyone who reaches the port.
    let expected =
        serde_json::json!({ "status": "unavailable", "database": "ok", "homeserver": "unavailable" });
    assert_eq!(down, expected, "the database is still fine");
    // Issue 24: a liveness check does not restart the bot while Synapse is away; readiness says why.
    assert_eq!(answer(&env, "/live").await, (200, serde_json::json!({ "status": "ok" })));
    let not_ready = serde_json::json!({ "status": "unavailable", "reason": "homeserver" });
    assert_eq!(answer(&env, "/ready").await, (503, not_ready));

    env.synapse.start_again().await;
    wait_until("/health is ok again", DEADLINE, || async { health(&env).await.0 == 200 }).await.unwrap();
    assert_eq!(answer(&env, "/ready").await, (200, serde_json::json!({ "status": "ready" })));
}

/// SIGTERM in the middle of a broadcast, with the homeserver hung (SIGSTOP: its requests never
/// answer): the process exits with success within 10 s and leaves no delivery `sending` (the
/// sends it was in go back to the queue); started again, it finishes the broadcast with exactly
/// one copy each. Before, its metrics show the queue and the homeserver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_broadcast_exits_in_time_and_a_restart_finishes_exactly_once() {
    let mut env = TestEnv::start().await;
    env.stop_bot().await.expect("stop the in-process bot");
    let dir = tempfile::tempdir().unwrap();
    let config = env.binary_config(dir.path());
    let (bot, metrics) = (env.bot_id(), env.metrics_url());
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let users = recipients(&env, 100).await;

    let mut child = crate::harness::binary::spawn(&config, std::process::Stdio::null());
    let room = env.control_room(&admin).await;
    admin.send_text(&room, &send_command(&users, "Survives SIGTERM")).await;
    wait_for("some deliveries before SIGTERM", || async { (delivered(&env).await >= 10).then_some(()) })
        .await;
    let text = wait_for("the queue depth in the metrics", || async {
        let text = reqwest::get(&metrics).await.ok()?.text().await.ok()?;
        (metric(&text, "matrix_broadcast_queue_depth{state=\"pending\"}")? > 0.0).then_some(text)
    })
    .await;
    assert_eq!(metric(&text, "matrix_broadcast_homeserver_up"), Some(1.0), "{text}");
    assert!(metric(&text, "matrix_broadcast_deliveries_total{outcome=\"delivered\"}").is_some(), "{text}");
    assert!(metric(&text, "matrix_broadcast_deliveries_total{outcome=\"retried\"}").is_some(), "{text}");

    let synapse = env.synapse.pid().expect("synapse runs").to_string();
    let signal = |name: &str| std::process::Command::new("kill").args([name, &synapse]).status().unwrap();
    assert!(signal("-STOP").success(), "hang the homeserver");
    let status = terminate(&mut child, EXIT_LIMIT);
    assert!(signal("-CONT").success(), "the homeserver answers again");
    let status = status.expect("the bot exits within 10 s of SIGTERM, the homeserver hung");
    assert!(status.success(), "a clean exit: {status}");
    let sending = env.count_in_bot_database("SELECT COUNT(*) FROM deliveries WHERE state = 'sending'").await;
    assert_eq!(sending, 0, "no delivery stays `sending`: each is delivered or back in the queue");
    assert!(delivered(&env).await < users.len() as i64, "stopped mid-broadcast");

    let mut child = crate::harness::binary::spawn(&config, std::process::Stdio::null());
    let summary = admin.wait_for_finished_count(&room, &bot, 1, DEADLINE * 6).await.remove(0);
    assert!(summary.contains(&format!("{} delivered, 0 failed", users.len())), "{summary}");
    assert_exactly_one_copy_each(&root, &bot, &room, &users, "Survives SIGTERM").await;
    assert!(terminate(&mut child, EXIT_LIMIT).is_some_and(|status| status.success()));
}

/// Worker processes, killed if the test ends before it stopped them.
struct Workers(Vec<std::process::Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &mut self.0 {
            let _ = worker.kill();
            let _ = worker.wait();
        }
    }
}

/// `count` users named `many00000…`, registered 50 at a time.
async fn many_users(env: &TestEnv, count: usize) -> Vec<TestUser> {
    let mut users = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(50) {
        let names: Vec<String> = chunk.iter().map(|n| format!("many{n:05}")).collect();
        users.extend(join_all(names.iter().map(|name| env.user(name))).await);
    }
    users
}

/// The main process (in-process) and two `worker` processes on one PostgreSQL database send a
/// broadcast to every local user (`count` plus the admin and the server admin): each gets
/// exactly one copy in exactly one DM, and both workers delivered some of it.
async fn main_and_two_workers_deliver_exactly_once(count: usize) {
    let env = TestEnv::start_with_config(|synapse_url, bot_port, dir| {
        let mut config = bot_config(synapse_url, bot_port, dir, "");
        config.database.uri = postgres_schema_uri();
        config
    })
    .await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let room = env.control_room(&admin).await; // the bot is registered by now
    make_server_admin(&root, &bot).await;
    let mut users = many_users(&env, count).await;
    let dir = tempfile::tempdir().unwrap();
    let config = env.binary_config(dir.path());
    let worker_metrics: Vec<String> = (0..2).map(|_| format!("127.0.0.1:{}", free_port())).collect();
    let mut workers = Workers(worker_metrics.iter().map(|listen| spawn_worker(&config, listen)).collect());
    // Issue 24: every process answers /live and /ready.
    for listen in &worker_metrics {
        wait_until_ready(&format!("http://{listen}")).await;
    }
    wait_until_ready(&format!("http://{}", env.config.metrics.listen)).await;

    let started = std::time::Instant::now();
    admin.send_text(&room, "!bc send server --yes --name Scale\nTo everyone, once").await;
    let summary = admin.wait_for_finished_count(&room, &bot, 1, DEADLINE * 20).await.remove(0);
    users.extend([admin.clone(), root.clone()]);
    let mut by_worker = Vec::new();
    for listen in &worker_metrics {
        let text = scrape(&format!("http://{listen}/metrics")).await;
        by_worker
            .push(metric(&text, "matrix_broadcast_deliveries_total{outcome=\"delivered\"}").unwrap_or(0.0));
    }
    println!(
        "SOAK workers recipients={} delivered_by_workers={by_worker:?} seconds={:.0} summary={summary:?}",
        users.len(),
        started.elapsed().as_secs_f64()
    );
    let delivered =
        matrix_broadcast::base::i18n::number(matrix_broadcast::base::i18n::Language::En, users.len() as i64); // "2,002"
    assert!(summary.contains(&format!("{delivered} delivered, 0 failed")), "{summary}");
    for (listen, sent) in worker_metrics.iter().zip(&by_worker) {
        assert!(*sent > 0.0, "the worker on {listen} delivered some");
    }
    for worker in &mut workers.0 {
        let status = terminate(worker, EXIT_LIMIT).expect("a worker exits within 10 s of SIGTERM");
        assert!(status.success(), "{status}");
    }
    assert_exactly_one_copy_each(&root, &bot, &room, &users, "To everyone, once").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_and_two_workers_on_postgres_deliver_300_exactly_once() {
    main_and_two_workers_deliver_exactly_once(300).await;
}

/// The same with 2,000 recipients: several minutes (Synapse makes about 10 DMs a second), so
/// for `scripts/soak`: `cargo test --locked --test integration scaleout::main_and_two_workers_on_postgres_deliver_2000 -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "several minutes: run by scripts/soak"]
async fn main_and_two_workers_on_postgres_deliver_2000_exactly_once() {
    main_and_two_workers_deliver_exactly_once(2000).await;
}

#[test]
fn a_worker_on_sqlite_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let text = matrix_broadcast::base::config::EXAMPLE
        .replace("example.org", "chat.example.net")
        .replace("as_token: ", "as_token: a-token-that-is-set-and-long-enough-0123456789 #")
        .replace("hs_token: ", "hs_token: another-token-that-is-set-and-long-enough-0123456789 #");
    std::fs::write(&config, text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_matrix-broadcast"))
        .current_dir(dir.path())
        .args(["worker", "-c", config.to_str().unwrap()])
        .output()
        .expect("run matrix-broadcast worker");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "refused: {stderr}");
    assert!(stderr.contains("workers need PostgreSQL"), "{stderr}");
    assert!(stderr.contains("one process only"), "says why: {stderr}");
    assert!(!dir.path().join("matrix-broadcast.db").exists(), "no SQLite file was made");
}
