//! Checks the homeserver's `hs_token` on every `/_matrix/app/v1/…` request, in constant time.
//!
//! Accepted as `Authorization: Bearer <token>` and, for older homeservers, as the legacy
//! `access_token` query parameter. Missing → 401 `M_UNAUTHORIZED`; wrong → 403 `M_FORBIDDEN`.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;

use super::{ApiError, Intake};

/// The token a request carries, header first.
fn presented_token(request: &Request) -> Option<String> {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    header.or_else(|| {
        url::form_urlencoded::parse(request.uri().query()?.as_bytes())
            .find(|(key, _)| key == "access_token")
            .map(|(_, value)| value.into_owned())
    })
}

/// Whether `presented` equals `expected`, without an early exit on the first differing byte.
pub fn token_matches(presented: &str, expected: &str) -> bool {
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// Middleware: lets the request through only with the right `hs_token`.
pub async fn require_hs_token(State(intake): State<Arc<Intake>>, request: Request, next: Next) -> Response {
    match presented_token(&request) {
        None => {
            metrics::counter!("matrix_broadcast_rejected_requests_total", "reason" => "missing_token")
                .increment(1);
            ApiError::new(StatusCode::UNAUTHORIZED, "M_UNAUTHORIZED", "Missing hs_token").into_response()
        }
        Some(token) if !token_matches(&token, &intake.hs_token) => {
            tracing::warn!(path = %request.uri().path(), "request with a wrong hs_token refused");
            metrics::counter!("matrix_broadcast_rejected_requests_total", "reason" => "wrong_token")
                .increment(1);
            ApiError::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", "Bad hs_token").into_response()
        }
        Some(_) => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("ab", "abc"));
        assert!(!token_matches("", "abc"));
    }
}
