//! The HTTP API the homeserver calls, probed directly: authentication, malformed and oversized
//! bodies, repeated transactions. After each abuse the bot must keep working for real users.

use serde_json::json;

use crate::harness::{
    client::answers_to,
    transactions::{help_event, put_transaction},
    wait_for, wait_until, TestEnv, DEADLINE,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_right_status_and_the_bot_keeps_working() {
    let env = TestEnv::start().await;
    let admin = env.user("admin").await;
    let room = env.control_room(&admin).await;
    let hs_token = env.config.appservice.hs_token.clone();
    let batch = || reqwest::Body::from(json!({ "events": [] }).to_string());

    let (status, body) = put_transaction(&env, "t-none", None, batch()).await;
    assert_eq!((status, body["errcode"].as_str()), (401, Some("M_UNAUTHORIZED")));

    let (status, body) = put_transaction(&env, "t-wrong", Some("not-the-token"), batch()).await;
    assert_eq!((status, body["errcode"].as_str()), (403, Some("M_FORBIDDEN")));

    let legacy = reqwest::Client::new()
        .put(format!("{}/_matrix/app/v1/transactions/t-legacy?access_token={hs_token}", env.bot_url))
        .body(batch())
        .send()
        .await
        .expect("legacy request");
    assert_eq!(legacy.status(), 200, "the legacy access_token query parameter is accepted");

    let (status, body) =
        put_transaction(&env, "t-json", Some(&hs_token), reqwest::Body::from("{not json")).await;
    assert_eq!((status, body["errcode"].as_str()), (400, Some("M_NOT_JSON")));

    let oversized = json!({ "events": [{ "padding": "x".repeat(100_000) }] }).to_string();
    let (status, body) =
        put_transaction(&env, "t-big", Some(&hs_token), reqwest::Body::from(oversized)).await;
    assert_eq!((status, body["errcode"].as_str()), (413, Some("M_TOO_LARGE")));

    let user = reqwest::Client::new()
        .get(format!("{}/_matrix/app/v1/users/{}", env.bot_url, env.bot_id()))
        .bearer_auth(&hs_token)
        .send()
        .await
        .expect("user query");
    assert_eq!(user.status(), 200, "the bot user exists");
    let alias = reqwest::Client::new()
        .get(format!("{}/_matrix/app/v1/rooms/%23nothing:test.local", env.bot_url))
        .bearer_auth(&hs_token)
        .send()
        .await
        .expect("alias query");
    assert_eq!(alias.status(), 404);

    // After all that, a real admin still gets an answer.
    let command = admin.send_text(&room, "!bc help").await;
    assert_eq!(admin.wait_for_answer(&room, &env.bot_id(), &command).await.reaction, "✅");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_event_is_skipped_and_the_rest_of_the_batch_processed() {
    let env = TestEnv::start().await;
    let admin = env.user("admin").await;
    let room = env.control_room(&admin).await;
    let hs_token = env.config.appservice.hs_token.clone();

    let batch = json!({ "events": [
        { "type": "m.room.message", "content": { "body": "no id, no room" } },
        "not even an object",
        help_event("$fabricated-good", &room, &admin.user_id),
    ]});
    let (status, _) =
        put_transaction(&env, "t-mixed", Some(&hs_token), reqwest::Body::from(batch.to_string())).await;
    assert_eq!(status, 200);
    let reply = admin.wait_for_reply(&room, &env.bot_id(), "$fabricated-good").await;
    assert!(reply["content"]["body"].as_str().unwrap_or_default().contains("Commands"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_transaction_or_event_is_not_processed_twice() {
    let env = TestEnv::start().await;
    let admin = env.user("admin").await;
    let room = env.control_room(&admin).await;
    let hs_token = env.config.appservice.hs_token.clone();
    let bot = env.bot_id();
    let push = |txn: &'static str, event_id: &'static str| {
        let body = json!({ "events": [help_event(event_id, &room, &admin.user_id)] }).to_string();
        put_transaction(&env, txn, Some(&hs_token), reqwest::Body::from(body))
    };

    assert_eq!(push("t-1", "$first").await.0, 200);
    admin.wait_for_reply(&room, &bot, "$first").await;
    // The same transaction ID again (even with other content) is acknowledged and ignored …
    assert_eq!(push("t-1", "$same-transaction").await.0, 200);
    // … and the same event in a new transaction is ignored too.
    assert_eq!(push("t-2", "$first").await.0, 200);
    // Events are dispatched in order: once the answer to a later command is there, the
    // duplicates above would have been answered already.
    assert_eq!(push("t-3", "$last").await.0, 200);
    admin.wait_for_reply(&room, &bot, "$last").await;

    let events = admin.events(&room).await;
    assert_eq!(answers_to(&events, &bot, "$first").len(), 1, "one answer to the first command");
    assert_eq!(
        answers_to(&events, &bot, "$same-transaction").len(),
        0,
        "the repeated transaction was not processed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_are_served_on_their_own_listeners() {
    let env = TestEnv::start().await;
    let http = reqwest::Client::new();
    // 503 until the bot has seen the homeserver answer (a probe at start-up).
    let health =
        || async { http.get(format!("{}/health", env.bot_url)).send().await.expect("health").status() };
    wait_until("/health is ok", DEADLINE, || async { health().await == 200 }).await.unwrap();
    // A transaction shows up in the counters.
    let admin = env.user("admin").await;
    env.control_room(&admin).await;
    // Issue 10, item 18: the appservice port, which Synapse and proxies reach, has no metrics.
    let on_appservice_port = http.get(format!("{}/metrics", env.bot_url)).send().await.expect("metrics");
    assert_eq!(on_appservice_port.status(), 404, "no /metrics on the appservice port");
    let metrics = wait_for("transaction metrics", || async {
        let text = http.get(env.metrics_url()).send().await.ok()?.text().await.ok()?;
        text.contains("matrix_broadcast_transactions_total{result=\"accepted\"}").then_some(text)
    })
    .await;

    assert!(metrics.contains("matrix_broadcast_events_total"), "{metrics}");
    assert!(metrics.contains("matrix_broadcast_outbound_requests_total{outcome=\"ok\"}"), "{metrics}");
}
