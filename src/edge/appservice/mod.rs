//! The inbound side: the HTTP API the homeserver calls (`/_matrix/app/v1/…`), plus `/health`.
//! Metrics have a listener of their own (`telemetry`), never this one.
//!
//! The transaction handler only authenticates, de-duplicates, parses event by event and
//! persists into the inbox; it knows nothing of broadcasts. Work happens later in `dispatch`.
//! Details of a failure go to the log; the homeserver gets a Matrix error JSON.

mod auth;
pub mod server;
pub mod transactions;

use std::sync::Arc;

use ruma::OwnedUserId;
use tokio::sync::Notify;

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post, put},
    Json, Router,
};
use serde_json::json;

use crate::base::{config::Config, e2ee::Crypto, store::Store, telemetry::HomeserverHealth};

use transactions::RecentTransactions;

/// What the HTTP edge needs: where to persist events, whom to wake, and its own settings.
pub struct Intake {
    store: Store,
    bot: OwnedUserId,
    hs_token: String,
    max_body_bytes: usize,
    recent_transactions: RecentTransactions,
    /// Woken when new events are in the inbox.
    inbox_ready: Arc<Notify>,
    /// Whether the homeserver answers, as the bot last saw it (for `/health`).
    homeserver_health: Arc<HomeserverHealth>,
    /// Takes what a transaction brings for the bot's device (end-to-end encryption).
    crypto: Option<Arc<Crypto>>,
    device: ruma::OwnedDeviceId,
    /// When `/health` last asked the database, and whether it answered.
    database_health: tokio::sync::Mutex<Option<(std::time::Instant, bool)>>,
}

impl Intake {
    pub fn new(
        config: &Config,
        bot: OwnedUserId,
        store: Store,
        inbox_ready: Arc<Notify>,
        homeserver_health: Arc<HomeserverHealth>,
        crypto: Option<Arc<Crypto>>,
    ) -> Self {
        Self {
            store,
            bot,
            hs_token: config.appservice.hs_token.clone(),
            max_body_bytes: config.appservice.max_body_bytes,
            recent_transactions: RecentTransactions::default(),
            inbox_ready,
            homeserver_health,
            crypto,
            device: config.appservice.device_id.clone(),
            database_health: Default::default(),
        }
    }
}

/// A Matrix error answer: status code plus `{"errcode", "error"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    errcode: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, errcode: &'static str, message: impl Into<String>) -> Self {
        Self { status, errcode, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "errcode": self.errcode, "error": self.message }))).into_response()
    }
}

/// The router of the bot's HTTP listener.
pub fn router(intake: Arc<Intake>) -> Router {
    let matrix = Router::new()
        .route("/_matrix/app/v1/transactions/{txn_id}", put(transactions::push))
        .route("/_matrix/app/v1/users/{user_id}", get(query_user))
        .route("/_matrix/app/v1/rooms/{alias}", get(query_room))
        .route("/_matrix/app/v1/ping", post(ping))
        .route_layer(axum::middleware::from_fn_with_state(intake.clone(), auth::require_hs_token));
    matrix
        .route("/health", get(health))
        .route("/live", get(live))
        .route("/ready", get(ready))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "Unrecognized request") })
        .with_state(intake)
}

/// `GET /_matrix/app/v1/users/{userId}`: the bot exists; nobody else in our namespace does.
async fn query_user(
    State(intake): State<Arc<Intake>>,
    Path(user_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if user_id == intake.bot.as_str() {
        Ok(Json(json!({})))
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "No such user"))
    }
}

/// `GET /_matrix/app/v1/rooms/{alias}`: the bot provides no room aliases.
async fn query_room(Path(_alias): Path<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "No such room alias")
}

/// `POST /_matrix/app/v1/ping`: the homeserver checks that it can reach the bot.
async fn ping(body: axum::body::Bytes) -> Json<serde_json::Value> {
    let transaction_id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|body| body.get("transaction_id").and_then(|id| id.as_str().map(str::to_owned)));
    tracing::debug!(?transaction_id, "homeserver pinged the bot");
    Json(json!({}))
}

/// How long `/health` waits for the database.
const HEALTH_DATABASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// How long `/health` answers from its last look at the database: any number of hits cost the
/// database one `SELECT 1` per this long.
const HEALTH_DATABASE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// `GET /health`: whether the database and the homeserver answer, each on its own, as JSON
/// without details (`{"status":"ok","database":"ok","homeserver":"unavailable"}`; why is in
/// the log); 503 when either does not. Anyone who reaches the port may ask, so it is cheap: the
/// database's state is at most [`HEALTH_DATABASE_EVERY`] old, the homeserver's is the bot's last
/// look (a probe every few seconds, and the delivery workers' outage detector).
async fn health(State(intake): State<Arc<Intake>>) -> Response {
    let database = database_answers(&intake).await;
    let homeserver = intake.homeserver_health.state().is_ok();
    let word = |up: bool| if up { "ok" } else { "unavailable" };
    let body = json!({
        "status": word(database && homeserver),
        "database": word(database),
        "homeserver": word(homeserver),
    });
    let status = if database && homeserver { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// `GET /live`: 200 while the process serves requests, whatever the database or the homeserver
/// do: for a liveness check (a container's, systemd's), which must not restart the bot while
/// Synapse is being upgraded.
async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: 200 when the database and the homeserver answer, else 503 with a one-word
/// reason (`database` or `homeserver`): for a readiness check or a load balancer. Looks as
/// cheaply as `/health` does.
async fn ready(State(intake): State<Arc<Intake>>) -> Response {
    let reason = if !database_answers(&intake).await {
        Some("database")
    } else if intake.homeserver_health.state().is_err() {
        Some("homeserver")
    } else {
        None
    };
    match reason {
        None => (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response(),
        Some(reason) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "reason": reason })))
                .into_response()
        }
    }
}

/// Whether the database answered `/health`'s last look, taken again when it is older than
/// [`HEALTH_DATABASE_EVERY`] (one look at a time: other hits wait for it).
async fn database_answers(intake: &Intake) -> bool {
    let mut last = intake.database_health.lock().await;
    if let Some((at, answered)) = *last {
        if at.elapsed() < HEALTH_DATABASE_EVERY {
            return answered;
        }
    }
    let answered = match tokio::time::timeout(HEALTH_DATABASE_TIMEOUT, intake.store.ping()).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, "health check: the database does not answer");
            false
        }
        Err(_) => {
            tracing::warn!("health check: the database did not answer within {HEALTH_DATABASE_TIMEOUT:?}");
            false
        }
    };
    *last = Some((std::time::Instant::now(), answered));
    answered
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `GET /health` answers: status code and JSON body.
    async fn answer(intake: &Arc<Intake>) -> (StatusCode, serde_json::Value) {
        read(health(State(intake.clone())).await).await
    }

    /// A response's status code and JSON body.
    async fn read(response: Response) -> (StatusCode, serde_json::Value) {
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 10_000).await.expect("a body");
        (status, serde_json::from_slice(&body).expect("JSON"))
    }

    /// Issue 13: `/health` tells the database from the homeserver, 503 when either is down;
    /// issue 22, item 15: without error texts, and asking the database once per few seconds.
    #[tokio::test]
    async fn health_reports_the_database_and_the_homeserver_each_on_its_own() {
        let (intake, store, homeserver, _dir) = intake().await;
        homeserver.down("connection refused to 10.0.0.7:8008 (internal detail)");
        let (status, body) = answer(&intake).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body, json!({ "status": "unavailable", "database": "ok", "homeserver": "unavailable" }));

        homeserver.up();
        let ok = json!({ "status": "ok", "database": "ok", "homeserver": "ok" });
        assert_eq!(answer(&intake).await, (StatusCode::OK, ok.clone()));

        // Within a few seconds of its last look, a hit does not ask the database again.
        store.close().await;
        assert_eq!(answer(&intake).await, (StatusCode::OK, ok), "answered from the last look");
        *intake.database_health.lock().await = None;
        let (status, body) = answer(&intake).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body, json!({ "status": "unavailable", "database": "unavailable", "homeserver": "ok" }));
    }

    /// Issue 24: `/live` answers 200 whatever the homeserver and the database do; `/ready`
    /// answers 503 with a one-word reason while either is unreachable.
    #[tokio::test]
    async fn live_ignores_what_ready_reports_with_a_one_word_reason() {
        let (intake, store, homeserver, _dir) = intake().await;
        let ready_now = || async { read(ready(State(intake.clone())).await).await };
        assert_eq!(ready_now().await, (StatusCode::OK, json!({ "status": "ready" })));
        homeserver.down("connection refused");
        let unavailable =
            |reason| (StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "unavailable", "reason": reason }));
        assert_eq!(ready_now().await, unavailable("homeserver"));
        assert_eq!(read(live().await.into_response()).await, (StatusCode::OK, json!({ "status": "ok" })));
        homeserver.up();
        store.close().await;
        *intake.database_health.lock().await = None;
        assert_eq!(ready_now().await, unavailable("database"));
        assert_eq!(read(live().await.into_response()).await, (StatusCode::OK, json!({ "status": "ok" })));
    }

    /// An intake on a SQLite store in a temporary directory, with the homeserver up.
    async fn intake() -> (Arc<Intake>, Store, Arc<HomeserverHealth>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let uri = format!("sqlite://{}", dir.path().join("bot.db").display());
        let store = Store::connect(&uri, 2).await.expect("store");
        let homeserver = Arc::new(HomeserverHealth::default());
        let intake = Arc::new(Intake {
            store: store.clone(),
            bot: ruma::owned_user_id!("@broadcast:example.org"),
            hs_token: "hs-token".into(),
            max_body_bytes: 1024,
            recent_transactions: RecentTransactions::default(),
            inbox_ready: Arc::default(),
            homeserver_health: homeserver.clone(),
            crypto: None,
            device: ruma::owned_device_id!("BROADCAST"),
            database_health: Default::default(),
        });
        homeserver.up();
        (intake, store, homeserver, dir)
    }
}
