//! Setting up the people and broadcasts a test needs: server admins, recipients, `!bc send`
//! commands, broadcasts whose DMs the recipients join, and the deliveries the bot records.

use futures_util::future::join_all;
use serde_json::json;

use super::{TestEnv, TestUser};

/// Makes `user` a Synapse server admin, as `root` (a server admin).
pub async fn make_server_admin(root: &TestUser, user: &str) {
    let path = format!("/_synapse/admin/v2/users/{user}");
    let (status, _) = root.call(reqwest::Method::PUT, &path, Some(json!({ "admin": true }))).await;
    assert_eq!(status, 200);
}

pub async fn recipients(env: &TestEnv, count: usize) -> Vec<TestUser> {
    let mut users = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(25) {
        let names: Vec<String> = chunk.iter().map(|n| format!("person{n:03}")).collect();
        users.extend(join_all(names.iter().map(|name| env.user(name))).await);
    }
    users
}

/// How many deliveries the bot's database (SQLite or PostgreSQL) records as delivered.
pub async fn delivered(env: &TestEnv) -> i64 {
    env.count_in_bot_database("SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'").await
}

pub fn send_command(users: &[TestUser], body: &str) -> String {
    let audience: Vec<&str> = users.iter().map(|user| user.user_id.as_str()).collect();
    format!("!bc send {} --yes --name Crash\n{body}", audience.join(" "))
}

/// Sends broadcast `body` to `users` and returns each user's DM room (they join it, as they
/// would by accepting the invite in their client).
pub async fn broadcast_and_join(
    env: &TestEnv,
    admin: &TestUser,
    root: &TestUser,
    room: &str,
    users: &[&TestUser],
    body: &str,
    count: usize,
) -> Vec<String> {
    let bot = env.bot_id();
    let audience: Vec<&str> = users.iter().map(|user| user.user_id.as_str()).collect();
    let command = admin.send_text(room, &format!("!bc send {} --yes\n{body}", audience.join(" "))).await;
    admin.wait_for_answer(room, &bot, &command).await;
    admin.wait_for_finished_count(room, &bot, count, crate::harness::DEADLINE).await;
    let census = root.dm_census(&bot, &[room]).await;
    let mut dms = Vec::new();
    for user in users {
        let dm = census.iter().find(|dm| dm.others.contains(&user.user_id)).expect("a DM").room_id.clone();
        if user.membership(&dm, &user.user_id).await.as_deref() != Some("join") {
            user.join(&dm).await;
        }
        dms.push(dm);
    }
    dms
}
