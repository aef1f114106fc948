//! The inbound side: the HTTP API the homeserver calls (`/_matrix/app/v1/…`), plus `/health`
//! and `/metrics`.
//!
//! The transaction handler only authenticates, de-duplicates, parses event by event and
//! persists into the inbox; it knows nothing of broadcasts. Work happens later in `dispatch`.
//! Details of a failure go to the log; the homeserver gets a Matrix error JSON.

mod auth;
mod transactions;

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post, put},
    Json, Router,
};
use serde_json::json;

use crate::App;

pub use transactions::RecentTransactions;

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
pub fn router(app: Arc<App>) -> Router {
    let matrix = Router::new()
        .route("/_matrix/app/v1/transactions/{txn_id}", put(transactions::push))
        .route("/_matrix/app/v1/users/{user_id}", get(query_user))
        .route("/_matrix/app/v1/rooms/{alias}", get(query_room))
        .route("/_matrix/app/v1/ping", post(ping))
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), auth::require_hs_token));
    let mut router = matrix.route("/health", get(health));
    if app.config.metrics.enabled {
        router = router.route("/metrics", get(metrics));
    }
    router
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "Unrecognized request") })
        .with_state(app)
}

/// `GET /_matrix/app/v1/users/{userId}`: the bot exists; nobody else in our namespace does.
async fn query_user(
    State(app): State<Arc<App>>,
    Path(user_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if user_id == app.bot.as_str() {
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

/// `GET /health`: the process is up and its database answers.
async fn health(State(app): State<Arc<App>>) -> Response {
    match app.store.control_rooms().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(error) => {
            tracing::warn!(%error, "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics() -> Response {
    let text = crate::telemetry::metrics_handle().render();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
