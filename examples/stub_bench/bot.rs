//! The bot under test: its release binary run as a subprocess with a config of its own, fed
//! appservice transactions the way Synapse feeds them, and measured through `/proc`.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{json, Value};

/// What the bot's config is made of.
pub struct BotSetup<'a> {
    pub binary: &'a Path,
    pub dir: &'a Path,
    pub homeserver_url: &'a str,
    pub domain: &'a str,
    pub port: u16,
    pub as_token: &'a str,
    pub hs_token: &'a str,
    pub admin: &'a str,
    pub database_uri: &'a str,
    /// Delivery worker processes (`matrix-broadcast worker`) next to the main one.
    pub workers: usize,
}

/// A running bot: the main process and its delivery workers.
pub struct Bot {
    child: Child,
    workers: Vec<Child>,
    url: String,
    hs_token: String,
    pub log: PathBuf,
    http: reqwest::Client,
}

/// The release binary next to this example's (`target/release/examples/stub_bench`), built now
/// with `cargo build --release --locked` so that it is the current source.
pub fn release_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--quiet", "--bin", "matrix-broadcast"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --release of the bot failed");
    let examples = std::env::current_exe().expect("own path");
    let release = examples.parent().and_then(Path::parent).expect("target/release");
    release.join("matrix-broadcast")
}

fn config_text(setup: &BotSetup) -> String {
    format!(
        r#"homeserver:
    address: {homeserver}
    domain: {domain}
appservice:
    address: http://127.0.0.1:{port}
    hostname: 127.0.0.1
    port: {port}
    as_token: {as_token}
    hs_token: {hs_token}
database:
    uri: "{database}"
permissions:
    "*": none
    "{admin}": admin
metrics:
    enabled: false
logging:
    level: warn
"#,
        homeserver = setup.homeserver_url,
        domain = setup.domain,
        port = setup.port,
        as_token = setup.as_token,
        hs_token = setup.hs_token,
        database = setup.database_uri,
        admin = setup.admin,
    )
}

impl Bot {
    /// Writes the config into `setup.dir` and starts `matrix-broadcast run -c <config>`, and
    /// `setup.workers` times `matrix-broadcast worker -c <config>`, their output into `bot.log`
    /// and `worker<N>.log` there.
    pub fn start(setup: &BotSetup) -> Self {
        let config = setup.dir.join("config.yaml");
        std::fs::write(&config, config_text(setup)).expect("config written");
        let log = setup.dir.join("bot.log");
        let child = spawn(setup.binary, "run", &config, &log);
        let workers = (0..setup.workers)
            .map(|n| spawn(setup.binary, "worker", &config, &setup.dir.join(format!("worker{n}.log"))))
            .collect();
        Self {
            child,
            workers,
            url: format!("http://127.0.0.1:{}", setup.port),
            hs_token: setup.hs_token.to_owned(),
            log,
            http: reqwest::Client::new(),
        }
    }

    /// Pushes `events` in one transaction, as the homeserver does.
    pub async fn push(&self, events: Vec<Value>) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let txn = format!("stub-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let answer = self
            .http
            .put(format!("{}/_matrix/app/v1/transactions/{txn}", self.url))
            .bearer_auth(&self.hs_token)
            .json(&json!({ "events": events }))
            .send()
            .await
            .expect("the bot takes the transaction");
        assert!(answer.status().is_success(), "the bot refused a transaction: {}", answer.status());
    }

    /// User plus system CPU time so far, in seconds, of all its processes.
    pub fn cpu_seconds(&self) -> f64 {
        std::iter::once(&self.child).chain(&self.workers).map(|child| cpu_seconds_of(child.id())).sum()
    }

    /// The peak resident memory so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
        kib.unwrap_or(0.0) / 1024.0
    }

    /// Whether a process has ended (none should have).
    pub fn exited(&mut self) -> bool {
        std::iter::once(&mut self.child)
            .chain(&mut self.workers)
            .any(|child| matches!(child.try_wait(), Ok(Some(_))))
    }

    /// Stops the bot's processes with SIGTERM (killing each after ten seconds).
    pub fn stop(mut self) {
        for child in std::iter::once(&mut self.child).chain(&mut self.workers) {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        }
        for child in std::iter::once(&mut self.child).chain(&mut self.workers) {
            for _ in 0..100 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `binary <subcommand> -c <config>` with its output into `log`.
fn spawn(binary: &Path, subcommand: &str, config: &Path, log: &Path) -> Child {
    let output = std::fs::File::create(log).expect("log file");
    Command::new(binary)
        .arg(subcommand)
        .arg("-c")
        .arg(config)
        .env("RUST_LOG", std::env::var("STUB_BENCH_BOT_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(output.try_clone().expect("log file"))
        .stderr(output)
        .spawn()
        .expect("the bot starts")
}

/// User plus system CPU time of process `pid` so far, in seconds (0 when it is gone).
pub fn cpu_seconds_of(pid: u32) -> f64 {
    // utime and stime: the 14th and 15th fields of the line, the 12th and 13th after the name.
    seconds_in_stat(pid, 11, 12)
}

/// The CPU seconds of the children that process `pid` has waited for (cutime and cstime).
pub fn reaped_children_cpu_seconds_of(pid: u32) -> f64 {
    seconds_in_stat(pid, 13, 14)
}

/// The sum of two clock-tick fields of `/proc/<pid>/stat`, counted after the command name
/// (which may hold spaces), in seconds; 0 when the process is gone.
fn seconds_in_stat(pid: u32, first: usize, second: usize) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(first) + ticks(second)) / clock_ticks_per_second()
}

/// `getconf CLK_TCK`, 100 when it cannot be asked.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let output = Command::new("getconf").arg("CLK_TCK").stderr(Stdio::null()).output();
        output.ok().and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok()).unwrap_or(100.0)
    })
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_millis() as u64).unwrap_or(0)
}

/// A fresh event ID for what the bench makes people do.
fn event_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("$bench{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `inviter` invites `invitee` into `room`.
pub fn invite_event(room: &str, inviter: &str, invitee: &str) -> Value {
    json!({
        "type": "m.room.member", "state_key": invitee, "sender": inviter, "room_id": room,
        "event_id": event_id(), "origin_server_ts": now_ms(), "content": { "membership": "invite" },
    })
}

/// `sender` writes `body` into `room`.
pub fn message_event(room: &str, sender: &str, body: &str) -> Value {
    json!({
        "type": "m.room.message", "sender": sender, "room_id": room, "event_id": event_id(),
        "origin_server_ts": now_ms(), "content": { "msgtype": "m.text", "body": body },
    })
}
