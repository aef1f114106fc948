//! Logging (tracing) and metrics (Prometheus) set-up.
//!
//! Metrics are recorded with the `metrics` facade into one process-wide Prometheus recorder,
//! rendered by `GET /metrics` on a listener of their own (`metrics.listen`): the appservice port
//! is reached by the homeserver and often a reverse proxy, and serves only the appservice API.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogFormat, LoggingConfig};

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide metrics recorder, installed on first use.
pub fn metrics_handle() -> &'static PrometheusHandle {
    METRICS.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        handle
    })
}

/// The router of the metrics listener: `GET /metrics` in Prometheus text format.
pub fn metrics_router() -> axum::Router {
    use axum::{http::header::CONTENT_TYPE, routing::get};
    axum::Router::new().route(
        "/metrics",
        get(|| async { ([(CONTENT_TYPE, "text/plain; version=0.0.4")], metrics_handle().render()) }),
    )
}

/// The filter for a `logging.level` (or `RUST_LOG`) value, with matrix-sdk's request errors off
/// unless the value names matrix_sdk.
pub fn log_filter(level: &str) -> EnvFilter {
    let level = if level.contains("matrix_sdk") {
        level.to_owned()
    } else {
        format!("{level},matrix_sdk::http_client=off")
    };
    EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Logs to standard error as configured; `RUST_LOG` overrides `logging.level`.
///
/// matrix-sdk logs every failed request as an error, including the ones the bot expects and
/// handles (a 404 when it checks for its device); the bot logs what matters itself, so those
/// lines are off unless the level names matrix_sdk.
pub fn init_logging(config: &LoggingConfig) {
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| config.level.clone());
    let filter = log_filter(&level);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match config.format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
