//! What the stub bench prints: the deliveries table, the audience resolution timings and the
//! requests per recipient by endpoint.

use std::{collections::BTreeMap, time::Duration};

use super::database::Backend;

/// One broadcast, measured.
pub struct Round {
    pub backend: Backend,
    /// Bot processes: the main one plus delivery workers.
    pub processes: usize,
    pub n: usize,
    pub reused: bool,
    /// Seconds from the command's transaction to the last message into a DM.
    pub to_last_send: f64,
    /// Seconds from the command's transaction to the summary in the control room.
    pub to_summary: f64,
    /// Seconds from the command's transaction to the first message into a DM.
    pub to_first_send: Option<f64>,
    /// Messages the stub received in DMs.
    pub sent: u64,
    pub cpu_seconds: f64,
    /// The PostgreSQL server's CPU seconds for the bot's database (SQLite runs inside the bot).
    pub db_cpu_seconds: Option<f64>,
    /// The bot's peak resident memory since it started.
    pub peak_rss_mib: f64,
    pub requests: BTreeMap<String, u64>,
    /// The largest `m.direct` written so far, in bytes.
    pub largest_direct: usize,
    pub summary: String,
}

impl Round {
    fn kind(&self) -> &'static str {
        if self.reused {
            "reused"
        } else {
            "new"
        }
    }

    /// Requests the bot made per recipient (not what the stub pushed to it).
    fn requests_per_recipient(&self) -> f64 {
        let made = self.requests.iter().filter(|(label, _)| !label.starts_with("→ bot"));
        made.map(|(_, count)| count).sum::<u64>() as f64 / self.n as f64
    }
}

/// One `!bc audience`, measured.
pub struct Resolution {
    pub backend: Backend,
    pub audience: String,
    pub seconds: f64,
    pub answer: String,
    pub requests: BTreeMap<String, u64>,
}

/// `1234567` as `1,234,567`.
pub fn thousands(value: usize) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// An endpoint label with `C` for `/_matrix/client/v3`.
fn short(label: &str) -> String {
    label.replace("/_matrix/client/v3", "C")
}

/// Cells right-aligned in columns of 9.
fn right_aligned<S: AsRef<str>>(cells: &[S]) -> String {
    cells.iter().map(|cell| format!("{:>9}", cell.as_ref())).collect::<Vec<_>>().join(" ")
}

/// A line printed as soon as a broadcast is measured.
pub fn progress_line(round: &Round) -> String {
    format!(
        "  measured {} N={} {} DMs: {:.1} s, {}",
        round.backend.name(),
        thousands(round.n),
        round.kind(),
        round.to_summary,
        round.summary
    )
}

pub fn print(rounds: &[Round], resolutions: &[Resolution], took: Duration) {
    print_deliveries(rounds);
    print_resolutions(resolutions);
    print_requests(rounds);
    println!("\nstub bench took {:.0} s in all", took.as_secs_f64());
}

fn print_deliveries(rounds: &[Round]) {
    println!("\nDeliveries (bot release build against the stub homeserver; concurrency 8, the default)");
    let header =
        ["time s", "deliv/s", "s/1000", "1st send", "summary", "CPU s", "CPU/1000", "DB CPU s", "RSS MiB"];
    println!(
        "{:<10} {:>5} {:>7} {:<6} {} {:>8}",
        "backend",
        "procs",
        "N",
        "DMs",
        right_aligned(&header),
        "req/rcpt"
    );
    for round in rounds {
        let n = round.n as f64;
        let cells = [
            format!("{:.2}", round.to_last_send),
            format!("{:.0}", n / round.to_last_send),
            format!("{:.3}", round.to_last_send / n * 1000.0),
            round.to_first_send.map_or("-".into(), |seconds| format!("{:.0} ms", seconds * 1000.0)),
            format!("{:.1} s", round.to_summary),
            format!("{:.2}", round.cpu_seconds),
            format!("{:.3}", round.cpu_seconds / n * 1000.0),
            round.db_cpu_seconds.map_or("-".into(), |seconds| format!("{seconds:.2}")),
            format!("{:.1}", round.peak_rss_mib),
        ];
        let (backend, size) = (round.backend.name(), thousands(round.n));
        let mut line = format!(
            "{backend:<10} {:>5} {size:>7} {:<6} {}",
            round.processes,
            round.kind(),
            right_aligned(&cells)
        );
        line.push_str(&format!(" {:>8.2}", round.requests_per_recipient()));
        if round.sent != round.n as u64 || !round.summary.contains(&format!("{size} delivered")) {
            line.push_str(&format!("  !! {} sent; {}", round.sent, round.summary));
        }
        println!("{line}");
    }
    println!(
        "time s: command (transaction PUT) to the last DM message the stub received;\n\
         s/1000: the same per 1,000 recipients (flat when time grows linearly with N);\n\
         1st send: command to the first DM message; summary: command to the «finished» summary (progress is \
         checked every second);\n\
         procs: bot processes, the main one plus `matrix-broadcast worker`s on the same database;\n\
         CPU s: the bot's utime+stime during the broadcast (all its processes); DB CPU s: PostgreSQL's for the bot's database \
         (SQLite's is the bot's);\n\
         RSS: the main process's peak (VmHWM) so far; req/rcpt: requests the bot made to the stub, per recipient."
    );
    if let Some(largest) = rounds.iter().map(|round| round.largest_direct).max() {
        println!("largest m.direct written: {} KiB", largest / 1024);
    }
}

fn print_resolutions(resolutions: &[Resolution]) {
    if resolutions.is_empty() {
        return;
    }
    println!("\nAudience resolution (`!bc audience …`, command to the bot's answer; C = /_matrix/client/v3)");
    for resolution in resolutions {
        let answer = resolution.answer.split(':').take(2).collect::<Vec<_>>().join(":");
        let requests: Vec<String> =
            resolution.requests.iter().map(|(label, count)| format!("{count} × {}", short(label))).collect();
        println!(
            "{:<10} {:<24} {:>6.2} s  answer «{}»\n{:>37} requests: {}",
            resolution.backend.name(),
            resolution.audience,
            resolution.seconds,
            answer.trim(),
            "",
            requests.join(", ")
        );
    }
}

/// Requests per recipient by endpoint, one column per broadcast of the first backend.
fn print_requests(rounds: &[Round]) {
    let Some(first) = rounds.first() else { return };
    let columns: Vec<&Round> = rounds.iter().filter(|round| round.backend == first.backend).collect();
    let mut endpoints: Vec<&String> = columns.iter().flat_map(|round| round.requests.keys()).collect();
    endpoints.sort();
    endpoints.dedup();
    println!("\nRequests per recipient by endpoint ({}; C = /_matrix/client/v3)", first.backend.name());
    let header: Vec<String> = columns
        .iter()
        .map(|round| format!("{:>15}", format!("{} {}", thousands(round.n), round.kind())))
        .collect();
    println!("{:<64}{}", "endpoint", header.join(""));
    for endpoint in endpoints {
        let cells: Vec<String> = columns
            .iter()
            .map(|round| {
                let count = round.requests.get(endpoint).copied().unwrap_or(0);
                format!("{:>15.4}", count as f64 / round.n as f64)
            })
            .collect();
        println!("{:<64}{}", short(endpoint), cells.join(""));
    }
}
