//! Whether a process works: `GET /live`, `GET /ready` and `GET /health`, served by the main
//! process on its appservice port and by every process on its metrics listener (a worker's
//! `--listen`), so that a container's or systemd's checks reach each one.
//!
//! Anyone who reaches the port may ask, so a look is cheap and says nothing of why (that is in
//! the log): the database is asked `SELECT 1` at most once per [`DATABASE_EVERY`], the
//! homeserver's state is the process's last look (its probe every few seconds, and the delivery
//! workers' outage detector).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde_json::json;

use crate::base::{store::Store, telemetry::HomeserverHealth};

/// How long a look waits for the database.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the answer of the last look at the database is used: any number of hits cost the
/// database one `SELECT 1` per this long.
const DATABASE_EVERY: Duration = Duration::from_secs(5);

/// What the health endpoints look at.
pub struct Health {
    store: Store,
    homeserver: Arc<HomeserverHealth>,
    /// When the database was last asked, and whether it answered.
    database: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl Health {
    pub fn new(store: Store, homeserver: Arc<HomeserverHealth>) -> Self {
        Self { store, homeserver, database: Default::default() }
    }

    /// Whether the database answered the last look, taken again when it is older than
    /// [`DATABASE_EVERY`] (one look at a time: other hits wait for it).
    async fn database_answers(&self) -> bool {
        let mut last = self.database.lock().await;
        if let Some((at, answered)) = *last {
            if at.elapsed() < DATABASE_EVERY {
                return answered;
            }
        }
        let answered = match tokio::time::timeout(DATABASE_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::warn!(%error, "health check: the database does not answer");
                false
            }
            Err(_) => {
                tracing::warn!("health check: the database did not answer within {DATABASE_TIMEOUT:?}");
                false
            }
        };
        *last = Some((Instant::now(), answered));
        answered
    }

    fn homeserver_answers(&self) -> bool {
        self.homeserver.state().is_ok()
    }
}

/// `/live`, `/ready` and `/health` on `health`.
pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/health", get(health_of_each))
        .route("/live", get(live))
        .route("/ready", get(ready))
        .with_state(health)
}

/// `GET /health`: whether the database and the homeserver answer, each on its own
/// (`{"status":"ok","database":"ok","homeserver":"unavailable"}`); 503 when either does not.
async fn health_of_each(State(health): State<Arc<Health>>) -> Response {
    let database = health.database_answers().await;
    let homeserver = health.homeserver_answers();
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
/// do: for a liveness check, which must not restart the bot while Synapse is being upgraded.
async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: 200 when the database and the homeserver answer, else 503 with a one-word
/// reason (`database` or `homeserver`): for a readiness check or a load balancer.
async fn ready(State(health): State<Arc<Health>>) -> Response {
    let reason = if !health.database_answers().await {
        Some("database")
    } else if !health.homeserver_answers() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What `GET path` answers on `health`: status code and JSON body.
    async fn get(health: &Arc<Health>, path: &str) -> (StatusCode, serde_json::Value) {
        let state = State(health.clone());
        let response = match path {
            "/health" => health_of_each(state).await,
            "/ready" => ready(state).await,
            "/live" => live().await.into_response(),
            _ => panic!("no route {path}"),
        };
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 10_000).await.expect("a body");
        (status, serde_json::from_slice(&body).expect("JSON"))
    }

    /// Issue 13: `/health` tells the database from the homeserver, 503 when either is down;
    /// issue 22, item 15: without error texts, and asking the database once per few seconds.
    #[tokio::test]
    async fn health_reports_the_database_and_the_homeserver_each_on_its_own() {
        let (health, store, homeserver, _dir) = health().await;
        homeserver.down("connection refused to 10.0.0.7:8008 (internal detail)");
        let (status, body) = get(&health, "/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body, json!({ "status": "unavailable", "database": "ok", "homeserver": "unavailable" }));

        homeserver.up();
        let ok = json!({ "status": "ok", "database": "ok", "homeserver": "ok" });
        assert_eq!(get(&health, "/health").await, (StatusCode::OK, ok.clone()));

        // Within a few seconds of its last look, a hit does not ask the database again.
        store.close().await;
        assert_eq!(get(&health, "/health").await, (StatusCode::OK, ok), "answered from the last look");
        *health.database.lock().await = None;
        let (status, body) = get(&health, "/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body, json!({ "status": "unavailable", "database": "unavailable", "homeserver": "ok" }));
    }

    /// Issue 24: `/live` answers 200 whatever the homeserver and the database do; `/ready`
    /// answers 503 with a one-word reason while either is unreachable.
    #[tokio::test]
    async fn live_ignores_what_ready_reports_with_a_one_word_reason() {
        let (health, store, homeserver, _dir) = health().await;
        let live = (StatusCode::OK, json!({ "status": "ok" }));
        assert_eq!(get(&health, "/ready").await, (StatusCode::OK, json!({ "status": "ready" })));
        homeserver.down("connection refused");
        let unavailable =
            |reason| (StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "unavailable", "reason": reason }));
        assert_eq!(get(&health, "/ready").await, unavailable("homeserver"));
        assert_eq!(get(&health, "/live").await, live);
        homeserver.up();
        store.close().await;
        *health.database.lock().await = None;
        assert_eq!(get(&health, "/ready").await, unavailable("database"));
        assert_eq!(get(&health, "/live").await, live);
    }

    /// Health checks on a SQLite store in a temporary directory, with the homeserver up.
    async fn health() -> (Arc<Health>, Store, Arc<HomeserverHealth>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let uri = format!("sqlite://{}", dir.path().join("bot.db").display());
        let store = Store::connect(&uri, 2).await.expect("store");
        let homeserver = Arc::new(HomeserverHealth::default());
        homeserver.up();
        (Arc::new(Health::new(store.clone(), homeserver.clone())), store, homeserver, dir)
    }
}
