//! The inbound side: the HTTP API the homeserver calls (`/_matrix/app/v1/…`), plus the
//! health endpoints (`super::health`).
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

use super::health::Health;
use crate::base::{config::Config, e2ee::Crypto, store::Store};

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
    /// What `/live`, `/ready` and `/health` look at.
    health: Arc<Health>,
    /// Takes what a transaction brings for the bot's device (end-to-end encryption).
    crypto: Option<Arc<Crypto>>,
    device: ruma::OwnedDeviceId,
}

impl Intake {
    pub fn new(
        config: &Config,
        bot: OwnedUserId,
        store: Store,
        inbox_ready: Arc<Notify>,
        health: Arc<Health>,
        crypto: Option<Arc<Crypto>>,
    ) -> Self {
        Self {
            store,
            bot,
            hs_token: config.appservice.hs_token.clone(),
            max_body_bytes: config.appservice.max_body_bytes,
            recent_transactions: RecentTransactions::default(),
            inbox_ready,
            health,
            crypto,
            device: config.appservice.device_id.clone(),
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
    let health = intake.health.clone();
    matrix
        .with_state(intake)
        .merge(super::health::router(health))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "Unrecognized request") })
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
