//! `bench/stub`: the bot's own cost, with the homeserver taken out of the picture. A stub
//! homeserver (in this process) answers every request at once and counts them; the bot's release
//! binary runs against it as a subprocess and is driven the way Synapse drives it, through
//! appservice transactions: an admin invites it into a control room, then types
//! `!bc send #members:bench.local --yes` twice (new DMs, then the same people's reused DMs), and
//! `!bc audience` for a 10,000-member space and a 10,000-account `server`.
//!
//! Measured per run: deliveries per second, time per 1,000 recipients (linear or not), CPU
//! seconds and peak memory of the bot, time from the command to the first message sent, and
//! requests per recipient by endpoint.
//!
//! ```text
//! cargo run --release --locked --example stub_bench -- [--quick] [--sizes 1000,10000]
//!     [--backends sqlite,postgres] [--processes 1,3] [--budget SECONDS]
//! ```
//! `--processes 1,3` runs each PostgreSQL size once with the main process alone and once with
//! two `matrix-broadcast worker`s beside it (SQLite: one process only), in the same run.
//! `--quick` is N = 1,000 only. Sizes are run in turn on each backend; one predicted (from the
//! last size measured) to end after `--budget` seconds of measuring (default 360, not counting
//! the build of the bot's release binary; 0: no limit)
//! is skipped and named at the end. PostgreSQL: 127.0.0.1:5432 as postgres (or `PGHOST`/
//! `PGPORT`/`PGUSER`), a throwaway database per run, dropped at its end.

#[path = "stub_bench/bot.rs"]
mod bot;
#[path = "stub_bench/database.rs"]
mod database;
#[path = "stub_bench/report.rs"]
mod report;
#[path = "stub_bench/stub.rs"]
mod stub;
#[path = "stub_bench/world.rs"]
mod world;

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use bot::{invite_event, message_event, Bot, BotSetup};
use database::{Backend, Database};
use rand::{distributions::Alphanumeric, Rng};
use report::{Resolution, Round};
use stub::{Stub, StubConfig};
use world::{person, World};

const DOMAIN: &str = "bench.local";
const ADMIN: &str = "@admin:bench.local";
const BOT: &str = "@broadcast:bench.local";
const CONTROL_ROOM: &str = "!control:bench.local";
const MEMBERS_ROOM: &str = "!members:bench.local";
const MEMBERS_ALIAS: &str = "#members:bench.local";
const SPACE: &str = "!space:bench.local";
const SPACE_ALIAS: &str = "#space:bench.local";
/// The size of the space and of the `server` audience whose resolution is timed.
const RESOLVED: usize = 10_000;

/// What to run.
struct Options {
    sizes: Vec<usize>,
    backends: Vec<Backend>,
    /// Bot process counts to run on PostgreSQL (the main one plus workers).
    processes: Vec<usize>,
    /// Sizes predicted to end after this many seconds of the bench are skipped (0: none are).
    budget_seconds: f64,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().skip_while(|arg| *arg != flag).nth(1).cloned();
    let quick = args.iter().any(|arg| arg == "--quick");
    let default_sizes = if quick { "1000" } else { "1000,10000,100000" };
    let sizes = value("--sizes").unwrap_or_else(|| default_sizes.into());
    let sizes = sizes.split(',').map(|size| size.trim().parse().expect("--sizes: numbers")).collect();
    let backends = value("--backends").unwrap_or_else(|| "sqlite,postgres".into());
    let backends = backends
        .split(',')
        .map(|name| match name.trim() {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => panic!("--backends: {other} is neither sqlite nor postgres"),
        })
        .collect();
    let budget_seconds = value("--budget").map_or(360.0, |budget| budget.parse().expect("--budget: seconds"));
    let processes = value("--processes").unwrap_or_else(|| "1".into());
    let processes =
        processes.split(',').map(|count| count.trim().parse().expect("--processes: numbers")).collect();
    Options { sizes, backends, processes, budget_seconds }
}

#[tokio::main]
async fn main() {
    let options = options();
    let building = Instant::now();
    let binary = bot::release_binary();
    eprintln!(
        "release binary ready after {:.0} s; the --budget counts from now",
        building.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let mut backends = options.backends.clone();
    if backends.contains(&Backend::Postgres) && !Database::postgres_available() {
        eprintln!("PostgreSQL does not answer on PGHOST/PGPORT (default 127.0.0.1:5432): skipped");
        backends.retain(|backend| *backend != Backend::Postgres);
    }
    let (mut rounds, mut resolutions, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    let runs = backends.iter().flat_map(|&backend| {
        let processes = match backend {
            Backend::Sqlite => vec![1],
            Backend::Postgres => options.processes.clone(),
        };
        processes.into_iter().map(move |processes| (backend, processes))
    });
    let runs: Vec<(Backend, usize)> = runs.collect();
    for &n in &options.sizes {
        for &(backend, processes) in &runs {
            let predicted = predicted_seconds(&rounds, backend, n);
            let left = options.budget_seconds - started.elapsed().as_secs_f64();
            if options.budget_seconds > 0.0 && predicted.is_some_and(|predicted| predicted > left) {
                skipped.push(format!(
                    "{} N={}: would take about {:.0} s, {:.0} s of the --budget are left",
                    backend.name(),
                    n,
                    predicted.unwrap_or_default(),
                    left.max(0.0)
                ));
                continue;
            }
            // The resolution timings once per backend, with the first size and one process.
            let resolve = n == options.sizes[0] && processes == 1;
            match run(&binary, backend, processes, n, resolve).await {
                Ok((more_rounds, more_resolutions)) => {
                    rounds.extend(more_rounds);
                    resolutions.extend(more_resolutions);
                }
                Err(error) => eprintln!("{} N={n}: {error}", backend.name()),
            }
        }
    }
    report::print(&rounds, &resolutions, started.elapsed());
    for skip in skipped {
        println!("skipped {skip} (give --budget 0 or --sizes to run it)");
    }
}

/// How long a run of `n` on `backend` will take, from the last one measured there.
fn predicted_seconds(rounds: &[Round], backend: Backend, n: usize) -> Option<f64> {
    let last = rounds.iter().rev().filter(|round| round.backend == backend).take(2);
    let per_recipient = last.map(|round| round.to_summary / round.n as f64).sum::<f64>();
    (per_recipient > 0.0).then_some(per_recipient * n as f64 + 10.0)
}

fn random_token() -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect()
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("local address").port()
}

/// The homeserver's state at the start of a run: the control room the admin will invite the
/// bot into, a room of `n` people (the broadcast's audience) and a space of [`RESOLVED`] people,
/// both with the bot in them, and accounts on the server for all of them (the larger number).
fn world_for(n: usize) -> World {
    let mut world = World::default();
    world.server_accounts = n.max(RESOLVED);
    world.add_room(CONTROL_ROOM, ADMIN, [ADMIN.to_owned()]);
    let control = world.rooms.get_mut(CONTROL_ROOM).expect("just added");
    control.watched = true;
    control.set_membership(BOT, world::Membership::Invite);
    let people = |count: usize| std::iter::once(BOT.to_owned()).chain((0..count).map(|i| person(i, DOMAIN)));
    world.add_room(MEMBERS_ROOM, ADMIN, people(n));
    world.add_room(SPACE, ADMIN, people(RESOLVED));
    world.rooms.get_mut(SPACE).expect("just added").is_space = true;
    world.aliases.insert(MEMBERS_ALIAS.into(), MEMBERS_ROOM.into());
    world.aliases.insert(SPACE_ALIAS.into(), SPACE.into());
    world
}

/// The bot (`processes`: the main process and workers) on a fresh database and a fresh stub,
/// for an audience of `n`: two broadcasts (new DMs, reused DMs) and, with `resolve`, the
/// audience resolution timings.
async fn run(
    binary: &std::path::Path,
    backend: Backend,
    processes: usize,
    n: usize,
    resolve: bool,
) -> Result<(Vec<Round>, Vec<Resolution>), String> {
    let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let database = Database::create(backend, dir.path(), &n.to_string())?;
    let (as_token, hs_token, port) = (random_token(), random_token(), free_port());
    let config = StubConfig {
        domain: DOMAIN.into(),
        as_token: as_token.clone(),
        hs_token: hs_token.clone(),
        appservice_id: "broadcast".into(),
        bot: BOT.into(),
        bot_url: format!("http://127.0.0.1:{port}"),
    };
    let stub = Stub::new(config, world_for(n));
    let homeserver_url = stub.serve().await;
    let setup = BotSetup {
        binary,
        dir: dir.path(),
        homeserver_url: &homeserver_url,
        domain: DOMAIN,
        port,
        as_token: &as_token,
        hs_token: &hs_token,
        admin: ADMIN,
        database_uri: &database.uri,
        workers: processes - 1,
    };
    let mut bot = Bot::start(&setup);
    let result = drive(&stub, &mut bot, &database, processes, n, resolve).await;
    let bot_log = bot.log.clone();
    if result.is_err() {
        let log = std::fs::read_to_string(&bot.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
        eprintln!("the bot's log ({}) ends:\n{}", bot.log.display(), tail.join("\n"));
    }
    bot.stop();
    keep_log(&bot_log, backend, n);
    stub.stop();
    database.drop_now();
    result
}

/// With `STUB_BENCH_BOT_LOG` set (the bot's `RUST_LOG`, e.g. `warn,sqlx::query=debug` for the
/// time of each statement), the bot's log is kept as `stub_bench-<backend>-<n>.log` in the
/// current directory, to be read after the run.
fn keep_log(log: &std::path::Path, backend: Backend, n: usize) {
    if std::env::var_os("STUB_BENCH_BOT_LOG").is_none() {
        return;
    }
    let kept = format!("stub_bench-{}-{n}.log", backend.name());
    match std::fs::copy(log, &kept) {
        Ok(_) => eprintln!("the bot's log is kept as {kept}"),
        Err(error) => eprintln!("warning: cannot keep the bot's log as {kept}: {error}"),
    }
}

/// Everything one run does with its bot.
async fn drive(
    stub: &Arc<Stub>,
    bot: &mut Bot,
    database: &Database,
    processes: usize,
    n: usize,
    resolve: bool,
) -> Result<(Vec<Round>, Vec<Resolution>), String> {
    let ping = "POST /_matrix/client/v1/appservice/{id}/ping";
    wait_until("the bot pings the homeserver (start-up done)", Duration::from_secs(60), bot, || {
        stub.counts().contains_key(ping)
    })
    .await?;
    let since = Instant::now();
    bot.push(vec![invite_event(CONTROL_ROOM, ADMIN, BOT)]).await;
    wait_for_post(stub, bot, since, "now a control room", Duration::from_secs(30)).await?;
    let mut rounds = Vec::new();
    for (number, reused) in [(1, false), (2, true)] {
        let round = Round { processes, ..broadcast(stub, bot, database, n, number, reused).await? };
        eprintln!("{}", report::progress_line(&round));
        rounds.push(round);
    }
    let mut resolutions = Vec::new();
    if resolve {
        let server = format!("server, {} accounts", report::thousands(n.max(RESOLVED)));
        for (audience, label) in [(SPACE_ALIAS, "space of 10,000"), ("server", server.as_str())] {
            resolutions.push(resolution(stub, bot, database.backend, audience, label).await?);
        }
    }
    Ok((rounds, resolutions))
}

/// Polls `done` every 10 ms until it holds; an error after `timeout` or when the bot died.
async fn wait_until(
    what: &str,
    timeout: Duration,
    bot: &mut Bot,
    mut done: impl FnMut() -> bool,
) -> Result<(), String> {
    let until = Instant::now() + timeout;
    while !done() {
        if bot.exited() {
            return Err(format!("the bot exited while waiting until {what}"));
        }
        if Instant::now() > until {
            return Err(format!("timed out after {timeout:?} waiting until {what}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Waits for the bot to post, after `since`, a text in the control room containing `needle`;
/// returns when and what.
async fn wait_for_post(
    stub: &Stub,
    bot: &mut Bot,
    since: Instant,
    needle: &str,
    timeout: Duration,
) -> Result<(Instant, String), String> {
    let find = || {
        let world = stub.world();
        let posted = world.watched.iter().find(|post| post.at >= since && post.text.contains(needle));
        posted.map(|post| (post.at, post.text.clone()))
    };
    wait_until(&format!("the bot posts «{needle}»"), timeout, bot, || find().is_some()).await?;
    Ok(find().expect("just found"))
}

/// What each endpoint was asked between two snapshots of the counts.
fn counted_since(before: &BTreeMap<String, u64>, after: BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .into_iter()
        .map(|(label, count)| (label.clone(), count - before.get(&label).copied().unwrap_or(0)))
        .filter(|(_, count)| *count > 0)
        .collect()
}

/// One broadcast to the `n` members of the audience room, until its summary.
async fn broadcast(
    stub: &Stub,
    bot: &mut Bot,
    database: &Database,
    n: usize,
    number: usize,
    reused: bool,
) -> Result<Round, String> {
    let name = format!("Round{number}");
    let command =
        format!("!bc send {MEMBERS_ALIAS} --yes --name {name}\nHello from the stub bench, round {number}.");
    stub.world().dm_sends = Default::default();
    let (counts_before, cpu_before, db_cpu_before) =
        (stub.counts(), bot.cpu_seconds(), database.server_cpu_seconds());
    let started = Instant::now();
    bot.push(vec![message_event(CONTROL_ROOM, ADMIN, &command)]).await;
    let timeout = Duration::from_secs(60) + Duration::from_millis(10 * n as u64);
    let needle = format!("«{name}» #{number} finished");
    let (summary_at, summary) = wait_for_post(stub, bot, started, &needle, timeout).await?;
    let (sends, largest_direct) = {
        let world = stub.world();
        (world.dm_sends, world.largest_direct)
    };
    let since_start = |at: Option<Instant>| at.map(|at| at.duration_since(started).as_secs_f64());
    let db_cpu_after = database.server_cpu_seconds();
    Ok(Round {
        backend: database.backend,
        processes: 1,
        n,
        reused,
        to_last_send: since_start(sends.last).unwrap_or(f64::NAN),
        to_summary: summary_at.duration_since(started).as_secs_f64(),
        to_first_send: since_start(sends.first),
        sent: sends.count,
        cpu_seconds: bot.cpu_seconds() - cpu_before,
        db_cpu_seconds: db_cpu_after.zip(db_cpu_before).map(|(after, before)| after - before),
        peak_rss_mib: bot.peak_rss_mib(),
        requests: counted_since(&counts_before, stub.counts()),
        largest_direct,
        summary,
    })
}

/// `!bc audience <audience>`: how long until the bot answers with the count.
async fn resolution(
    stub: &Stub,
    bot: &mut Bot,
    backend: Backend,
    audience: &str,
    label: &str,
) -> Result<Resolution, String> {
    let counts_before = stub.counts();
    let started = Instant::now();
    bot.push(vec![message_event(CONTROL_ROOM, ADMIN, &format!("!bc audience {audience}"))]).await;
    let (answered_at, answer) =
        wait_for_post(stub, bot, started, "Dry run", Duration::from_secs(300)).await?;
    Ok(Resolution {
        backend,
        audience: label.into(),
        seconds: answered_at.duration_since(started).as_secs_f64(),
        answer,
        requests: counted_since(&counts_before, stub.counts()),
    })
}
