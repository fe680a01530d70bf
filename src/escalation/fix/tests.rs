#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;

struct Hook {
    calls: AtomicU32,
    answer: Result<String, RestartFailed>,
}

impl RestartHook for Hook {
    fn restart(&self) -> Pin<Box<dyn Future<Output = Result<String, RestartFailed>> + Send + '_>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = self.answer.clone();
        Box::pin(async move { answer })
    }
}

fn hook() -> Hook {
    Hook {
        calls: AtomicU32::new(0),
        answer: Ok("restarted pid 42".to_owned()),
    }
}

fn command(argv: &[&str], timeout: Option<Duration>) -> FixActionSettings {
    FixActionSettings {
        kind: Some(FixKind::Command),
        command: argv.iter().map(|s| (*s).to_owned()).collect(),
        timeout,
        ..FixActionSettings::default()
    }
}

#[tokio::test]
async fn command_exit_zero_is_ok_and_keeps_stdout_then_stderr() {
    let action = command(&["sh", "-c", "echo out; echo err >&2"], None);
    let outcome = run_fix(&action, &reqwest::Client::new(), &hook()).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.output_excerpt, "out\nerr\n");
    assert_eq!(outcome.error, None);
}

#[tokio::test]
async fn command_nonzero_exit_fails_with_the_code() {
    let action = command(&["sh", "-c", "echo broken >&2; exit 3"], None);
    let outcome = run_fix(&action, &reqwest::Client::new(), &hook()).await;
    assert!(!outcome.ok);
    assert_eq!(outcome.error.as_deref(), Some("exited with 3"));
    assert!(outcome.output_excerpt.contains("broken"));
}

#[tokio::test]
async fn command_not_found_is_an_outcome() {
    let action = command(&["/nonexistent/warden-fix"], None);
    let outcome = run_fix(&action, &reqwest::Client::new(), &hook()).await;
    assert!(!outcome.ok);
    assert!(outcome.error.unwrap().contains("cannot run"));
}

#[tokio::test]
async fn command_timeout_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("survived");
    // A grandchild that would write the marker if it outlived the group kill.
    let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
    let action = command(&["sh", "-c", &script], Some(Duration::from_millis(200)));
    let started = Instant::now();
    let outcome = run_fix(&action, &reqwest::Client::new(), &hook()).await;
    assert!(!outcome.ok);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        outcome
            .error
            .as_deref()
            .unwrap()
            .contains("process group killed"),
        "{outcome:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!marker.exists(), "a grandchild survived the timeout");
}

#[tokio::test]
async fn command_output_excerpt_is_bounded() {
    let action = command(&["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"], None);
    let outcome = run_fix(&action, &reqwest::Client::new(), &hook()).await;
    assert!(outcome.ok);
    assert_eq!(outcome.output_excerpt.len(), MAX_EXCERPT);
}

#[tokio::test]
async fn restart_uses_the_hook() {
    let action = FixActionSettings {
        kind: Some(FixKind::Restart),
        ..FixActionSettings::default()
    };
    let ok = hook();
    let outcome = run_fix(&action, &reqwest::Client::new(), &ok).await;
    assert!(outcome.ok);
    assert_eq!(outcome.output_excerpt, "restarted pid 42");
    assert_eq!(ok.calls.load(Ordering::SeqCst), 1);

    let failing = Hook {
        calls: AtomicU32::new(0),
        answer: Err(RestartFailed::NotRunning("api".to_owned())),
    };
    let outcome = run_fix(&action, &reqwest::Client::new(), &failing).await;
    assert!(!outcome.ok);
    assert_eq!(
        outcome.error.as_deref(),
        Some("managed process api is not running")
    );
}

#[tokio::test]
async fn missing_kind_is_a_failed_outcome() {
    let outcome = run_fix(
        &FixActionSettings::default(),
        &reqwest::Client::new(),
        &hook(),
    )
    .await;
    assert!(!outcome.ok);
}

async fn server(seen: Arc<std::sync::Mutex<Vec<(String, String, String)>>>) -> String {
    let app = Router::new()
        .route(
            "/ok",
            any(
                move |method: axum::http::Method, headers: HeaderMap, body: String| {
                    let seen = seen.clone();
                    async move {
                        let token = headers
                            .get("x-token")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        seen.lock().unwrap().push((method.to_string(), token, body));
                        (StatusCode::ACCEPTED, "restarting")
                    }
                },
            ),
        )
        .route(
            "/fail",
            any(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/slow",
            any(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

fn http(url: String) -> FixActionSettings {
    FixActionSettings {
        kind: Some(FixKind::Http),
        url: Some(url),
        ..FixActionSettings::default()
    }
}

#[tokio::test]
async fn http_2xx_is_ok_and_sends_method_headers_and_body() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let base = server(seen.clone()).await;
    let client = reqwest::Client::new();

    let outcome = run_fix(&http(format!("{base}/ok")), &client, &hook()).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.output_excerpt, "202 Accepted\nrestarting");

    let action = FixActionSettings {
        method: Some("PUT".to_owned()),
        headers: BTreeMap::from([("x-token".to_owned(), "t0k".into())]),
        body: Some("{\"restart\":true}".to_owned()),
        ..http(format!("{base}/ok"))
    };
    assert!(run_fix(&action, &client, &hook()).await.ok);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0], ("POST".to_owned(), String::new(), String::new()));
    assert_eq!(
        seen[1],
        (
            "PUT".to_owned(),
            "t0k".to_owned(),
            "{\"restart\":true}".to_owned()
        )
    );
}

#[tokio::test]
async fn http_non_2xx_and_timeouts_fail() {
    let base = server(Arc::default()).await;
    let client = reqwest::Client::new();
    let outcome = run_fix(&http(format!("{base}/fail")), &client, &hook()).await;
    assert!(!outcome.ok);
    assert_eq!(outcome.error.as_deref(), Some("status 500"));
    assert!(outcome.output_excerpt.contains("boom"));

    let action = FixActionSettings {
        timeout: Some(Duration::from_millis(200)),
        ..http(format!("{base}/slow"))
    };
    let started = Instant::now();
    let outcome = run_fix(&action, &client, &hook()).await;
    assert!(!outcome.ok);
    assert!(outcome.error.unwrap().contains("timed out"));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn http_connection_refused_is_an_outcome() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let outcome = run_fix(
        &http(format!("http://{address}/")),
        &reqwest::Client::new(),
        &hook(),
    )
    .await;
    assert!(!outcome.ok);
    assert!(outcome.error.is_some());
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
async fn http_headers_never_follow_a_redirect_to_another_origin() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let base = server(seen.clone()).await;
    let hop = redirector(format!("{base}/ok")).await;
    let action = FixActionSettings {
        headers: BTreeMap::from([("x-token".to_owned(), "t0k".into())]),
        ..http(format!("{hop}/"))
    };
    // The client Warden builds (app.rs) is the probes' one.
    let client = crate::probes::http_client().unwrap();
    let outcome = run_fix(&action, &client, &hook()).await;
    assert!(!outcome.ok, "{outcome:?}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "the other origin was called"
    );
}
