//! Database faults in the middle of a broadcast (issue 13): a SQLite file locked longer than the
//! bot waits for it, PostgreSQL connections killed, a PostgreSQL database that turns read-only.
//! Nothing is lost or sent twice; while events cannot be stored the appservice endpoint answers
//! 5xx, so that Synapse pushes them again, and they are handled once the database is back.

use std::time::Duration;

use serde_json::json;
use sqlx::{Connection, Executor};

use crate::harness::{
    bot_config,
    census::assert_exactly_one_copy_each,
    postgres_schema_uri, random_secret,
    scenario::{delivered, recipients, send_command},
    wait_for, wait_until, TestEnv, TestUser, DEADLINE,
};

/// Asks Synapse to push what it holds for the bot now, instead of after its backoff.
async fn ping(env: &TestEnv) {
    let url = format!("{}/_matrix/client/v1/appservice/{}/ping", env.synapse.url, env.config.appservice.id);
    let _ = reqwest::Client::new()
        .post(url)
        .bearer_auth(&env.config.appservice.as_token)
        .json(&json!({ "transaction_id": random_secret() }))
        .send()
        .await;
}

/// Pushes one transaction to the bot as Synapse would; returns the status and the body.
async fn push(env: &TestEnv, room: &str, sender: &str) -> (u16, serde_json::Value) {
    let event = json!({
        "type": "m.room.message", "room_id": room, "sender": sender,
        "event_id": format!("$fault{}", random_secret()), "origin_server_ts": 1,
        "content": { "msgtype": "m.text", "body": "hello" },
    });
    let url = format!("{}/_matrix/app/v1/transactions/fault{}", env.bot_url, random_secret());
    let response = reqwest::Client::new()
        .put(url)
        .bearer_auth(&env.config.appservice.hs_token)
        .json(&json!({ "events": [event] }))
        .send()
        .await
        .expect("push a transaction");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// A control room as `TestEnv::control_room` makes it, pinging Synapse while waiting: under
/// load a slow first push can make Synapse back off for longer than the wait.
async fn control_room(env: &TestEnv, admin: &TestUser) -> String {
    let room = admin.create_room(json!({ "preset": "private_chat" })).await;
    admin.invite(&room, &env.bot_id()).await;
    let bot = env.bot_id();
    wait_until("the bot to take the control room", DEADLINE * 3, || async {
        ping(env).await;
        admin.events(&room).await.iter().any(|event| {
            event["sender"] == bot.as_str()
                && event["content"]["body"]
                    .as_str()
                    .is_some_and(|body| body.contains("This is now a control room"))
        })
    })
    .await
    .expect("the bot took the control room");
    room
}

/// Waits until the bot answered the `!bc status` typed as `event`, pinging Synapse meanwhile.
async fn answered(env: &TestEnv, admin: &TestUser, room: &str, event: &str) {
    let bot = env.bot_id();
    wait_for("the answer to a command typed while the database failed", || async {
        ping(env).await;
        crate::harness::client::answers_to(&admin.events(room).await, &bot, event).into_iter().next()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_locked_longer_than_the_busy_timeout_loses_and_doubles_nothing() {
    if crate::harness::backend() != crate::harness::Backend::Sqlite {
        return;
    }
    let env = TestEnv::start().await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let users = recipients(&env, 60).await;
    let room = env.control_room(&admin).await;
    admin.send_text(&room, &send_command(&users, "Through a locked file")).await;
    wait_for("some deliveries", || async { (delivered(&env).await >= 5).then_some(()) }).await;

    // Another process holds the write lock for longer than the bot's busy timeout (10 s).
    let uri = format!("sqlite://{}", env.bot_db().display());
    let mut locker = sqlx::SqliteConnection::connect(&uri).await.expect("open the bot's database");
    locker.execute("BEGIN EXCLUSIVE").await.expect("take the write lock");
    let status = admin.send_text(&room, "!bc status #1").await;
    let (code, body) = push(&env, &room, &admin.user_id).await;
    assert_eq!(code, 500, "events that cannot be stored are refused, so that they come again: {body}");
    assert_eq!(body["errcode"], "M_UNKNOWN", "{body}");
    tokio::time::sleep(Duration::from_secs(3)).await; // the lock lasts 13 s in all, a fault not a wait
    locker.execute("ROLLBACK").await.expect("release the lock");
    drop(locker);

    answered(&env, &admin, &room, &status).await;
    // Outcomes that could not be recorded during the lock are recorded once it is gone, not
    // resent after their two-minute lease.
    let summary = admin.wait_for_finished_count(&room, &bot, 1, DEADLINE * 2).await.remove(0);
    assert!(summary.contains("60 delivered, 0 failed"), "{summary}");
    assert_exactly_one_copy_each(&root, &bot, &room, &users, "Through a locked file").await;
}

/// The bot on PostgreSQL as a role of its own (whatever the backend of the run), named by
/// `application_name` so that its connections can be killed.
async fn on_postgres(role: &str) -> TestEnv {
    let admin_uri = crate::harness::postgres_uri();
    let schema_uri = postgres_schema_uri();
    let mut connection = sqlx::PgConnection::connect(&admin_uri).await.expect("connect as postgres");
    let schema = schema_uri.rsplit("search_path%3D").next().expect("the schema").to_owned();
    // Everyone may connect to the test database (PUBLIC's default); the schema is the role's.
    for sql in [format!("CREATE ROLE {role} LOGIN"), format!("GRANT ALL ON SCHEMA {schema} TO {role}")] {
        connection.execute(sqlx::AssertSqlSafe(sql)).await.expect("set up the role");
    }
    let uri = schema_uri.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    let uri = format!("{uri}&application_name={role}");
    TestEnv::start_with_config(|synapse_url, bot_port, dir| {
        let mut config = bot_config(synapse_url, bot_port, dir, "");
        config.database.uri = uri;
        config
    })
    .await
}

/// Runs `sql` (with `{role}` in it) as postgres, then kills the role's connections.
async fn as_postgres(role: &str, sqls: &[&str]) {
    let mut connection = sqlx::PgConnection::connect(&crate::harness::postgres_uri()).await.expect("connect");
    for sql in sqls {
        connection.execute(sqlx::AssertSqlSafe(sql.replace("{role}", role))).await.expect("as postgres");
    }
}

/// Stops the bot of `env` and removes its role and what the role owns.
async fn drop_role(env: TestEnv, role: &str) {
    drop(env);
    as_postgres(role, &[KILL, "DROP OWNED BY {role}", "DROP ROLE {role}"]).await;
}

const KILL: &str = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{role}'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_killed_mid_broadcast_lose_and_double_nothing() {
    let role = format!("mbkill_{}", random_secret().to_lowercase());
    let env = on_postgres(&role).await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let users = recipients(&env, 60).await;
    let room = env.control_room(&admin).await;
    admin.send_text(&room, &send_command(&users, "Through killed connections")).await;
    wait_for("some deliveries", || async { (delivered(&env).await >= 5).then_some(()) }).await;
    for _ in 0..40 {
        as_postgres(&role, &[KILL]).await;
        tokio::time::sleep(Duration::from_millis(50)).await; // kill, let it reconnect, kill again
    }
    // Claims and DM intents written as a connection died are taken up again, not left to a
    // two-minute lease or grace period.
    let summary = admin.wait_for_finished_count(&room, &bot, 1, DEADLINE * 2).await.remove(0);
    assert!(summary.contains("60 delivered, 0 failed"), "{summary}");
    assert_exactly_one_copy_each(&root, &bot, &room, &users, "Through killed connections").await;
    drop_role(env, &role).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_stops_intake_with_5xx_and_nothing_is_lost_when_it_is_back() {
    let role = format!("mbro_{}", random_secret().to_lowercase());
    let env = on_postgres(&role).await;
    let admin = env.user("admin").await;
    let room = control_room(&env, &admin).await;
    as_postgres(&role, &["ALTER ROLE {role} SET default_transaction_read_only = on", KILL]).await;

    let status = admin.send_text(&room, "!bc status #1").await;
    let (code, body) = push(&env, &room, &admin.user_id).await;
    assert_eq!(code, 500, "{body}");
    assert_eq!(body["error"], "Temporarily unable to store events", "{body}");
    assert!(crate::harness::client::answers_to(&admin.events(&room).await, &env.bot_id(), &status).is_empty());

    as_postgres(&role, &["ALTER ROLE {role} RESET default_transaction_read_only", KILL]).await;
    answered(&env, &admin, &room, &status).await;
    let (code, body) = push(&env, &room, &admin.user_id).await;
    assert_eq!(code, 200, "intake works again: {body}");
    drop_role(env, &role).await;
}
