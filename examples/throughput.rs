//! `bench/throughput`: the bot against real Synapse (1.163, SQLite, the tests' config plus server
//! notices and metrics), side by side with two baselines doing the same job with the same
//! concurrency C, on the same Synapse, in the same run:
//!
//! - **bot**: the release binary as a subprocess with `broadcast.concurrency: C`, timed from the
//!   `!bc send … --yes` command to the last delivery in its database; then `!bc edit` of the
//!   reused round's broadcast, timed to the last copy that shows the new text (DMs: `edit`);
//! - **plain appservice**: a plain HTTP client holding an appservice's `as_token` (the test
//!   Synapse's second appservice, acting as its sender `@bridge_bot`, not rate limited like the
//!   bot), doing the least a DM needs: createRoom (private_chat, is_direct, invite) + one send;
//!   for reused DMs, one send into the room it made;
//! - **server notices**: `POST /_synapse/admin/v1/send_server_notice` once per person (the first
//!   notice creates the notices room, the repeat reuses it).
//! - **bot, encrypted**: the same binary with `encryption.enabled` (its crypto store made by the
//!   in-process bot at the start), to people of its own who each have one E2EE device (a
//!   matrix-sdk client with its keys uploaded and no sync loop): new encrypted DMs, then reused.
//!
//! Every row of the plan has people of its own, so that its first round makes new DMs.
//! Requests and events per recipient are deltas of Synapse's Prometheus counters
//! (`synapse_http_server_requests_received_total`, `synapse_storage_events_persisted_events_total`)
//! over a measurement; CPU seconds are utime + stime from `/proc/<pid>/stat` of the Synapse and
//! bot processes.

#[allow(dead_code)]
#[path = "../tests/integration/harness/mod.rs"]
mod harness;

use std::{
    collections::BTreeMap,
    future::Future,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use futures_util::{stream, StreamExt};
use harness::{e2ee::E2eeUser, synapse::BRIDGE_TOKEN, TestEnv, TestUser, SERVER_NAME};
use reqwest::Method;
use serde_json::json;

/// What the bench measures: recipients N at concurrencies C; the baselines at some of them.
/// Each new DM costs this Synapse about 0.15 s of CPU (0.2 s of wall time, new + reused) for
/// every sender, and the bench must fit in ~14 minutes on 2 cores: see [`FULL_PLAN_NOTE`].
struct Plan {
    recipients: usize,
    concurrencies: &'static [usize],
    plain_appservice_at: &'static [usize],
    server_notices_at: &'static [usize],
    /// The bot with encryption on, to people with an E2EE device each.
    encrypted_at: &'static [usize],
}

const FULL_PLAN: &[Plan] = &[
    Plan {
        recipients: 300,
        concurrencies: &[1, 4, 8, 16],
        plain_appservice_at: &[1, 8],
        server_notices_at: &[8],
        encrypted_at: &[8],
    },
    Plan {
        recipients: 1000,
        concurrencies: &[8],
        plain_appservice_at: &[],
        server_notices_at: &[],
        encrypted_at: &[],
    },
];
const FULL_PLAN_NOTE: &str = "shrunk to fit ~14 minutes on 2 cores: the plain appservice at C = 1 \
     and 8 only, server notices and the encrypting bot at C = 8 only, N = 1,000 at C = 8 and the \
     bot only (compare with the baselines of N = 300)";
const QUICK_PLAN: &[Plan] = &[Plan {
    recipients: 50,
    concurrencies: &[8],
    plain_appservice_at: &[8],
    server_notices_at: &[8],
    encrypted_at: &[8],
}];

/// How many registrations are in flight at once.
const REGISTER_CONCURRENCY: usize = 16;
/// How long one round may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(600);
/// Linux's USER_HZ: the unit of utime and stime in `/proc/<pid>/stat`.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;
const MESSAGE: &str = "A message from the throughput bench";

#[tokio::main]
async fn main() {
    let quick = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--quick") => true,
        Some(other) => panic!("unknown argument {other}: bench/throughput [--quick]"),
    };
    let (plan, note) = if quick { (QUICK_PLAN, "quick smoke test") } else { (FULL_PLAN, FULL_PLAN_NOTE) };
    let started = Instant::now();
    let bench = Bench::start().await;
    println!("Synapse 1.163.2 on SQLite, 2 cores, release bot binary; plan: {}; {note}", describe(plan));
    let rows: Vec<(&Plan, usize)> =
        plan.iter().flat_map(|part| part.concurrencies.iter().map(move |c| (part, *c))).collect();
    let people = bench.register_people(&rows, "person").await;
    let encrypted_rows: Vec<(&Plan, usize)> =
        rows.iter().copied().filter(|(part, c)| part.encrypted_at.contains(c)).collect();
    let mut encrypted_people = bench.register_people(&encrypted_rows, "e2ee").await.into_iter();
    let devices = bench.log_in_devices(encrypted_people.as_slice()).await;
    print_header();
    let mut breakdowns = Vec::new();
    for ((part, c), users) in rows.iter().zip(&people) {
        let baselines = Baselines {
            plain_appservice: part.plain_appservice_at.contains(c),
            server_notices: part.server_notices_at.contains(c),
            encrypted: if part.encrypted_at.contains(c) { encrypted_people.next() } else { None },
        };
        let lines = bench.row(*c, users, baselines).await;
        if *c == 8 {
            breakdowns.push((part.recipients, lines));
        }
    }
    drop(devices);
    for (n, lines) in &breakdowns {
        print_breakdown(*n, lines);
    }
    bench.welcome_latency(&people[0]).await;
    println!("\nwhole bench: {:.0} s", started.elapsed().as_secs_f64());
}

fn describe(plan: &[Plan]) -> String {
    let parts: Vec<String> =
        plan.iter().map(|part| format!("N = {} at C = {:?}", part.recipients, part.concurrencies)).collect();
    parts.join(", ")
}

/// Which baselines a row of the table measures next to the bot.
struct Baselines {
    plain_appservice: bool,
    server_notices: bool,
    /// The people of the encrypting bot's rows, when it has some.
    encrypted: Option<Vec<TestUser>>,
}

/// The Synapse, the people who act on it, and the bot's files.
struct Bench {
    env: TestEnv,
    admin: TestUser,
    /// A Synapse server admin: sends the server notices.
    root: TestUser,
    /// The plain appservice baseline.
    appservice: TestUser,
    control_room: String,
    synapse_metrics: String,
    /// The bot's config (without `broadcast` and `encryption`) and logs.
    dir: tempfile::TempDir,
    bot_config: String,
    /// The `encryption:` section of the encrypting bot's config.
    encryption: String,
    bot_db: sqlx::SqlitePool,
}

impl Bench {
    async fn start() -> Bench {
        let metrics_port = harness::free_port();
        // Registered for encryption (MSC2409/MSC3202); the in-process bot makes the crypto store.
        let make_config = |synapse_url: &str, bot_port, dir: &Path| {
            let encryption = format!(
                "encryption:\n    enabled: true\n    pickle_key: {}\n    store: {}\n",
                harness::random_secret(),
                dir.join("crypto").display()
            );
            harness::bot_config(synapse_url, bot_port, dir, &encryption)
        };
        let mut env = TestEnv::start_with_homeserver(make_config, &homeserver_extra(metrics_port)).await;
        env.stop_bot().await.expect("stop the in-process bot: the binary runs on its database");
        let dir = tempfile::Builder::new().prefix("throughput-").tempdir().expect("temp dir");
        let config = std::fs::read_to_string(env.binary_config(dir.path())).expect("bot config");
        // `binary_config` puts `encryption:` last: without it, the bot sends in clear.
        let (bot_config, encryption) = config.split_at(config.find("encryption:\n").expect("encryption:"));
        let (bot_config, encryption) = (bot_config.to_owned(), encryption.to_owned());
        let bot_db = sqlx::SqlitePool::connect(&format!("sqlite://{}", env.bot_db().display()))
            .await
            .expect("the bot's database");
        let admin = env.user("admin").await;
        let root = env.server_admin().await;
        let appservice =
            TestUser::with_token(&env.synapse, &format!("@bridge_bot:{SERVER_NAME}"), BRIDGE_TOKEN);
        let mut bench = Bench {
            env,
            admin,
            root,
            appservice,
            control_room: String::new(),
            synapse_metrics: format!("http://127.0.0.1:{metrics_port}/_synapse/metrics"),
            dir,
            bot_config,
            encryption,
            bot_db,
        };
        let bot = bench.start_bot(8, false).await;
        bench.control_room = bench.env.control_room(&bench.admin).await;
        bot.stop().await;
        bench
    }

    /// Registers the people of every row at once (`prefix` and a number), and says how long that
    /// took.
    async fn register_people(&self, rows: &[(&Plan, usize)], prefix: &str) -> Vec<Vec<TestUser>> {
        let total: usize = rows.iter().map(|(part, _)| part.recipients).sum();
        let synapse_cpu = self.synapse_cpu();
        let started = Instant::now();
        let mut people: Vec<TestUser> = stream::iter(0..total)
            .map(|index| async move { self.env.user(&format!("{prefix}{index:05}")).await })
            .buffer_unordered(REGISTER_CONCURRENCY)
            .collect()
            .await;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "registered {total} people in {seconds:.0} s ({:.0}/s, {REGISTER_CONCURRENCY} at a time through \
             the shared-secret admin API; Synapse CPU {:.0} s)",
            total as f64 / seconds,
            self.synapse_cpu() - synapse_cpu
        );
        rows.iter().map(|(part, _)| people.split_off(people.len() - part.recipients)).collect()
    }

    /// One E2EE device for each of `people` (keys uploaded, no sync loop), and says how long
    /// logging them in took.
    async fn log_in_devices(&self, people: &[Vec<TestUser>]) -> Vec<E2eeUser> {
        let people: Vec<&TestUser> = people.iter().flatten().collect();
        let started = Instant::now();
        let synapse = &self.env.synapse;
        let devices: Vec<E2eeUser> = stream::iter(&people)
            .map(|user| E2eeUser::login_quiet(synapse, user))
            .buffer_unordered(REGISTER_CONCURRENCY)
            .collect()
            .await;
        println!(
            "logged in {} E2EE devices (keys uploaded) in {:.0} s",
            devices.len(),
            started.elapsed().as_secs_f64()
        );
        devices
    }

    /// One row of the table: every sender to `users` with concurrency `c`, new DMs then reused.
    async fn row(&self, c: usize, users: &[TestUser], baselines: Baselines) -> Vec<Line> {
        let n = users.len();
        let bot = self.start_bot(c, false).await;
        let bot_new = self.bot_broadcast(&bot, users, &format!("N{n}C{c}new"), "bot").await;
        bot_new.print(n, c, None);
        let bot_reused = self.bot_broadcast(&bot, users, &format!("N{n}C{c}reused"), "bot").await;
        bot_reused.print(n, c, None);
        let bot_edit = self.bot_edit(&bot, &format!("N{n}C{c}reused")).await;
        bot_edit.print(n, c, None);
        bot.stop().await;
        let mut lines = vec![bot_new, bot_reused, bot_edit];
        if baselines.plain_appservice {
            let (plain_new, rooms) = self.plain_new_dms(users, c).await;
            plain_new.print(n, c, Some(&lines[0]));
            let plain_reused = self.plain_sends(&rooms, n, c).await;
            plain_reused.print(n, c, Some(&lines[1]));
            lines.extend([plain_new, plain_reused]);
        }
        if baselines.server_notices {
            let notices_first = self.server_notices(users, c, "first").await;
            notices_first.print(n, c, Some(&lines[0]));
            let notices_repeat = self.server_notices(users, c, "repeat").await;
            notices_repeat.print(n, c, Some(&lines[1]));
            lines.extend([notices_first, notices_repeat]);
        }
        if let Some(people) = &baselines.encrypted {
            let bot = self.start_bot(c, true).await;
            let sender = "bot, encrypted";
            let new = self.bot_broadcast(&bot, people, &format!("N{n}C{c}encrypted-new"), sender).await;
            new.print(n, c, None);
            let reused = self.bot_broadcast(&bot, people, &format!("N{n}C{c}encrypted-reused"), sender).await;
            reused.print(n, c, None);
            bot.stop().await;
            lines.extend([new, reused]);
        }
        lines
    }

    /// The release binary with `broadcast.concurrency`, and `encryption.enabled` if `encrypted`.
    async fn start_bot(&self, concurrency: usize, encrypted: bool) -> BotProcess {
        let kind = if encrypted { "-encrypted" } else { "" };
        let config = self.dir.path().join(format!("config-c{concurrency}{kind}.yaml"));
        let encryption = if encrypted { self.encryption.as_str() } else { "" };
        let text = format!("{}{encryption}broadcast:\n    concurrency: {concurrency}\n", self.bot_config);
        std::fs::write(&config, text).expect("write the bot's config");
        BotProcess::start(&config, &self.dir.path().join(format!("bot-c{concurrency}{kind}.log"))).await
    }

    /// A broadcast from the control room to `users`, timed to its last delivery; its costs
    /// run until the bot marks it finished (its summary edit included).
    async fn bot_broadcast(
        &self,
        bot: &BotProcess,
        users: &[TestUser],
        name: &str,
        sender: &'static str,
    ) -> Line {
        let ids: Vec<&str> = users.iter().map(|user| user.user_id.as_str()).collect();
        let command = format!("!bc send {} --yes --name {name}\n{MESSAGE}", ids.join(" "));
        let (mut cost, (to_last_delivery, failed)) = self
            .measure(Some(bot), async {
                let started = Instant::now();
                self.admin.send_text(&self.control_room, &command).await;
                let failed = self.wait_for_deliveries(name, users.len()).await;
                let to_last_delivery = started.elapsed().as_secs_f64();
                self.wait_until_finished(name).await;
                (to_last_delivery, failed)
            })
            .await;
        cost.seconds = to_last_delivery;
        let dms = if name.ends_with("new") { "new" } else { "reused" };
        Line { sender, dms, cost, failed }
    }

    /// `!bc edit` of broadcast `name`, timed to the last copy that shows the new text (or whose
    /// edit failed); its costs run until the bot said every copy is edited.
    async fn bot_edit(&self, bot: &BotProcess, name: &str) -> Line {
        let (id,): (i64,) = sqlx::query_as("SELECT id FROM broadcasts WHERE name = $1")
            .bind(name)
            .fetch_one(&self.bot_db)
            .await
            .expect("the broadcast to edit");
        let (mut cost, (seconds, failed)) = self
            .measure(Some(bot), async {
                let started = Instant::now();
                self.admin.send_text(&self.control_room, &format!("!bc edit {id}\n{MESSAGE}, edited")).await;
                let failed = self.wait_for_edits(id).await;
                let seconds = started.elapsed().as_secs_f64();
                let edited = format!("Edited #{id}");
                self.admin.wait_for_message(&self.control_room, &self.env.bot_id(), &edited).await;
                (seconds, failed)
            })
            .await;
        cost.seconds = seconds;
        Line { sender: "bot", dms: "edit", cost, failed }
    }

    /// Waits until every delivered copy of broadcast `id` shows its first revision or failed to;
    /// returns the failed.
    async fn wait_for_edits(&self, id: i64) -> usize {
        let until = Instant::now() + PATIENCE;
        loop {
            let (waiting, failed): (i64, i64) = sqlx::query_as(
                "SELECT COALESCE(SUM(shown_revision < 1 AND followup_error IS NULL), 0),
                        COALESCE(SUM(followup_error IS NOT NULL), 0)
                 FROM deliveries WHERE broadcast_id = $1 AND state = 'delivered'",
            )
            .bind(id)
            .fetch_one(&self.bot_db)
            .await
            .expect("count edited copies");
            if waiting == 0 {
                return failed as usize;
            }
            assert!(Instant::now() < until, "#{id}: {waiting} copies not edited after {PATIENCE:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every delivery of broadcast `name` is delivered or failed; returns the failed.
    async fn wait_for_deliveries(&self, name: &str, recipients: usize) -> usize {
        let until = Instant::now() + PATIENCE;
        loop {
            let (delivered, failed): (i64, i64) = sqlx::query_as(
                "SELECT COALESCE(SUM(d.state = 'delivered'), 0), COALESCE(SUM(d.state = 'failed'), 0)
                 FROM deliveries d JOIN broadcasts b ON b.id = d.broadcast_id WHERE b.name = $1",
            )
            .bind(name)
            .fetch_one(&self.bot_db)
            .await
            .expect("count deliveries");
            if (delivered + failed) as usize >= recipients {
                return failed as usize;
            }
            assert!(
                Instant::now() < until,
                "{name}: {delivered} of {recipients} delivered after {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_until_finished(&self, name: &str) {
        let finished = || async {
            sqlx::query("SELECT 1 FROM broadcasts WHERE name = $1 AND finished_at IS NOT NULL")
                .bind(name)
                .fetch_optional(&self.bot_db)
                .await
                .is_ok_and(|row| row.is_some())
        };
        if let Err(error) = harness::wait_until(name, harness::DEADLINE, finished).await {
            println!("warning: {error}");
        }
    }

    /// createRoom with the invite + one send per person; returns the rooms made.
    async fn plain_new_dms(&self, users: &[TestUser], c: usize) -> (Line, Vec<String>) {
        let (cost, rooms) = self
            .measure(None, stream::iter(users).map(|user| self.new_dm(user)).buffer_unordered(c).collect())
            .await;
        let rooms: Vec<String> = Vec::into_iter(rooms).flatten().collect();
        let failed = users.len() - rooms.len();
        (Line { sender: "plain appservice", dms: "new", cost, failed }, rooms)
    }

    async fn new_dm(&self, user: &TestUser) -> Option<String> {
        let body = json!({ "preset": "private_chat", "is_direct": true, "invite": [user.user_id] });
        let (_, created) = self.appservice.call(Method::POST, "/createRoom", Some(body)).await;
        let room = created["room_id"].as_str()?.to_owned();
        self.plain_send(&room).await.then_some(room)
    }

    async fn plain_sends(&self, rooms: &[String], n: usize, c: usize) -> Line {
        let work = stream::iter(rooms).map(|room| self.plain_send(room)).buffer_unordered(c);
        let (cost, sent) = self.measure(None, work.filter(|sent| std::future::ready(*sent)).count()).await;
        Line { sender: "plain appservice", dms: "reused", cost, failed: n - sent }
    }

    async fn plain_send(&self, room: &str) -> bool {
        let path = format!(
            "/rooms/{}/send/m.room.message/{}",
            harness::client::encode(room),
            harness::random_secret()
        );
        let content = json!({ "msgtype": "m.text", "body": MESSAGE });
        let (status, _) = self.appservice.call(Method::PUT, &path, Some(content)).await;
        status == 200
    }

    /// One server notice per person, `round` being "first" (new rooms) or "repeat".
    async fn server_notices(&self, users: &[TestUser], c: usize, round: &'static str) -> Line {
        let work = stream::iter(users).map(|user| self.server_notice(user)).buffer_unordered(c);
        let (cost, sent) = self.measure(None, work.filter(|sent| std::future::ready(*sent)).count()).await;
        let dms = if round == "first" { "new" } else { "reused" };
        Line { sender: "server notices", dms, cost, failed: users.len() - sent }
    }

    async fn server_notice(&self, user: &TestUser) -> bool {
        let body = json!({ "user_id": user.user_id, "content": { "msgtype": "m.text", "body": MESSAGE } });
        let (status, _) =
            self.root.call(Method::POST, "/_synapse/admin/v1/send_server_notice", Some(body)).await;
        status == 200
    }

    /// Runs `work`, and what it cost: wall time, CPU of Synapse (and of the bot), and Synapse's
    /// requests and events. CPU counts until Synapse is idle again (work it left for later
    /// belongs to this measurement, not to the next); metrics are scraped outside that window.
    async fn measure<T>(&self, bot: Option<&BotProcess>, work: impl Future<Output = T>) -> (Cost, T) {
        let before = self.scrape().await;
        self.wait_until_synapse_is_idle().await;
        let synapse_cpu = self.synapse_cpu();
        let bot_cpu = bot.map(BotProcess::cpu_seconds);
        let started = Instant::now();
        let output = work.await;
        let seconds = started.elapsed().as_secs_f64();
        self.wait_until_synapse_is_idle().await;
        let synapse_cpu = self.synapse_cpu() - synapse_cpu;
        let bot_cpu = bot.zip(bot_cpu).map(|(bot, before)| bot.cpu_seconds() - before);
        let after = self.scrape().await;
        let cost = Cost {
            seconds,
            synapse_cpu,
            bot_cpu,
            requests: difference(&after.requests, &before.requests),
            events: difference(&after.events, &before.events),
        };
        (cost, output)
    }

    /// Waits (at most 10 s) until Synapse uses at most 5% of a core over 200 ms.
    async fn wait_until_synapse_is_idle(&self) {
        for _ in 0..50 {
            let before = self.synapse_cpu();
            tokio::time::sleep(Duration::from_millis(200)).await;
            if self.synapse_cpu() - before <= 0.01 {
                return;
            }
        }
    }

    fn synapse_cpu(&self) -> f64 {
        cpu_seconds(self.env.synapse.pid().expect("synapse runs"))
    }

    async fn scrape(&self) -> Counters {
        let text = reqwest::get(&self.synapse_metrics)
            .await
            .and_then(|response| response.error_for_status())
            .expect("Synapse's metrics")
            .text()
            .await
            .expect("metrics text");
        Counters {
            requests: counter(&text, "synapse_http_server_requests_received_total", &["method", "servlet"])
                .into_iter()
                .filter(|(request, _)| request != "GET MetricsResource") // the bench's own scrapes
                .collect(),
            events: counter(&text, "synapse_storage_events_persisted_events_sep_total", &["type"]),
        }
    }

    /// People join a space with a default broadcast one after another; from each join to the
    /// bot having sent the welcome (their DMs exist already).
    async fn welcome_latency(&self, users: &[TestUser]) {
        let bot = self.start_bot(8, false).await;
        let space = self.env.space(&self.admin, "bench", &[]).await;
        let space_id = self.admin.resolve_alias(&space).await;
        let command = format!("!bc send {space} --default --yes --name Welcome\nWelcome!");
        self.admin.send_text(&self.control_room, &command).await;
        self.wait_until_finished("Welcome").await;
        let mut latencies = Vec::new();
        for user in users.iter().take(20) {
            let started = Instant::now();
            user.join(&space_id).await;
            self.wait_for_deliveries_to(&user.user_id).await;
            latencies.push(started.elapsed().as_secs_f64());
        }
        bot.stop().await;
        latencies.sort_by(f64::total_cmp);
        println!(
            "\nwelcome after a join (20 joins one after another, reused DMs, C = 8): median {:.2} s, max {:.2} s",
            latencies[latencies.len() / 2],
            latencies[latencies.len() - 1]
        );
    }

    async fn wait_for_deliveries_to(&self, user_id: &str) {
        let sent = || async {
            sqlx::query(
                "SELECT 1 FROM deliveries d JOIN broadcasts b ON b.id = d.broadcast_id
                 WHERE b.name = 'Welcome' AND d.user_id = $1 AND d.state = 'delivered'",
            )
            .bind(user_id)
            .fetch_optional(&self.bot_db)
            .await
            .is_ok_and(|row| row.is_some())
        };
        harness::wait_until("the welcome was sent", harness::DEADLINE, sent).await.expect("welcome sent");
    }
}

/// Synapse settings of the bench, on top of the tests' homeserver.yaml: metrics on a port of
/// their own (the legacy `metrics_port`, simpler than a second listener) and server notices.
fn homeserver_extra(metrics_port: u16) -> String {
    format!(
        "enable_metrics: true\nmetrics_port: {metrics_port}\nserver_notices:\n  system_mxid_localpart: notices\n  \
         system_mxid_display_name: Server notices\n  room_name: Server notices\n"
    )
}

/// The release binary, run as a subprocess so that its CPU time is its own.
struct BotProcess {
    child: Child,
}

impl BotProcess {
    /// Starts `matrix-broadcast run -c config` and waits until it logs that it is ready.
    async fn start(config: &Path, log: &Path) -> BotProcess {
        let output = std::fs::File::create(log).expect("bot log");
        let child = Command::new(bot_binary())
            .args(["run", "-c", config.to_str().expect("utf-8 path")])
            .env("RUST_LOG", "matrix_broadcast=info")
            .stdout(Stdio::null())
            .stderr(output)
            .spawn()
            .expect("start the bot");
        let ready = || async { std::fs::read_to_string(log).is_ok_and(|text| text.contains("ready")) };
        harness::wait_until("the bot is ready", harness::DEADLINE, ready)
            .await
            .unwrap_or_else(|error| panic!("{error}\n{}", std::fs::read_to_string(log).unwrap_or_default()));
        BotProcess { child }
    }

    fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.child.id())
    }

    /// SIGTERM, and waits until it has stopped.
    async fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM the bot");
        tokio::task::spawn_blocking(move || self.child.wait()).await.expect("wait").expect("the bot stops");
    }
}

/// `target/release/matrix-broadcast`, next to this example's directory (`bench/throughput`
/// builds both).
fn bot_binary() -> PathBuf {
    let example = std::env::current_exe().expect("this executable");
    let release = example.parent().and_then(Path::parent).expect("target/release");
    release.join("matrix-broadcast")
}

/// utime + stime of a process (all its threads), in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // After "pid (name) ", field 3 (state) comes first: utime and stime are fields 14 and 15.
    let after_name = &stat[stat.rfind(')').expect("(name)") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| fields[index].parse::<f64>().expect("clock ticks");
    (ticks(11) + ticks(12)) / CLOCK_TICKS_PER_SECOND
}

/// Synapse's counters of interest, by label values.
struct Counters {
    requests: BTreeMap<String, f64>,
    events: BTreeMap<String, f64>,
}

/// The samples of a Prometheus counter `name`, summed by the values of `labels`.
fn counter(metrics: &str, name: &str, labels: &[&str]) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in metrics.lines() {
        let Some((label_text, value)) = line
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('{'))
            .and_then(|rest| rest.rsplit_once("} "))
        else {
            continue;
        };
        let key: Vec<&str> = labels.iter().map(|label| label_value(label_text, label)).collect();
        *samples.entry(key.join(" ")).or_default() += value.parse::<f64>().unwrap_or(0.0);
    }
    samples
}

fn label_value<'a>(labels: &'a str, name: &str) -> &'a str {
    labels
        .split(',')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix("=\"")?.strip_suffix('"'))
        .unwrap_or("")
}

fn difference(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(key, value)| (key.clone(), value - before.get(key).unwrap_or(&0.0)))
        .filter(|(_, delta)| *delta > 0.0)
        .collect()
}

/// What one measurement cost.
struct Cost {
    seconds: f64,
    synapse_cpu: f64,
    bot_cpu: Option<f64>,
    /// Requests Synapse received, by "METHOD servlet".
    requests: BTreeMap<String, f64>,
    /// Events Synapse persisted, by type.
    events: BTreeMap<String, f64>,
}

/// One line of the table: a sender reaching N people with new or reused DMs.
struct Line {
    sender: &'static str,
    dms: &'static str,
    cost: Cost,
    failed: usize,
}

fn print_header() {
    println!(
        "\n{:>5} {:>3}  {:<17} {:<6} {:>7} {:>7} {:>8} {:>8} {:>7} {:>8} {:>7} {:>6}",
        "N",
        "C",
        "sender",
        "DMs",
        "seconds",
        "rcpt/s",
        "bot/this",
        "req/rcpt",
        "ev/rcpt",
        "Syn CPU",
        "bot CPU",
        "failed"
    );
}

impl Line {
    fn rate(&self, n: usize) -> f64 {
        (n - self.failed) as f64 / self.cost.seconds
    }

    /// Prints this line; `bot` is the bot's line it compares with (none for the bot's own).
    fn print(&self, n: usize, c: usize, bot: Option<&Line>) {
        let ratio = bot.map_or("-".into(), |bot| format!("{:.0}%", 100.0 * bot.rate(n) / self.rate(n)));
        let bot_cpu = self.cost.bot_cpu.map_or("-".into(), |cpu| format!("{cpu:.1}"));
        let per_recipient = |counts: &BTreeMap<String, f64>| counts.values().sum::<f64>() / n as f64;
        println!(
            "{n:>5} {c:>3}  {:<17} {:<6} {:>7.1} {:>7.1} {ratio:>8} {:>8.2} {:>7.2} {:>8.1} {bot_cpu:>7} {:>6}",
            self.sender,
            self.dms,
            self.cost.seconds,
            self.rate(n),
            per_recipient(&self.cost.requests),
            per_recipient(&self.cost.events),
            self.cost.synapse_cpu,
            self.failed,
        );
    }
}

/// Which requests and events each sender cost per recipient (entries of at least 0.01).
fn print_breakdown(n: usize, lines: &[Line]) {
    println!("\nper recipient, N = {n}, C = 8:");
    for line in lines {
        let list = |counts: &BTreeMap<String, f64>| {
            let entries: Vec<String> = counts
                .iter()
                .filter(|(_, count)| **count / n as f64 >= 0.01)
                .map(|(key, count)| format!("{:.2} {key}", count / n as f64))
                .collect();
            entries.join(", ")
        };
        println!("  {} {}: requests {}", line.sender, line.dms, list(&line.cost.requests));
        println!(
            "  {:w$}  events {}",
            "",
            list(&line.cost.events),
            w = line.sender.len() + line.dms.len() + 1
        );
    }
}
