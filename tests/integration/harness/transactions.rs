//! Pushing appservice transactions to the bot's HTTP endpoint directly, as Synapse would: events
//! with IDs of our choosing, and the status and answer the bot gives.

use serde_json::{json, Value};

use super::TestEnv;

/// A text message event as Synapse would push it, with an ID of our choosing.
pub fn text_event(event_id: &str, room: &str, sender: &str, body: &str) -> Value {
    json!({
        "event_id": event_id,
        "type": "m.room.message",
        "room_id": room,
        "sender": sender,
        "origin_server_ts": 1,
        "content": { "msgtype": "m.text", "body": body }
    })
}

/// A `!bc help` message event as Synapse would push it, with an ID of our choosing.
pub fn help_event(event_id: &str, room: &str, sender: &str) -> Value {
    text_event(event_id, room, sender, "!bc help")
}

/// Pushes `body` as transaction `txn` (with `token` as the hs_token); the status and JSON answer.
pub async fn put_transaction(
    env: &TestEnv,
    txn: &str,
    token: Option<&str>,
    body: reqwest::Body,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .put(format!("{}/_matrix/app/v1/transactions/{txn}", env.bot_url))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request to the bot");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}
