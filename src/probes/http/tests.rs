#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap as AxumHeaders, Method as AxumMethod, StatusCode as AxumStatus};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{any, get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::probes::{Check, CheckContext, CheckOutcome, Heartbeats, ProbeError, http_client};
use crate::settings::{ProbeDefaults, ProbeKind, ProbeSettings};

use super::Health;

async fn serve(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// A misbehaving server: each connection gets `handler` after the request head.
async fn raw<F, Fut>(handler: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0_u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                    break;
                }
                head.push(byte[0]);
            }
            tokio::spawn(handler(stream));
        }
    });
    format!("http://{addr}/")
}

fn probe(url: &str) -> ProbeSettings {
    ProbeSettings {
        name: "web".into(),
        kind: Some(ProbeKind::Http),
        url: Some(url.into()),
        timeout: Some(Duration::from_secs(5)),
        ..ProbeSettings::default()
    }
}

fn build(probe: &ProbeSettings) -> Result<Check, ProbeError> {
    let ctx = CheckContext {
        http: http_client().unwrap(),
        heartbeats: Heartbeats::default(),
    };
    Check::build(probe, &ProbeDefaults::default(), &ctx)
}

async fn run(probe: &ProbeSettings) -> CheckOutcome {
    build(probe).unwrap().run().await
}

fn app() -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/down",
            get(|| async { (AxumStatus::SERVICE_UNAVAILABLE, "down") }),
        )
        .route(
            "/hop/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    if n == 0 {
                        "arrived".into_response()
                    } else {
                        // A relative location: resolved against the current URL.
                        Redirect::temporary(&format!("/hop/{}", n - 1)).into_response()
                    }
                },
            ),
        )
        .route("/see-other", any(|| async { Redirect::to("/method") }))
        .route(
            "/method",
            any(|method: AxumMethod| async move { method.to_string() }),
        )
        .route(
            "/auth",
            get(|headers: AxumHeaders| async move {
                headers
                    .get("authorization")
                    .map_or("none".to_owned(), |value| {
                        value.to_str().unwrap().to_owned()
                    })
            }),
        )
        .route("/binary", get(|| async { vec![0xff_u8, 0xfe, b'o', b'k'] }))
        .route(
            "/api-key",
            get(|headers: AxumHeaders| async move {
                // Not the value itself: an echo of a configured header is
                // scrubbed from the recorded body.
                headers.get("x-api-key").map_or("none".to_owned(), |value| {
                    format!("key of {} bytes", value.len())
                })
            }),
        )
        .route(
            "/same-origin",
            get(|| async { Redirect::temporary("/api-key") }),
        )
}

#[tokio::test]
async fn custom_headers_follow_a_redirect_only_within_the_origin() {
    let base = serve(app()).await;
    let mut settings = probe(&format!("{base}/same-origin"));
    settings
        .headers
        .insert("X-Api-Key".into(), "k3y-value".into());
    assert_eq!(
        run(&settings).await.facts.body.as_deref(),
        Some("key of 9 bytes"),
        "a same-origin redirect keeps the configured headers"
    );

    // Another port on the same host is another origin.
    let target = format!("{base}/api-key");
    let hop = serve(Router::new().route(
        "/",
        get(move || {
            let to = target.clone();
            async move { Redirect::temporary(&to) }
        }),
    ))
    .await;
    let mut settings = probe(&format!("{hop}/"));
    settings
        .headers
        .insert("X-Api-Key".into(), "k3y-value".into());
    assert_eq!(run(&settings).await.facts.body.as_deref(), Some("none"));
}

#[tokio::test]
async fn a_2xx_is_healthy_by_default() {
    let base = serve(app()).await;
    let outcome = run(&probe(&format!("{base}/ok"))).await;
    assert_eq!(outcome.verdict, Health::Healthy, "{:?}", outcome.reasons);
    assert_eq!(outcome.facts.status, Some(200));
    assert_eq!(outcome.facts.body.as_deref(), Some("ok"));
    assert_eq!(outcome.facts.cert_expires_in, None);
    assert!(outcome.facts.latency > Duration::ZERO);
}

#[tokio::test]
async fn a_non_2xx_is_unhealthy_by_default() {
    let base = serve(app()).await;
    let outcome = run(&probe(&format!("{base}/down"))).await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(outcome.reasons, vec!["status 503 (expected 2xx)"]);
    assert_eq!(outcome.facts.status, Some(503));
    assert_eq!(outcome.facts.body.as_deref(), Some("down"));
    assert_eq!(
        outcome.facts.error, None,
        "a status is a measurement, not an error"
    );
}

#[tokio::test]
async fn expect_status_is_exact() {
    let base = serve(app()).await;
    let mut settings = probe(&format!("{base}/down"));
    settings.expect_status = Some(503);
    assert_eq!(run(&settings).await.verdict, Health::Healthy);

    settings.expect_status = Some(200);
    let outcome = run(&settings).await;
    assert_eq!(outcome.reasons, vec!["status 503 (expected 200)"]);

    let mut settings = probe(&format!("{base}/ok"));
    settings.expect_status = Some(204);
    assert_eq!(
        run(&settings).await.reasons,
        vec!["status 200 (expected 204)"]
    );
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_limit() {
    let base = serve(app()).await;
    let outcome = run(&probe(&format!("{base}/hop/5"))).await;
    assert_eq!(outcome.verdict, Health::Healthy, "{:?}", outcome.reasons);
    assert_eq!(outcome.facts.body.as_deref(), Some("arrived"));

    let outcome = run(&probe(&format!("{base}/hop/6"))).await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(outcome.reasons, vec!["too many redirects (more than 5)"]);
    assert_eq!(
        outcome.facts.error.as_deref(),
        Some("too many redirects (more than 5)")
    );

    let mut settings = probe(&format!("{base}/hop/2"));
    settings.max_redirects = Some(1);
    assert_eq!(
        run(&settings).await.reasons,
        vec!["too many redirects (more than 1)"]
    );
}

#[tokio::test]
async fn max_redirects_0_returns_the_redirect_itself() {
    let base = serve(app()).await;
    let mut settings = probe(&format!("{base}/hop/1"));
    settings.max_redirects = Some(0);
    let outcome = run(&settings).await;
    assert_eq!(outcome.facts.status, Some(307));
    assert_eq!(outcome.reasons, vec!["status 307 (expected 2xx)"]);

    settings.expect_status = Some(307);
    assert_eq!(run(&settings).await.verdict, Health::Healthy);
}

#[tokio::test]
async fn see_other_turns_a_post_into_a_get() {
    let base = serve(app()).await;
    let mut settings = probe(&format!("{base}/see-other"));
    settings.method = Some("post".into());
    settings.body = Some("payload".into());
    let outcome = run(&settings).await;
    assert_eq!(outcome.verdict, Health::Healthy, "{:?}", outcome.reasons);
    assert_eq!(outcome.facts.body.as_deref(), Some("GET"));

    let outcome = run(&probe(&format!("{base}/method"))).await;
    assert_eq!(outcome.facts.body.as_deref(), Some("GET"));
    let mut settings = probe(&format!("{base}/method"));
    settings.method = Some("PUT".into());
    assert_eq!(run(&settings).await.facts.body.as_deref(), Some("PUT"));
}

#[tokio::test]
async fn headers_are_sent_but_not_to_another_origin() {
    let base = serve(app()).await;
    let mut settings = probe(&format!("{base}/auth"));
    settings
        .headers
        .insert("Authorization".into(), "Bearer t0ken".into());
    // The target echoes the header; a header value is a secret, so the
    // recorded body has it blanked out (which also proves it was sent).
    assert_eq!(run(&settings).await.facts.body.as_deref(), Some("***"));

    // Same server, different origin (localhost vs 127.0.0.1).
    let other = base.replace("127.0.0.1", "localhost");
    let hop = serve(Router::new().route(
        "/",
        get(move || {
            let to = format!("{other}/auth");
            async move { Redirect::temporary(&to) }
        }),
    ))
    .await;
    let mut settings = probe(&format!("{hop}/"));
    settings
        .headers
        .insert("Authorization".into(), "Bearer t0ken".into());
    assert_eq!(run(&settings).await.facts.body.as_deref(), Some("none"));
}

#[tokio::test]
async fn a_hanging_server_times_out_within_the_timeout() {
    let url = raw(|stream| async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(stream);
    })
    .await;
    let mut settings = probe(&url);
    settings.timeout = Some(Duration::from_millis(80));
    let started = Instant::now();
    let outcome = run(&settings).await;
    let took = started.elapsed();
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(outcome.reasons, vec!["timed out after 80ms"]);
    assert_eq!(outcome.facts.error.as_deref(), Some("timed out after 80ms"));
    assert!(took >= Duration::from_millis(80), "took {took:?}");
    assert!(took < Duration::from_millis(580), "took {took:?}");
}

#[tokio::test]
async fn a_huge_declared_body_is_not_read() {
    let url = raw(|mut stream| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n";
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b'a'; 64 * 1024];
        while stream.write_all(&chunk).await.is_ok() {}
    })
    .await;
    let started = Instant::now();
    let outcome = run(&probe(&url)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert!(outcome.facts.body_truncated);
    assert_eq!(
        outcome.reasons,
        vec![
            "response body exceeds max_body_bytes (64.0 KiB); raise max_body_bytes if that is expected"
        ]
    );
}

#[tokio::test]
async fn an_undeclared_large_body_is_cut_while_streaming() {
    let url = raw(|mut stream| async move {
        let head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b'a'; 16 * 1024];
        while stream.write_all(&chunk).await.is_ok() {}
    })
    .await;
    let mut settings = probe(&url);
    settings.max_body_bytes = Some(bytesize::ByteSize::kib(100));
    let started = Instant::now();
    let outcome = run(&settings).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(outcome.facts.body_truncated);
    assert_eq!(
        outcome.facts.body.as_ref().map(String::len),
        Some(100 * 1024)
    );
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert!(
        outcome.reasons[0].contains("max_body_bytes (100.0 KiB)"),
        "{:?}",
        outcome.reasons
    );
}

#[tokio::test]
async fn invalid_utf8_is_unhealthy_with_a_lossy_excerpt() {
    let base = serve(app()).await;
    let outcome = run(&probe(&format!("{base}/binary"))).await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(
        outcome.reasons,
        vec!["response body is not valid UTF-8 (at byte 0)"]
    );
    assert_eq!(outcome.facts.body.as_deref(), Some("\u{fffd}\u{fffd}ok"));
}

#[tokio::test]
async fn a_connection_closed_mid_response_is_unhealthy() {
    let url = raw(|mut stream| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n";
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(&[b'a'; 100]).await;
        let _ = stream.flush().await;
    })
    .await;
    let outcome = run(&probe(&url)).await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(
        outcome.reasons,
        vec!["connection closed mid-response (read 100 of 5000 bytes)"]
    );
    assert_eq!(outcome.facts.status, Some(200));
}

#[tokio::test]
async fn a_connection_closed_before_the_response_is_unhealthy() {
    let url = raw(|stream| async move { drop(stream) }).await;
    let outcome = run(&probe(&url)).await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert!(outcome.facts.error.is_some());
    assert!(
        outcome.reasons[0].starts_with("request failed: "),
        "{:?}",
        outcome.reasons
    );
}

#[tokio::test]
async fn a_refused_connection_is_unhealthy() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let outcome = run(&probe(&format!("http://{addr}/"))).await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(outcome.reasons, vec!["connection refused"]);
    assert_eq!(outcome.facts.status, None);
}

#[tokio::test]
async fn an_unresolvable_host_is_a_dns_error() {
    let outcome = run(&probe("http://no-such-host.invalid/")).await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert!(
        outcome.reasons[0].starts_with("dns error"),
        "{:?}",
        outcome.reasons
    );
}

#[tokio::test]
async fn tls_to_a_plain_http_server_is_a_clear_error() {
    let base = serve(app()).await;
    let outcome = run(&probe(&format!(
        "{}/ok",
        base.replace("http://", "https://")
    )))
    .await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert!(
        outcome.reasons[0].starts_with("TLS: "),
        "{:?}",
        outcome.reasons
    );
}

#[tokio::test]
async fn bad_settings_are_build_errors_naming_the_probe() {
    let mut settings = probe("http://127.0.0.1:1/");
    settings.method = Some("GE T".into());
    let err = build(&settings).err().unwrap();
    assert_eq!(err.to_string(), "probe web: bad method \"GE T\"");

    let mut settings = probe("http://127.0.0.1:1/");
    settings.headers.insert("bad header".into(), "x".into());
    let err = build(&settings).err().unwrap();
    assert_eq!(err.to_string(), "probe web: bad header name \"bad header\"");

    let mut settings = probe("http://127.0.0.1:1/");
    settings.headers.insert("X-Token".into(), "se\ncret".into());
    let err = build(&settings).err().unwrap().to_string();
    assert!(
        err.starts_with("probe web: bad value for header \"X-Token\""),
        "{err}"
    );
    assert!(!err.contains("se\ncret"));

    let err = build(&probe("ftp://example.com/"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("probe web: bad url \"ftp://example.com/\""),
        "{err}"
    );
    let err = build(&probe("not a url")).err().unwrap().to_string();
    assert!(err.starts_with("probe web: bad url"), "{err}");

    let mut settings = probe("http://127.0.0.1:1/");
    settings.url = None;
    let err = build(&settings).err().unwrap().to_string();
    assert_eq!(err, "probe web: url is required for kind http");
}

/// A self-signed P-256 certificate for CN=localhost, notAfter
/// 2027-12-01T01:22:01Z (made with `openssl req -x509 -days 365`).
const SELF_SIGNED: &[u8] = include_bytes!("self_signed.der");
const SELF_SIGNED_NOT_AFTER: i64 = 1_827_624_121;

#[test]
fn the_certificate_expiry_is_read_from_der() {
    let now = SELF_SIGNED_NOT_AFTER - 86_400;
    assert_eq!(
        super::seconds_until_not_after(SELF_SIGNED, now),
        Some(86_400)
    );
    let later = SELF_SIGNED_NOT_AFTER + 10;
    assert_eq!(
        super::seconds_until_not_after(SELF_SIGNED, later),
        Some(-10)
    );
    assert_eq!(
        super::seconds_until_not_after(b"not a certificate", now),
        None
    );
}
