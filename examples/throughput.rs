//! `bench/throughput`: how many recipients per second a broadcast reaches, for new DMs and for
//! reused DMs, against a baseline measured in the same run on the same Synapse: a plain client
//! doing the same homeserver work (create a DM room with an invite, send one message) with the
//! same concurrency, without the bot.

#[allow(dead_code)]
#[path = "../tests/integration/harness/mod.rs"]
mod harness;

use std::time::Instant;

use futures_util::{stream, StreamExt};
use harness::{TestEnv, TestUser};
use serde_json::json;

#[tokio::main]
async fn main() {
    let recipients: usize = std::env::args()
        .skip_while(|arg| arg != "--recipients")
        .nth(1)
        .and_then(|value| value.parse().ok())
        .unwrap_or(300);
    let env = TestEnv::start_with("broadcast:\n    concurrency: 8\n").await;
    let concurrency = env.config.broadcast.concurrency;
    let bot = env.bot_id();
    let admin = env.user("admin").await;
    let users: Vec<TestUser> = stream::iter(0..recipients)
        .map(|n| {
            let env = &env;
            async move { env.user(&format!("person{n:05}")).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let room = env.control_room(&admin).await;
    println!(
        "recipients: {recipients}, concurrency: {concurrency}, Synapse 1.163.2 on SQLite, debug={}",
        cfg!(debug_assertions)
    );

    // Baseline: the same homeserver work from a plain client, no bot.
    let sender = env.user("baseline").await;
    let started = Instant::now();
    stream::iter(&users)
        .for_each_concurrent(concurrency, |user| {
            let sender = &sender;
            async move {
                let room = sender
                    .create_room(
                        json!({ "preset": "private_chat", "is_direct": true, "invite": [user.user_id] }),
                    )
                    .await;
                sender.send_text(&room, "baseline").await;
            }
        })
        .await;
    let baseline = recipients as f64 / started.elapsed().as_secs_f64();
    println!("baseline  (plain client: createRoom + send)  {baseline:8.1} recipients/s");

    let audience: Vec<&str> = users.iter().map(|user| user.user_id.as_str()).collect();
    for (label, round) in [("new DMs", 1), ("reused DMs", 2)] {
        let started = Instant::now();
        admin
            .send_text(
                &room,
                &format!("!bc send {} --yes --name Round{round}\nRound {round}", audience.join(" ")),
            )
            .await;
        admin.wait_for_finished_count(&room, &bot, round, std::time::Duration::from_secs(900)).await;
        let rate = recipients as f64 / started.elapsed().as_secs_f64();
        println!(
            "bot, {label:<11} (command to summary)      {rate:8.1} recipients/s  ({:.0}% of baseline)",
            100.0 * rate / baseline
        );
    }

    // Welcome latency: people join a space with a default broadcast one after another; how long
    // from a join until the bot has sent them the welcome (its queue records the event).
    let space = env.space(&admin, "bench", &[]).await;
    let space_id = admin.resolve_alias(&space).await;
    admin.send_text(&room, &format!("!bc send {space} --default --yes --name Welcome\nWelcome!")).await;
    admin.wait_for_finished_count(&room, &bot, 3, std::time::Duration::from_secs(60)).await;
    let db =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", env.bot_db().display())).await.expect("bot db");
    let mut latencies = Vec::new();
    for user in users.iter().take(20) {
        let started = Instant::now();
        user.join(&space_id).await;
        harness::wait_until("the welcome was sent", std::time::Duration::from_secs(60), || async {
            let sent: Option<(String,)> = sqlx::query_as(
                "SELECT event_id FROM deliveries d JOIN broadcasts b ON b.id = d.broadcast_id
                 WHERE b.name = 'Welcome' AND d.user_id = $1 AND d.state = 'delivered'",
            )
            .bind(&user.user_id)
            .fetch_optional(&db)
            .await
            .ok()
            .flatten();
            sent.is_some()
        })
        .await
        .expect("welcome sent");
        latencies.push(started.elapsed().as_secs_f64());
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "welcome after a join (20 joins, reused DMs)   median {:.2} s, max {:.2} s",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
}
