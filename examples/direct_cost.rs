//! `bench/run` part: what one rewrite of the bot's `m.direct` costs on real Synapse as the number
//! of DMs grows. The bot rewrites the whole object (account data has no partial update), so the
//! measurement decides how often, and up to what size, it is worth writing (see `src/rooms/dm.rs`).
//! Prints the body size, the time of the PUT and the CPU seconds Synapse spent on it.

#[allow(dead_code)]
#[path = "../tests/integration/harness/mod.rs"]
mod harness;

use std::time::Instant;

use harness::TestEnv;
use serde_json::{Map, Value};

/// A user ID and a room ID of version 12 (43 characters after the sigil) per DM.
fn direct_content(dms: usize) -> Value {
    let mut content = Map::new();
    for n in 0..dms {
        let room = format!("!{:0>43}", format!("{n:x}room"));
        content.insert(format!("@person{n:06}:test.local"), Value::from(vec![room]));
    }
    Value::Object(content)
}

/// utime + stime of a process, in seconds (Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: f64 =
        fields.get(11..13).map_or(0.0, |both| both.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
    ticks / 100.0
}

#[tokio::main]
async fn main() {
    let env = TestEnv::start().await;
    let user = env.user("direct_bench").await;
    let synapse = env.synapse.pid().expect("Synapse runs");
    let path =
        format!("/_matrix/client/v3/user/{}/account_data/m.direct", harness::client::encode(&user.user_id));
    println!("m.direct rewrite on Synapse 1.163 (SQLite), one PUT of the whole object");
    println!("{:>8} {:>10} {:>10} {:>14}", "DMs", "bytes", "PUT s", "Synapse CPU s");
    for dms in [1_000, 10_000, 100_000] {
        let content = direct_content(dms);
        let bytes = content.to_string().len();
        let (cpu, started) = (cpu_seconds(synapse), Instant::now());
        let (status, _) = user.call(reqwest::Method::PUT, &path, Some(content)).await;
        let took = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(synapse) - cpu;
        println!("{dms:>8} {bytes:>10} {took:>10.2} {cpu:>14.2}   (HTTP {status})");
    }
}
