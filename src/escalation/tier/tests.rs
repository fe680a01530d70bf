#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

type Seen = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

async fn server(seen: Seen) -> String {
    let record = move |headers: HeaderMap, body: axum::Json<serde_json::Value>| {
        let seen = seen.clone();
        async move {
            let key = headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            seen.lock().unwrap().push((key, body.0));
            r#"{"status":"fixed","notes":"restarted the pool","patch":{"files":[]}}"#
        }
    };
    let app = Router::new()
        .route("/fixed", post(record))
        .route(
            "/rejected",
            post(|| async { r#"{"status":"rejected","notes":"not mine"}"# }),
        )
        .route(
            "/in_progress",
            post(|| async { r#"{"status":"in_progress"}"# }),
        )
        .route("/unknown", post(|| async { r#"{"status":"maybe"}"# }))
        .route("/bad_json", post(|| async { "<html>oops</html>" }))
        .route(
            "/error",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database down") }),
        )
        .route(
            "/huge",
            post(|| async { "x".repeat(MAX_ANSWER_BYTES + 10) }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                r#"{"status":"fixed"}"#
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

async fn call(base: &str, path: &str, timeout: Duration) -> TierAnswer {
    let context = serde_json::json!({"component": "site", "entries": []});
    call_webhook(
        &crate::settings::SecretUrl::new(format!("{base}{path}")),
        &crate::settings::SecretMap::new(),
        timeout,
        &reqwest::Client::new(),
        "tier:site:agent:1",
        &context,
    )
    .await
}

const SECOND: Duration = Duration::from_secs(5);

#[tokio::test]
async fn fixed_carries_notes_patch_and_the_idempotency_key() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let answer = call(&base, "/fixed", SECOND).await;
    assert_eq!(answer.status, TierStatus::Fixed, "{answer:?}");
    assert_eq!(answer.notes.as_deref(), Some("restarted the pool"));
    assert_eq!(answer.patch, Some(serde_json::json!({"files": []})));
    assert_eq!(answer.http_status, Some(200));
    assert_eq!(answer.error, None);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, "tier:site:agent:1");
    assert_eq!(seen[0].1["component"], "site");
}

#[tokio::test]
async fn rejected_and_in_progress_are_parsed() {
    let base = server(Seen::default()).await;
    let answer = call(&base, "/rejected", SECOND).await;
    assert_eq!(answer.status, TierStatus::Rejected);
    assert_eq!(answer.notes.as_deref(), Some("not mine"));
    let answer = call(&base, "/in_progress", SECOND).await;
    assert_eq!(answer.status, TierStatus::InProgress);
    assert_eq!(answer.notes, None);
}

#[tokio::test]
async fn unusable_answers_fail_with_a_reason() {
    let base = server(Seen::default()).await;
    for (path, status, needle) in [
        ("/unknown", Some(200), "unknown status \"maybe\""),
        ("/bad_json", Some(200), "answer is not valid JSON"),
        ("/error", Some(500), "status 500: database down"),
        ("/huge", Some(200), "answer larger than 1 MiB"),
    ] {
        let answer = call(&base, path, SECOND).await;
        assert_eq!(answer.status, TierStatus::Failed, "{path}");
        assert_eq!(answer.http_status, status, "{path}");
        let error = answer.error.unwrap();
        assert!(error.contains(needle), "{path}: {error}");
    }
}

#[tokio::test]
async fn timeouts_and_refused_connections_fail() {
    let base = server(Seen::default()).await;
    let started = Instant::now();
    let answer = call(&base, "/slow", Duration::from_millis(200)).await;
    assert_eq!(answer.status, TierStatus::Failed);
    assert!(answer.error.unwrap().contains("timed out"));
    assert!(started.elapsed() < Duration::from_secs(5));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let answer = call(&format!("http://{address}"), "/", SECOND).await;
    assert_eq!(answer.status, TierStatus::Failed);
    assert_eq!(answer.http_status, None);
}

#[test]
fn tier_call_and_answer_round_trip() {
    let call = TierCall {
        tier: "agent".to_owned(),
        attempt: 2,
        context: serde_json::json!({"entries": []}),
    };
    let back: TierCall = serde_json::from_value(serde_json::to_value(&call).unwrap()).unwrap();
    assert_eq!(back, call);
    assert_eq!(
        serde_json::to_value(TierStatus::InProgress).unwrap(),
        "in_progress"
    );
}

#[tokio::test]
async fn headers_arrive_and_an_echo_of_them_is_blanked_out() {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let record = seen.clone();
    let app = Router::new().route(
        "/echo",
        post(move |headers: HeaderMap, uri: axum::http::Uri| {
            let record = record.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let key = headers
                    .get("x-tier-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                record.lock().unwrap().push(headers);
                (
                    StatusCode::FORBIDDEN,
                    format!(
                        "{{\"status\":\"rejected\",\"notes\":\"got {auth} and {key} for {}\"}}",
                        uri.query().unwrap_or_default()
                    ),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let headers = crate::settings::SecretMap::from([
        ("Authorization".to_owned(), "Bearer tier-bearer-0123".into()),
        ("X-Tier-Key".to_owned(), "tier-key-4567".into()),
    ]);
    let answer = call_webhook(
        &crate::settings::SecretUrl::new(format!("http://{address}/echo?sig=tier-sig-89ab")),
        &headers,
        SECOND,
        &reqwest::Client::new(),
        "k",
        &serde_json::json!({}),
    )
    .await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0]["authorization"], "Bearer tier-bearer-0123");
    assert_eq!(seen[0]["x-tier-key"], "tier-key-4567");
    assert_eq!(answer.status, TierStatus::Failed);
    let error = answer.error.unwrap();
    for secret in ["tier-bearer-0123", "tier-key-4567", "tier-sig-89ab"] {
        assert!(!error.contains(secret), "{secret} in {error}");
    }
    assert!(error.starts_with("status 403: "), "{error}");
    assert!(error.contains("got *** and *** for ***"), "{error}");
}

#[tokio::test]
async fn a_transport_error_does_not_show_the_url() {
    // Nothing listens on port 9 of loopback.
    let answer = call_webhook(
        &crate::settings::SecretUrl::new(
            "http://user:tier-pass-0123@127.0.0.1:9/t?key=tier-q-4567",
        ),
        &crate::settings::SecretMap::new(),
        SECOND,
        &reqwest::Client::new(),
        "k",
        &serde_json::json!({}),
    )
    .await;
    let error = answer.error.unwrap();
    assert!(
        !error.contains("tier-pass-0123") && !error.contains("tier-q-4567"),
        "{error}"
    );
}

/// A server on its own port (another origin) that answers every request
/// with a 307 to `to`.
async fn redirector(to: String) -> String {
    let app = axum::Router::new().fallback(axum::routing::any(move || {
        let to = to.clone();
        async move { axum::response::Redirect::temporary(&to) }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

#[tokio::test]
async fn a_tier_redirected_to_another_origin_is_not_followed() {
    let seen = Seen::default();
    let base = server(seen.clone()).await;
    let hop = redirector(format!("{base}/fixed")).await;
    let context = serde_json::json!({"component": "site", "entries": []});
    // The client Warden builds (app.rs) is the probes' one.
    let answer = call_webhook(
        &crate::settings::SecretUrl::new(format!("{hop}/")),
        &crate::settings::SecretMap::new(),
        SECOND,
        &crate::probes::http_client().unwrap(),
        "tier:site:agent:1",
        &context,
    )
    .await;
    assert_ne!(answer.status, TierStatus::Fixed, "{answer:?}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "the other origin was called"
    );
}
