//! Logging (tracing) and metrics (Prometheus) set-up.
//!
//! Metrics are recorded with the `metrics` facade into one process-wide Prometheus recorder,
//! rendered by `GET /metrics` on a listener of their own (`metrics.listen`): the appservice port
//! is reached by the homeserver and often a reverse proxy, and serves only the appservice API.
//!
//! Besides the counters recorded where things happen, two gauges say how the process is:
//! `matrix_broadcast_queue_depth{state}` (refreshed every few seconds by the main process) and
//! `matrix_broadcast_homeserver_up` (1 while the homeserver answers), kept by
//! [`HomeserverHealth`], which `/health` reads too.

use std::sync::{Mutex, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{fmt, EnvFilter};

use crate::base::config::{LogFormat, LoggingConfig};

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

/// The outcomes `matrix_broadcast_deliveries_total` counts, shown from 0 so that a rate of
/// retries or failures is there before the first one.
const DELIVERY_OUTCOMES: [&str; 5] = ["delivered", "failed", "retried", "skipped", "paused"];

/// Describes the gauges and counters of this module and shows each delivery outcome from 0.
pub fn register_metrics() {
    metrics_handle();
    metrics::describe_gauge!("matrix_broadcast_queue_depth", "Deliveries of running broadcasts not sent yet");
    metrics::describe_gauge!(
        "matrix_broadcast_homeserver_up",
        "1 while the homeserver answers, 0 while it is down"
    );
    metrics::describe_counter!("matrix_broadcast_deliveries_total", "Tries of deliveries, by outcome");
    for outcome in DELIVERY_OUTCOMES {
        metrics::counter!("matrix_broadcast_deliveries_total", "outcome" => outcome).increment(0);
    }
}

/// Records how many deliveries of running broadcasts wait (`pending`) and are being sent.
pub fn set_queue_depth(pending: i64, sending: i64) {
    metrics::gauge!("matrix_broadcast_queue_depth", "state" => "pending").set(pending as f64);
    metrics::gauge!("matrix_broadcast_queue_depth", "state" => "sending").set(sending as f64);
}

/// Whether the homeserver answers, as this process last saw it: set by the delivery workers'
/// outage detector and by the periodic probe, read by `/health`, shown as
/// `matrix_broadcast_homeserver_up`.
#[derive(Debug, Default)]
pub struct HomeserverHealth {
    /// `None` until the first probe; else whether it answered, or why not.
    last: Mutex<Option<Result<(), String>>>,
}

impl HomeserverHealth {
    /// The homeserver answered.
    pub fn up(&self) {
        self.set(Ok(()));
    }

    /// The homeserver could not be reached, with why.
    pub fn down(&self, error: impl std::fmt::Display) {
        self.set(Err(error.to_string()));
    }

    fn set(&self, state: Result<(), String>) {
        metrics::gauge!("matrix_broadcast_homeserver_up").set(if state.is_ok() { 1.0 } else { 0.0 });
        *self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(state);
    }

    /// What was last seen: `Err` with the reason while it is down or before the first probe.
    pub fn state(&self) -> Result<(), String> {
        let last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        last.unwrap_or_else(|| Err("not checked yet".into()))
    }
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
/// unless the value names matrix_sdk (or a module of it) as a target; the parser's complaint
/// when the value is no filter.
pub fn log_filter(level: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder().parse(level).map_err(|error| error.to_string())?;
    let level = if names_matrix_sdk(level) {
        level.to_owned()
    } else {
        format!("{level},matrix_sdk::http_client=off")
    };
    EnvFilter::builder().parse(level).map_err(|error| error.to_string())
}

/// Whether a directive of `level` is about `matrix_sdk` itself (`matrix_sdk_crypto` is another
/// crate).
fn names_matrix_sdk(level: &str) -> bool {
    level.split(',').any(|directive| {
        let target = directive.split(['=', '[']).next().unwrap_or_default().trim();
        target == "matrix_sdk" || target.starts_with("matrix_sdk::")
    })
}

/// Logs to standard error as configured; `RUST_LOG` overrides `logging.level`.
///
/// matrix-sdk logs every failed request as an error, including the ones the bot expects and
/// handles (a 404 when it checks for its device); the bot logs what matters itself, so those
/// lines are off unless the level names matrix_sdk.
/// An invalid filter is an error that names where it came from, and nothing is logged.
pub fn init_logging(config: &LoggingConfig) -> Result<(), String> {
    let (level, source) = match std::env::var("RUST_LOG") {
        Ok(level) => (level, "RUST_LOG"),
        Err(_) => (config.level.clone(), "logging.level"),
    };
    let filter =
        log_filter(&level).map_err(|error| format!("{source} is no log filter ({level:?}): {error}"))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match config.format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's `RUST_LOG` names `matrix_sdk_crypto`, which must not turn matrix-sdk's
    /// request errors (expected 404s) back on.
    /// Issue 24: an invalid filter is refused, not silently turned into `info`.
    #[test]
    fn an_invalid_filter_is_refused_with_the_reason() {
        assert!(log_filter("matrix_broadcast=debug,warn").is_ok());
        let error = log_filter("matrix_broadcast=loud").unwrap_err();
        assert!(!error.is_empty());
        let config = LoggingConfig { level: "[".into(), ..LoggingConfig::default() };
        if std::env::var_os("RUST_LOG").is_none() {
            let error = init_logging(&config).unwrap_err();
            assert!(error.starts_with("logging.level is no log filter (\"[\")"), "{error}");
        }
    }

    #[test]
    fn only_a_directive_for_matrix_sdk_itself_keeps_its_request_errors() {
        assert!(!names_matrix_sdk("warn,matrix_sdk_crypto::backups=error"));
        assert!(!names_matrix_sdk("info"));
        assert!(names_matrix_sdk("info,matrix_sdk=debug"));
        assert!(names_matrix_sdk("matrix_sdk::http_client=trace"));
    }
}
