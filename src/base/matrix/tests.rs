use super::*;
use crate::base::config::Config;

fn http_error(status: u16, body: &str, retry_after_header: Option<&str>) -> HttpError {
    let mut response = http::Response::builder().status(status);
    if let Some(value) = retry_after_header {
        response = response.header("retry-after", value);
    }
    let response = response.body(body.as_bytes().to_vec()).unwrap();
    let error = <ruma::api::error::Error as ruma::api::EndpointError>::from_http_response(response);
    HttpError::Api(Box::new(ruma::api::error::FromHttpResponseError::Server(
        matrix_sdk::RumaApiError::MatrixError(error),
    )))
}

#[test]
fn transaction_ids_of_answers_derive_from_the_event_without_its_sigil() {
    let event = ruma::event_id!("$abc:x.org");
    assert_eq!(txn_for("answer", event).as_str(), "answer.abc:x.org");
    assert_ne!(txn_for("answer", event), txn_for("reaction", event));
}

#[test]
fn only_invite_only_rooms_that_only_members_read_are_closed() {
    for closed in [(None, None), (Some("invite"), Some("shared")), (Some("private"), Some("joined"))] {
        assert_eq!(how_open(closed.0, closed.1), None, "{closed:?}");
    }
    assert_eq!(how_open(Some("public"), None), Some("public"));
    assert_eq!(how_open(Some("knock"), None), Some("open to knocks"));
    assert_eq!(how_open(Some("knock_restricted"), None), Some("open to knocks"));
    assert_eq!(how_open(Some("restricted"), None), Some("open to the members of other rooms"));
    assert_eq!(how_open(Some("invite"), Some("world_readable")), Some("readable by anyone"));
}

#[test]
fn rate_limit_is_transient_and_keeps_retry_after_ms() {
    let error = MatrixError::from(http_error(
        429,
        r#"{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":1500}"#,
        None,
    ));
    assert!(
        matches!(error, MatrixError::Transient { retry_after: Some(d), .. } if d == Duration::from_millis(1500))
    );
}

#[test]
fn retry_after_header_wins_over_the_body() {
    let error = MatrixError::from(http_error(
        429,
        r#"{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":1500}"#,
        Some("7"),
    ));
    assert!(
        matches!(error, MatrixError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(7))
    );
}

#[test]
fn server_errors_are_an_outage() {
    let error = MatrixError::from(http_error(502, r#"{"errcode":"M_UNKNOWN","error":"bad gateway"}"#, None));
    assert!(matches!(error, MatrixError::Unavailable(_)) && error.is_outage(), "{error:?}");
    let limited = MatrixError::from(http_error(429, r#"{"errcode":"M_LIMIT_EXCEEDED","error":"x"}"#, None));
    assert!(matches!(limited, MatrixError::Transient { .. }) && !limited.is_outage(), "{limited:?}");
}

#[test]
fn forbidden_is_permanent_with_its_errcode() {
    let error =
        MatrixError::from(http_error(403, r#"{"errcode":"M_FORBIDDEN","error":"not invited"}"#, None));
    assert_eq!(error.errcode(), Some("M_FORBIDDEN"));
    assert!(matches!(error, MatrixError::Permanent { status: Some(403), .. }));
}

/// A stub homeserver that answers every request with 500 and counts the requests per path.
async fn failing_homeserver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let record = record.clone();
        async move {
            record.lock().unwrap().push(request.uri().path().to_owned());
            (http::StatusCode::INTERNAL_SERVER_ERROR, r#"{"errcode":"M_UNKNOWN","error":"boom"}"#)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), seen)
}

/// Issue 10, item 10: room creation is not idempotent, so the client never retries it (a slow
/// first try that succeeded plus a retry would invite a recipient twice); the DM's nonce
/// reconciles an unknown outcome instead.
#[tokio::test]
async fn room_creation_is_sent_once_even_when_it_fails() {
    let (url, seen) = failing_homeserver().await;
    let text = format!(
        "homeserver:\n  address: {url}\n  domain: example.org\nappservice:\n  address: http://127.0.0.1:1\n  \
         as_token: a\n  hs_token: b\n"
    );
    let config = Config::parse(&text, std::path::Path::new("stub.yaml")).unwrap();
    let client = MatrixClient::new(&config).await.unwrap();
    let error = client.create_dm(ruma::user_id!("@alice:example.org"), "nonce", false).await.unwrap_err();
    assert!(matches!(error, MatrixError::Unavailable(_)), "{error:?}");
    let creates = seen.lock().unwrap().iter().filter(|path| path.ends_with("/createRoom")).count();
    assert_eq!(creates, 1, "one createRoom request");
    // Other requests keep the client's bounded retries.
    let _ = client.joined_rooms().await;
    let joined = seen.lock().unwrap().iter().filter(|path| path.ends_with("/joined_rooms")).count();
    assert!(joined > 1, "reads are retried: {joined}");
}
