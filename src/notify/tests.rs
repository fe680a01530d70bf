#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use tokio::time::Instant;

use super::retry::{RetryPolicy, retry_after};
use super::*;

/// What the test server answers, in order; 200 once the script runs out.
#[derive(Clone, Copy)]
enum Reply {
    Status(u16),
    RetryAfter(&'static str),
    Hang,
}

struct Hit {
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Receiver {
    fn hits(&self) -> usize {
        self.hits.lock().unwrap().len()
    }

    fn body(&self, index: usize) -> serde_json::Value {
        serde_json::from_slice(&self.hits.lock().unwrap()[index].body).unwrap()
    }

    fn header(&self, index: usize, name: &str) -> Option<String> {
        self.hits.lock().unwrap()[index]
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

async fn answer(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    receiver.hits.lock().unwrap().push(Hit {
        headers,
        body,
        at: Instant::now(),
    });
    let reply = receiver.script.lock().unwrap().pop_front();
    match reply {
        None => StatusCode::OK.into_response(),
        Some(Reply::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
        Some(Reply::RetryAfter(after)) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, after)],
        )
            .into_response(),
        Some(Reply::Hang) => std::future::pending().await,
    }
}

/// A receiver on `127.0.0.1:0` answering `script`; returns it and its URL.
async fn receiver(script: &[Reply]) -> (Receiver, String) {
    let receiver = Receiver::default();
    receiver
        .script
        .lock()
        .unwrap()
        .extend(script.iter().copied());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(answer))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, format!("http://{addr}/hook"))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

fn settings(name: &str, kind: NotifierKind, url: Option<&str>) -> NotifierSettings {
    NotifierSettings {
        name: name.to_owned(),
        kind: Some(kind),
        url: url.map(Into::into),
        timeout: Duration::from_secs(2),
        retries: 3,
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        ..NotifierSettings::default()
    }
}

fn one(settings: NotifierSettings) -> Notifiers {
    Notifiers::from_settings(&[settings], client()).unwrap()
}

fn notice(severity: Severity, status: NoticeStatus) -> Notice {
    Notice {
        idempotency_key: "warden-42".to_owned(),
        seq: 42,
        caller_session_id: Some("session-7".to_owned()),
        group: None,
        probe: "api-health".to_owned(),
        component: "api".to_owned(),
        severity,
        category: "service_unhealthy".to_owned(),
        kind: "fired".to_owned(),
        status,
        title: "api: service unhealthy".to_owned(),
        summary: "GET /health answered 503 three times since 10:02.".to_owned(),
        actions: vec![
            "check the api pods".to_owned(),
            "roll back 1.4.2".to_owned(),
        ],
        runbook: Some("https://runbooks.example/api".to_owned()),
        at: "2026-03-01T10:04:00Z".to_owned(),
        details: serde_json::json!({ "status": 503 }),
    }
}

fn firing() -> Notice {
    notice(Severity::Critical, NoticeStatus::Firing)
}

#[tokio::test]
async fn webhook_posts_the_notice_with_idempotency_key_and_signature() {
    let (receiver, url) = receiver(&[]).await;
    let mut webhook = settings("hook", NotifierKind::Webhook, Some(&url));
    webhook.secret = Some(Secret::new("k3y"));
    webhook.headers = BTreeMap::from([("X-Team".to_owned(), "ops".into())]);
    let notifiers = one(webhook);
    let notifier = notifiers.get("hook").unwrap();
    assert!(notifier.honours_idempotency_key());
    assert_eq!(notifier.kind(), NotifierKind::Webhook);

    let delivery = notifier.send(&firing()).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Sent, "{delivery:?}");
    assert_eq!((delivery.attempts, delivery.last_status), (1, Some(200)));
    assert_eq!(delivery.notifier, "hook");

    let sent: Notice = serde_json::from_value(receiver.body(0)).unwrap();
    assert_eq!(sent, firing());
    assert_eq!(receiver.body(0)["status"], "firing");
    assert_eq!(receiver.body(0)["severity"], "critical");
    assert_eq!(receiver.header(0, "idempotency-key").unwrap(), "warden-42");
    assert_eq!(
        receiver.header(0, "content-type").unwrap(),
        "application/json"
    );
    assert_eq!(receiver.header(0, "x-team").unwrap(), "ops");
    let timestamp: i64 = receiver
        .header(0, "x-warden-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert!(timestamp > 1_700_000_000);
    // The signature covers "{timestamp}.{body}", so a captured request
    // cannot be replayed under a fresh timestamp.
    let signature = receiver.header(0, "x-warden-signature").unwrap();
    let digest = hex::decode(signature.strip_prefix("sha256=").unwrap()).unwrap();
    let body = receiver.hits.lock().unwrap()[0].body.clone();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"k3y").unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&body);
    mac.verify_slice(&digest).expect("signature verifies");
    let mut body_only = Hmac::<Sha256>::new_from_slice(b"k3y").unwrap();
    body_only.update(&body);
    assert!(
        body_only.verify_slice(&digest).is_err(),
        "the signature must not cover the body alone"
    );
    let mut later = Hmac::<Sha256>::new_from_slice(b"k3y").unwrap();
    later.update(format!("{}.", timestamp + 1).as_bytes());
    later.update(&body);
    assert!(later.verify_slice(&digest).is_err());
}

#[tokio::test]
async fn every_attempt_is_timestamped_and_signed_afresh() {
    let (receiver, url) = receiver(&[Reply::Status(500), Reply::Status(503)]).await;
    let mut webhook = settings("hook", NotifierKind::Webhook, Some(&url));
    webhook.secret = Some(Secret::new("k3y"));
    let delivery = one(webhook).get("hook").unwrap().send(&firing()).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Sent, "{delivery:?}");
    assert_eq!(receiver.hits(), 3);
    for hit in 0..3 {
        let timestamp: i64 = receiver
            .header(hit, "x-warden-timestamp")
            .unwrap()
            .parse()
            .unwrap();
        let body = receiver.hits.lock().unwrap()[hit].body.clone();
        assert_eq!(
            receiver.header(hit, "x-warden-signature").unwrap(),
            sign(b"k3y", timestamp, &body),
            "attempt {hit}"
        );
    }
}

#[tokio::test]
async fn webhook_without_secret_is_not_signed() {
    let (receiver, url) = receiver(&[]).await;
    let notifiers = one(settings("hook", NotifierKind::Webhook, Some(&url)));
    let delivery = notifiers.get("hook").unwrap().send(&firing()).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Sent);
    assert!(receiver.header(0, "x-warden-signature").is_none());
}

#[tokio::test]
async fn server_errors_are_retried_until_sent() {
    let (receiver, url) = receiver(&[Reply::Status(500), Reply::Status(503)]).await;
    let notifiers = one(settings("hook", NotifierKind::Webhook, Some(&url)));
    let delivery = notifiers.get("hook").unwrap().send(&firing()).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Sent, "{delivery:?}");
    assert_eq!(delivery.attempts, 3);
    assert_eq!(delivery.last_status, Some(200));
    assert_eq!(receiver.hits(), 3);
    for hit in 0..3 {
        assert_eq!(
            receiver.header(hit, "idempotency-key").unwrap(),
            "warden-42"
        );
    }
}

#[tokio::test]
async fn retries_run_out() {
    let (receiver, url) = receiver(&[Reply::Status(502); 5]).await;
    let mut webhook = settings("hook", NotifierKind::Webhook, Some(&url));
    webhook.retries = 2;
    let delivery = one(webhook).get("hook").unwrap().send(&firing()).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Failed);
    assert_eq!((delivery.attempts, delivery.last_status), (3, Some(502)));
    assert!(delivery.error.unwrap().contains("502"));
    assert_eq!(receiver.hits(), 3);
}

#[tokio::test]
async fn client_errors_fail_at_once() {
    let (receiver, url) = receiver(&[Reply::Status(400)]).await;
    let notifiers = one(settings("hook", NotifierKind::Webhook, Some(&url)));
    let delivery = notifiers.get("hook").unwrap().send(&firing()).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Failed);
    assert_eq!((delivery.attempts, delivery.last_status), (1, Some(400)));
    assert!(delivery.error.unwrap().contains("400"));
    assert_eq!(receiver.hits(), 1);
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let (receiver, url) = receiver(&[Reply::RetryAfter("1")]).await;
    let mut webhook = settings("hook", NotifierKind::Webhook, Some(&url));
    // The cap on Retry-After is four times backoff_max.
    webhook.backoff_max = Duration::from_secs(1);
    let delivery = one(webhook).get("hook").unwrap().send(&firing()).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Sent, "{delivery:?}");
    assert_eq!(delivery.attempts, 2);
    let hits = receiver.hits.lock().unwrap();
    let gap = hits[1].at - hits[0].at;
    assert!(gap >= Duration::from_millis(990), "{gap:?}");
    assert!(gap < Duration::from_secs(5), "{gap:?}");
}

#[tokio::test]
async fn retry_after_is_capped() {
    let (receiver, url) = receiver(&[Reply::RetryAfter("3600")]).await;
    let webhook = settings("hook", NotifierKind::Webhook, Some(&url));
    let started = Instant::now();
    let delivery = one(webhook).get("hook").unwrap().send(&firing()).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Sent);
    assert_eq!(receiver.hits(), 2);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_hanging_receiver_times_out_each_attempt_then_fails() {
    let (receiver, url) = receiver(&[Reply::Hang; 8]).await;
    let mut webhook = settings("hook", NotifierKind::Webhook, Some(&url));
    webhook.timeout = Duration::from_millis(100);
    webhook.retries = 2;
    let started = Instant::now();
    let delivery = one(webhook).get("hook").unwrap().send(&firing()).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Failed);
    assert_eq!((delivery.attempts, delivery.last_status), (3, None));
    assert!(
        delivery.error.as_deref().unwrap().contains("timed out"),
        "{delivery:?}"
    );
    assert_eq!(receiver.hits(), 3);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn slack_message_carries_the_issue() {
    let (receiver, url) = receiver(&[]).await;
    let mut slack = settings("chat", NotifierKind::Slack, Some(&url));
    slack.channel = Some("#ops".to_owned());
    slack.dashboard_url = Some("https://grafana.example/d/api".to_owned());
    let notifiers = one(slack);
    let notifier = notifiers.get("chat").unwrap();
    assert!(!notifier.honours_idempotency_key());
    let delivery = notifier.send(&firing()).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Sent, "{delivery:?}");

    let body = receiver.body(0);
    assert_eq!(body["channel"], "#ops");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("FIRING") && text.contains("critical"),
        "{text}"
    );
    assert!(text.contains("api: service unhealthy"), "{text}");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    let all = serde_json::to_string(blocks).unwrap();
    for needle in [
        "GET /health answered 503",
        "*Severity*\\ncritical",
        "*Component*\\napi",
        "*Probe*\\napi-health",
        "• check the api pods",
        "• roll back 1.4.2",
        "<https://runbooks.example/api|Runbook>",
        "<https://grafana.example/d/api|Dashboard>",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in {all}");
    }
}

#[tokio::test]
async fn slack_without_channel_sends_none() {
    let (receiver, url) = receiver(&[]).await;
    let notifiers = one(settings("chat", NotifierKind::Slack, Some(&url)));
    let resolved = notice(Severity::Warning, NoticeStatus::Resolved);
    notifiers.get("chat").unwrap().send(&resolved).await;
    let body = receiver.body(0);
    assert!(body.get("channel").is_none());
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("[RESOLVED] warning")
    );
}

#[tokio::test]
async fn pagerduty_trigger_and_resolve_share_the_dedup_key() {
    let (receiver, url) = receiver(&[Reply::Status(202), Reply::Status(202)]).await;
    let mut pd = settings("pager", NotifierKind::Pagerduty, Some(&url));
    pd.routing_key = Some(Secret::new("rk-0123456789"));
    pd.dashboard_url = Some("https://grafana.example/d/api".to_owned());
    let notifiers = one(pd);
    let notifier = notifiers.get("pager").unwrap();
    assert!(notifier.honours_idempotency_key());

    let mut trigger = firing();
    trigger.summary = "x".repeat(2000);
    let delivery = notifier.send(&trigger).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Sent, "{delivery:?}");
    assert_eq!(delivery.last_status, Some(202));
    let resolve = notice(Severity::Critical, NoticeStatus::Resolved);
    assert_eq!(notifier.send(&resolve).await.outcome, DeliveryOutcome::Sent);

    let first = receiver.body(0);
    assert_eq!(first["routing_key"], "rk-0123456789");
    assert_eq!(first["event_action"], "trigger");
    assert_eq!(first["dedup_key"], "session-7");
    let payload = &first["payload"];
    let summary = payload["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("api: service unhealthy: xxx"),
        "{summary}"
    );
    assert_eq!(summary.chars().count(), 1024);
    assert_eq!(payload["source"], "api");
    assert_eq!(payload["component"], "api");
    assert_eq!(payload["severity"], "critical");
    assert_eq!(payload["class"], "service_unhealthy");
    assert_eq!(payload["custom_details"]["idempotency_key"], "warden-42");
    assert_eq!(payload["custom_details"]["details"]["status"], 503);
    let links = first["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0]["href"], "https://runbooks.example/api");

    let second = receiver.body(1);
    assert_eq!(second["event_action"], "resolve");
    assert_eq!(second["dedup_key"], first["dedup_key"]);
    assert_eq!(second["routing_key"], "rk-0123456789");
}

#[test]
fn pagerduty_dedup_key_falls_back_to_the_idempotency_key() {
    let mut orphan = notice(Severity::Warning, NoticeStatus::Firing);
    orphan.caller_session_id = None;
    orphan.runbook = None;
    let body = pagerduty::payload(&orphan, &Secret::new("rk"), None);
    assert_eq!(body["dedup_key"], "warden-42");
    assert_eq!(body["payload"]["severity"], "warning");
    assert_eq!(body["links"], serde_json::json!([]));
}

#[test]
fn pagerduty_url_defaults_to_the_events_api() {
    let mut pd = settings("pager", NotifierKind::Pagerduty, None);
    pd.routing_key = Some(Secret::new("rk"));
    let notifiers = one(pd);
    let Channel::Pagerduty { url, .. } = &notifiers.get("pager").unwrap().channel else {
        panic!("not a pagerduty channel");
    };
    assert_eq!(url.as_str(), PAGERDUTY_EVENTS_URL);
}

#[tokio::test]
async fn for_notice_keeps_notifiers_whose_min_severity_is_reached() {
    let levels = [
        ("all", Severity::Info),
        ("warn", Severity::Warning),
        ("crit", Severity::Critical),
    ];
    let all: Vec<NotifierSettings> = levels
        .iter()
        .map(|(name, min)| NotifierSettings {
            min_severity: *min,
            ..settings(name, NotifierKind::Log, None)
        })
        .collect();
    let notifiers = Notifiers::from_settings(&all, client()).unwrap();
    assert_eq!(notifiers.names(), ["all", "warn", "crit"]);
    let names = |severity| -> Vec<String> {
        notifiers
            .for_notice(&notice(severity, NoticeStatus::Firing))
            .iter()
            .map(|n| n.name().to_owned())
            .collect()
    };
    assert_eq!(names(Severity::Info), ["all"]);
    assert_eq!(names(Severity::Warning), ["all", "warn"]);
    assert_eq!(names(Severity::Critical), ["all", "warn", "crit"]);
    assert!(notifiers.get("nope").is_none());

    let log = notifiers.get("crit").unwrap();
    assert!(!log.honours_idempotency_key());
    let delivery = log.send(&firing()).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Sent);
    assert_eq!(delivery.attempts, 1);
}

#[test]
fn the_console_line_reads_like_a_sentence() {
    assert_eq!(
        console::human_line(&firing()),
        "[warden] FIRING critical api: api: service unhealthy — GET /health answered 503 three times since 10:02."
    );
}

#[tokio::test]
async fn from_settings_reads_secret_files() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("hook.key");
    std::fs::write(&key, "  s3cret\n").unwrap();
    let (receiver, url) = receiver(&[]).await;
    let mut webhook = settings("hook", NotifierKind::Webhook, Some(&url));
    webhook.secret_file = Some(key);
    let delivery = one(webhook).get("hook").unwrap().send(&firing()).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Sent);
    let body = receiver.hits.lock().unwrap()[0].body.clone();
    let timestamp: i64 = receiver
        .header(0, "x-warden-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        receiver.header(0, "x-warden-signature").unwrap(),
        sign(b"s3cret", timestamp, &body)
    );

    let routing = dir.path().join("pd.key");
    std::fs::write(&routing, "rk-from-file\n").unwrap();
    let mut pd = settings("pager", NotifierKind::Pagerduty, Some(&url));
    pd.routing_key_file = Some(routing);
    one(pd).get("pager").unwrap().send(&firing()).await;
    assert_eq!(receiver.body(1)["routing_key"], "rk-from-file");

    let mut missing = settings("hook", NotifierKind::Webhook, Some(&url));
    missing.secret_file = Some(dir.path().join("absent.key"));
    let error = Notifiers::from_settings(&[missing], client()).unwrap_err();
    assert!(
        matches!(
            error,
            NotifyError::Secret {
                source: SecretFileError::Read { .. },
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("absent.key"), "{error}");

    let empty = dir.path().join("empty.key");
    std::fs::write(&empty, " \n").unwrap();
    let mut blank = settings("pager", NotifierKind::Pagerduty, None);
    blank.routing_key_file = Some(empty);
    let error = Notifiers::from_settings(&[blank], client()).unwrap_err();
    assert!(
        matches!(
            error,
            NotifyError::Secret {
                source: SecretFileError::Empty { .. },
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "notifier \"pager\": {} is empty",
            dir.path().join("empty.key").display()
        )
    );
}

#[test]
fn from_settings_rejects_what_validation_would() {
    let error = |settings: NotifierSettings| {
        Notifiers::from_settings(&[settings], client())
            .unwrap_err()
            .to_string()
    };
    assert!(error(settings("w", NotifierKind::Webhook, None)).contains("url is required"));
    assert!(error(settings("p", NotifierKind::Pagerduty, None)).contains("routing_key"));
    let bad = error(settings(
        "s",
        NotifierKind::Slack,
        Some("ftp://hooks.example/T0/SECRETPATH"),
    ));
    assert!(
        bad.contains("http or https") && !bad.contains("SECRETPATH"),
        "{bad}"
    );
    let mut header = settings("w", NotifierKind::Webhook, Some("http://127.0.0.1:1/"));
    header.headers = BTreeMap::from([("Authorization".to_owned(), "Bearer tok\n".into())]);
    let bad = error(header);
    assert!(
        bad.contains("Authorization") && !bad.contains("tok"),
        "{bad}"
    );
    let twice = [
        settings("same", NotifierKind::Log, None),
        settings("same", NotifierKind::Log, None),
    ];
    assert!(matches!(
        Notifiers::from_settings(&twice, client()),
        Err(NotifyError::DuplicateName(_))
    ));
}

#[tokio::test]
async fn errors_and_debug_never_show_secrets() {
    // A port nobody listens on: bind, note it, close.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut slack = settings(
        "chat",
        NotifierKind::Slack,
        Some(&format!("http://127.0.0.1:{port}/services/T0/SECRETPATH")),
    );
    slack.retries = 1;
    let notifiers = one(slack);
    let notifier = notifiers.get("chat").unwrap();
    let delivery = notifier.send(&firing()).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Failed);
    assert_eq!((delivery.attempts, delivery.last_status), (2, None));
    let shown = format!("{delivery:?} {notifiers:?}");
    assert!(!shown.contains("SECRETPATH"), "{shown}");

    let mut pd = settings("pager", NotifierKind::Pagerduty, None);
    pd.routing_key = Some(Secret::new("rk-very-secret"));
    let shown = format!("{:?}", one(pd));
    assert!(!shown.contains("rk-very-secret"), "{shown}");
}

#[test]
fn backoff_doubles_and_is_capped() {
    let policy = RetryPolicy {
        timeout: Duration::from_secs(1),
        retries: 10,
        backoff_min: Duration::from_millis(500),
        backoff_max: Duration::from_secs(3),
    };
    let delays: Vec<u128> = (1..=5).map(|n| policy.backoff(n).as_millis()).collect();
    assert_eq!(delays, [500, 1000, 2000, 3000, 3000]);
    assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(3));
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    use axum::http::HeaderValue;
    assert_eq!(
        retry_after(&HeaderValue::from_static("7")),
        Some(Duration::from_secs(7))
    );
    let later = std::time::SystemTime::now() + Duration::from_secs(120);
    let date = httpdate::fmt_http_date(later);
    let wait = retry_after(&HeaderValue::from_str(&date).unwrap()).unwrap();
    assert!(
        wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
        "{wait:?}"
    );
    assert_eq!(
        retry_after(&HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT")),
        Some(Duration::ZERO)
    );
    assert_eq!(retry_after(&HeaderValue::from_static("soon")), None);
}

#[test]
fn notice_round_trips_with_lowercase_enums() {
    let value = serde_json::to_value(firing()).unwrap();
    assert_eq!(value["status"], "firing");
    assert_eq!(value["severity"], "critical");
    let back: Notice = serde_json::from_value(value).unwrap();
    assert_eq!(back, firing());
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
async fn a_webhook_redirected_to_another_origin_sends_it_nothing() {
    let (receiver, url) = receiver(&[]).await;
    let hop = redirector(url).await;
    let mut webhook = settings("hook", NotifierKind::Webhook, Some(&hop));
    webhook.headers = BTreeMap::from([("X-Api-Key".to_owned(), "k3y-value".into())]);
    webhook.secret = Some(Secret::new("k3y"));
    // The client Warden builds (app.rs) is the probes' one.
    let notifiers =
        Notifiers::from_settings(&[webhook], crate::probes::http_client().unwrap()).unwrap();
    let delivery = notifiers.get("hook").unwrap().send(&firing()).await;
    assert_eq!(delivery.outcome, DeliveryOutcome::Failed, "{delivery:?}");
    assert_eq!(delivery.last_status, Some(307));
    assert_eq!(receiver.hits(), 0, "the other origin got the notice");
}

#[tokio::test]
async fn an_incident_folds_into_the_pagerduty_alert_its_issue_opened() {
    let (receiver, url) = receiver(&[]).await;
    let mut pd = settings("pager", NotifierKind::Pagerduty, Some(&url));
    pd.routing_key = Some(Secret::new("rk-0123456789"));
    let notifiers = one(pd);
    let notifier = notifiers.get("pager").unwrap();

    let issue = firing();
    let mut incident = firing();
    incident.idempotency_key = "warden-INC-1-incident_opened-0".to_owned();
    incident.caller_session_id = Some("INC-1".to_owned());
    incident.group = Some("session-7".to_owned());
    incident.kind = "incident_opened".to_owned();
    let mut ack = firing();
    ack.kind = "acknowledged".to_owned();
    let resolved = notice(Severity::Critical, NoticeStatus::Resolved);
    let mut incident_resolved = incident.clone();
    incident_resolved.status = NoticeStatus::Resolved;

    let outcomes = [
        notifier.send(&issue).await.outcome,
        notifier.send(&incident).await.outcome,
        notifier.send(&ack).await.outcome,
        notifier.send(&resolved).await.outcome,
        notifier.send(&incident_resolved).await.outcome,
    ];
    use DeliveryOutcome::{Folded, Sent};
    assert_eq!(outcomes, [Sent, Folded, Sent, Sent, Folded]);
    let actions: Vec<_> = (0..receiver.hits())
        .map(|i| {
            let body = receiver.body(i);
            (body["event_action"].clone(), body["dedup_key"].clone())
        })
        .collect();
    assert_eq!(
        actions,
        [
            (serde_json::json!("trigger"), serde_json::json!("session-7")),
            (
                serde_json::json!("acknowledge"),
                serde_json::json!("session-7")
            ),
            (serde_json::json!("resolve"), serde_json::json!("session-7")),
        ]
    );
}

#[tokio::test]
async fn a_failed_trigger_is_not_folded_away_the_next_one_is_sent() {
    let (receiver, url) = receiver(&[Reply::Status(400)]).await;
    let mut pd = settings("pager", NotifierKind::Pagerduty, Some(&url));
    pd.routing_key = Some(Secret::new("rk-0123456789"));
    let notifiers = one(pd);
    let notifier = notifiers.get("pager").unwrap();
    assert_eq!(
        notifier.send(&firing()).await.outcome,
        DeliveryOutcome::Failed
    );
    assert_eq!(
        notifier.send(&firing()).await.outcome,
        DeliveryOutcome::Sent
    );
    assert_eq!(receiver.hits(), 2);
}

#[tokio::test]
async fn slack_posts_each_state_change_once_and_escalation_news_always() {
    let (receiver, url) = receiver(&[]).await;
    let notifiers = one(settings("chat", NotifierKind::Slack, Some(&url)));
    let notifier = notifiers.get("chat").unwrap();
    let story = [
        ("fired", NoticeStatus::Firing),
        ("escalation_warning", NoticeStatus::Firing),
        ("exhausted", NoticeStatus::Firing),
        ("reminder", NoticeStatus::Firing),
        ("resolved", NoticeStatus::Resolved),
        ("incident_resolved", NoticeStatus::Resolved),
    ];
    let mut outcomes = Vec::new();
    for (index, (kind, status)) in story.into_iter().enumerate() {
        let mut step = notice(Severity::Critical, status);
        step.kind = kind.to_owned();
        step.idempotency_key = format!("warden-{index}");
        outcomes.push(notifier.send(&step).await.outcome);
    }
    use DeliveryOutcome::{Folded, Sent};
    assert_eq!(outcomes, [Sent, Folded, Sent, Folded, Sent, Folded]);
    assert_eq!(receiver.hits(), 3);
}

#[tokio::test]
async fn a_webhook_gets_every_notice_even_repeats() {
    let (receiver, url) = receiver(&[]).await;
    let notifiers = one(settings("hook", NotifierKind::Webhook, Some(&url)));
    let notifier = notifiers.get("hook").unwrap();
    for _ in 0..3 {
        assert_eq!(
            notifier.send(&firing()).await.outcome,
            DeliveryOutcome::Sent
        );
    }
    assert_eq!(receiver.hits(), 3);
}

#[tokio::test]
async fn deliver_routes_by_min_severity_and_by_name_and_counts_each_outcome() {
    let (receiver, url) = receiver(&[]).await;
    let mut critical_only = settings("pager", NotifierKind::Webhook, Some(&url));
    critical_only.min_severity = Severity::Critical;
    let all = settings("chat", NotifierKind::Webhook, Some(&url));
    let notifiers = Notifiers::from_settings(&[critical_only, all], client()).unwrap();
    let metrics = crate::metrics::Metrics::new();
    let none = std::collections::HashSet::new();

    let warning = notice(Severity::Warning, NoticeStatus::Firing);
    let names = |deliveries: Vec<Delivery>| -> Vec<String> {
        deliveries.into_iter().map(|d| d.notifier).collect()
    };
    let routed = notifiers
        .deliver(&warning, Route::Subscribed, &none, &metrics, "test")
        .await;
    assert_eq!(
        names(routed),
        ["chat"],
        "a warning never reaches a critical-only notifier"
    );
    let only = notifiers
        .deliver(&warning, Route::Only("pager"), &none, &metrics, "test")
        .await;
    assert!(
        only.is_empty(),
        "naming a notifier does not bypass its min_severity"
    );
    let only = notifiers
        .deliver(&firing(), Route::Only("pager"), &none, &metrics, "test")
        .await;
    assert_eq!(names(only), ["pager"]);
    assert_eq!(receiver.hits(), 2);
    let counted = metrics
        .notifications
        .get_or_create(&crate::metrics::NotificationLabels {
            notifier: "chat".to_owned(),
            outcome: "sent".to_owned(),
        })
        .get();
    assert_eq!(counted, 1);
}

#[tokio::test]
async fn matchers_route_by_component_kind_and_category_on_top_of_min_severity() {
    let routed = |name: &str, matchers: &[&str]| NotifierSettings {
        matchers: matchers.iter().map(|m| (*m).to_owned()).collect(),
        ..settings(name, NotifierKind::Log, None)
    };
    let notifiers = Notifiers::from_settings(
        &[
            routed("everything", &[]),
            routed("shop-team", &["component=~shop|api"]),
            routed(
                "no-reminders",
                &["kind!=reminder", "category!~incident|escalation"],
            ),
            routed("db-team", &["component=db"]),
        ],
        client(),
    )
    .unwrap();
    let names = |notice: &Notice| -> Vec<String> {
        notifiers
            .for_notice(notice)
            .iter()
            .map(|n| n.name().to_owned())
            .collect()
    };
    assert_eq!(
        names(&firing()),
        ["everything", "shop-team", "no-reminders"]
    );
    let reminder = Notice {
        kind: "reminder".to_owned(),
        ..firing()
    };
    assert_eq!(names(&reminder), ["everything", "shop-team"]);
    let incident = Notice {
        category: "incident".to_owned(),
        component: "db".to_owned(),
        ..firing()
    };
    assert_eq!(names(&incident), ["everything", "db-team"]);

    let bad = Notifiers::from_settings(&[routed("x", &["team=ops"])], client());
    assert!(
        matches!(bad, Err(NotifyError::BadMatcher { ref matcher, .. }) if matcher == "team=ops"),
        "{bad:?}"
    );
}

#[tokio::test]
async fn a_conversation_recalled_from_the_log_is_not_triggered_again() {
    let (receiver, url) = receiver(&[]).await;
    let pagerduty = NotifierSettings {
        routing_key: Some(Secret::new("test-routing-key-0123456789".to_owned())),
        ..settings("pd", NotifierKind::Pagerduty, Some(&url))
    };
    let notifiers = one(pagerduty);
    notifiers.remember("pd", "session-7", NoticeStatus::Firing);
    let pd = notifiers.get("pd").unwrap();
    assert_eq!(pd.send(&firing()).await.outcome, DeliveryOutcome::Folded);
    assert_eq!(
        receiver.hits(),
        0,
        "the trigger went out before the restart"
    );
    let resolved = notice(Severity::Critical, NoticeStatus::Resolved);
    assert_eq!(pd.send(&resolved).await.outcome, DeliveryOutcome::Sent);
    assert_eq!(receiver.body(0)["event_action"], "resolve");
}
