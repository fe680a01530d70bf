#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::{Value, json};

use super::*;

/// One request a test server received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Value,
}

#[derive(Clone)]
struct Reply {
    status: StatusCode,
    body: &'static str,
    delay: Duration,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn record(
    State(reply): State<Reply>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], &'static str) {
    reply.seen.lock().unwrap().push(Seen {
        path: uri.path().to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    tokio::time::sleep(reply.delay).await;
    (
        reply.status,
        [("content-type", "application/json")],
        reply.body,
    )
}

/// A real HTTP server on 127.0.0.1:0 that answers every request with
/// `status` and `body` after `delay`, and records what it was sent.
async fn server(
    status: u16,
    body: &'static str,
    delay: Duration,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reply = Reply {
        status: StatusCode::from_u16(status).unwrap(),
        body,
        delay,
        seen: seen.clone(),
    };
    let router = Router::new().fallback(record).with_state(reply);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), seen)
}

fn request() -> InvestigationRequest {
    InvestigationRequest {
        seq: 42,
        seam: "probe.wake_requested".to_owned(),
        kind: "fired".to_owned(),
        caller_session_id: Some("probe:api:service_unhealthy:7".to_owned()),
        probe: "api".to_owned(),
        component: "shop".to_owned(),
        category: "service_unhealthy".to_owned(),
        severity: Severity::Critical,
        title: "api is unhealthy".to_owned(),
        detail: "status 503 (expected 2xx)".to_owned(),
        first_failed_at: Some("2026-01-01T10:00:00Z".to_owned()),
        consecutive_failures: Some(3),
        observation: Some(json!({
            "status": "unhealthy",
            "reasons": ["status 503 (expected 2xx)", "latency 812ms"],
            "at": "2026-01-01T10:01:00Z",
        })),
        recent_observations: vec![
            json!({"status": "healthy"}),
            json!({"status": "unhealthy"}),
            json!({"status": "unhealthy"}),
        ],
        last_good_at: Some("2026-01-01T09:59:30Z".to_owned()),
        open_issues: vec![json!({"probe": "db", "category": "service_degraded"})],
        related_rows: vec![],
        envelope_status: "absent".to_owned(),
        envelope_action: None,
        runbook: Some("https://runbooks.example/shop".to_owned()),
    }
}

fn settings(kind: InvestigatorKind) -> InvestigatorSettings {
    InvestigatorSettings {
        kind,
        ..InvestigatorSettings::default()
    }
}

fn webhook(url: &str) -> InvestigatorSettings {
    InvestigatorSettings {
        url: Some(format!("{url}/investigate").into()),
        ..settings(InvestigatorKind::Webhook)
    }
}

fn investigator(settings: &InvestigatorSettings) -> Investigator {
    Investigator::build(settings, reqwest::Client::new(), |_| None).unwrap()
}

#[test]
fn builtin_fired_summary_says_what_when_and_what_next() {
    let (summary, actions) = builtin::summarise(&request());
    for needle in [
        "New critical issue on shop: api is unhealthy (probe api, service_unhealthy).",
        "Detail: status 503 (expected 2xx).",
        "Reasons: latency 812ms.",
        "Failing since 2026-01-01T10:00:00Z, 3 consecutive failed check(s).",
        "2 of the last 3 observation(s) failed.",
        "Last healthy observation: 2026-01-01T09:59:30Z.",
        "1 other open issue(s) on shop: service_degraded on probe db.",
        "shop has no fix envelope, so nothing will be done automatically.",
        "Runbook: https://runbooks.example/shop.",
    ] {
        assert!(summary.contains(needle), "missing {needle:?} in {summary}");
    }
    assert_eq!(
        actions,
        [
            "Check the runbook: https://runbooks.example/shop",
            "Look at the probe's latest observations: GET /api/probes/api",
            "Read the issue's story: warden audit tail --since 7",
            "Look at the other open issues on shop first; they may share a cause",
            "Fix shop by hand: it has no fix envelope",
        ]
    );
    assert_eq!(builtin::summarise(&request()), (summary, actions));
}

#[test]
fn builtin_summary_says_a_configured_envelope_is_disabled() {
    let mut request = request();
    request.envelope_status = "disabled".to_owned();
    request.envelope_action = Some("run /usr/bin/reset".to_owned());
    let (summary, actions) = builtin::summarise(&request);
    assert!(
        summary.contains(
            "The fix envelope is disabled, so nothing will be done automatically (it would run /usr/bin/reset)."
        ),
        "{summary}"
    );
    assert!(!summary.contains("no fix envelope"), "{summary}");
    assert!(
        actions.contains(&"Fix shop by hand: its fix envelope is disabled".to_owned()),
        "{actions:?}"
    );
}

#[test]
fn builtin_summary_describes_an_enabled_envelope() {
    let mut request = request();
    request.envelope_status = "enabled".to_owned();
    request.envelope_action = Some("restart shop-api.service".to_owned());
    request.open_issues.clear();
    let (summary, actions) = builtin::summarise(&request);
    assert!(
        summary.contains(
            "The fix envelope will restart shop-api.service unless Warden is paused or an incident freezes shop."
        ),
        "{summary}"
    );
    assert!(!summary.contains("nothing will be done"), "{summary}");
    assert!(
        !actions.iter().any(|a| a.contains("by hand:")),
        "{actions:?}"
    );
    assert!(
        summary.contains("No other issue is open on shop."),
        "{summary}"
    );
    assert!(actions.iter().any(|a| a.contains("fix envelope's result")));
}

#[test]
fn builtin_resolved_summary_says_how_long_it_was_open() {
    let mut request = request();
    request.kind = "resolved".to_owned();
    request.seam = "probe.resolved".to_owned();
    request.open_issues.clear();
    request.observation = None;
    request.related_rows = vec![
        json!({"seq": 7, "ts": "2026-01-01T10:00:30Z", "seam": "probe.wake_requested"}),
        json!({"seq": 50, "ts": "2026-01-01T10:45:00Z", "seam": "probe.resolved"}),
    ];
    let (summary, actions) = builtin::summarise(&request);
    assert_eq!(
        summary,
        "Resolved: probe api on shop recovered from service unhealthy. \
         The issue was open for 45m (since 2026-01-01T10:00:00Z). \
         It failed 3 consecutive check(s). \
         No other issue is open on shop. \
         Runbook: https://runbooks.example/shop."
    );
    assert_eq!(actions[0], "Confirm the recovery: GET /api/probes/api");
    assert_eq!(builtin::summarise(&request), (summary, actions));
}

#[tokio::test]
async fn none_engine_is_the_builtin_summary_with_the_configured_runbook() {
    let investigator = investigator(&InvestigatorSettings {
        runbook_url: Some("https://runbooks.example/all".to_owned()),
        ..settings(InvestigatorKind::None)
    });
    let mut request = request();
    request.runbook = None;
    let investigation = investigator.investigate(&request).await;
    assert_eq!(investigation.engine, "none");
    assert_eq!(investigation.fallback, None);
    assert_eq!(investigation.cost_usd, 0.0);
    assert!(
        investigation
            .summary
            .contains("Runbook: https://runbooks.example/all."),
        "{}",
        investigation.summary
    );
    assert_eq!(investigator.budget().calls_last_hour, 0);
}

#[tokio::test]
async fn webhook_answer_is_carried_through() {
    let (url, seen) = server(
        200,
        r#"{"summary": "The shop API returns 503 since 10:00.", "actions": ["restart it", " "],
            "model": "sre-bot-1", "tokens_in": 120, "tokens_out": 30, "cost_usd": 0.25}"#,
        Duration::ZERO,
    )
    .await;
    let investigator = investigator(&webhook(&url));
    let investigation = investigator.investigate(&request()).await;
    assert_eq!(
        investigation,
        Investigation {
            summary: "The shop API returns 503 since 10:00.".to_owned(),
            actions: vec!["restart it".to_owned()],
            engine: "webhook".to_owned(),
            model: Some("sre-bot-1".to_owned()),
            tokens_in: 120,
            tokens_out: 30,
            cost_usd: 0.25,
            duration_ms: investigation.duration_ms,
            fallback: None,
        }
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/investigate");
    assert_eq!(seen[0].headers["idempotency-key"], "warden-42");
    assert!(!seen[0].headers.contains_key("authorization"));
    assert_eq!(seen[0].body, serde_json::to_value(request()).unwrap());
    let budget = investigator.budget();
    assert_eq!(budget.calls_last_hour, 1);
    assert_eq!(budget.spent_today_usd, 0.25);
}

async fn assert_falls_back(settings: &InvestigatorSettings, reason: &str) {
    let investigation = investigator(settings).investigate(&request()).await;
    let fallback = investigation.fallback.clone().unwrap_or_default();
    assert!(
        fallback.starts_with(reason),
        "{fallback:?} is not {reason:?}"
    );
    assert_eq!(investigation.engine, "none");
    assert_eq!(investigation.summary, builtin::summarise(&request()).0);
    assert_eq!(investigation.cost_usd, 0.0);
}

#[tokio::test]
async fn webhook_errors_fall_back_to_the_builtin_summary() {
    let (url, _) = server(500, r#"{"summary": "ignored"}"#, Duration::ZERO).await;
    assert_falls_back(&webhook(&url), "webhook returned 500").await;
    let (url, _) = server(200, "not json", Duration::ZERO).await;
    assert_falls_back(&webhook(&url), "webhook answered invalid JSON").await;
    let (url, _) = server(
        200,
        r#"{"summary": "  ", "actions": ["x"]}"#,
        Duration::ZERO,
    )
    .await;
    assert_falls_back(&webhook(&url), "webhook answered without a summary").await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    assert_falls_back(&webhook(&closed), "webhook unreachable").await;
}

#[tokio::test]
async fn webhook_timeout_falls_back() {
    let (url, _) = server(200, r#"{"summary": "late"}"#, Duration::from_secs(30)).await;
    let settings = InvestigatorSettings {
        timeout: Duration::from_millis(200),
        ..webhook(&url)
    };
    let started = tokio::time::Instant::now();
    assert_falls_back(&settings, "webhook timed out after 200ms").await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_fallback_counts_nothing() {
    let (url, seen) = server(500, "{}", Duration::ZERO).await;
    let investigator = investigator(&InvestigatorSettings {
        max_per_hour: 1,
        ..webhook(&url)
    });
    for _ in 0..3 {
        let investigation = investigator.investigate(&request()).await;
        assert_eq!(
            investigation.fallback.as_deref(),
            Some("webhook returned 500")
        );
    }
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(investigator.budget().calls_last_hour, 0);
}

#[tokio::test]
async fn openai_request_shape_usage_and_cost() {
    let (url, seen) = server(
        200,
        r#"{"id": "x", "model": "llama3.1:8b",
            "choices": [{"index": 0, "message": {"role": "assistant", "content":
              "The shop API has returned 503 since 10:00.\nThe database is degraded too.\n\nNext actions:\n- Check the db probe\n- Restart the API"}}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}}"#,
        Duration::ZERO,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "sk-test-123\n").unwrap();
    let settings = InvestigatorSettings {
        base_url: Some(format!("{url}/v1/").into()),
        model: Some("llama3.1:8b".to_owned()),
        api_key_file: Some(key_file),
        max_tokens: 321,
        price_in_per_mtok_usd: 2.0,
        price_out_per_mtok_usd: 10.0,
        ..settings(InvestigatorKind::Openai)
    };
    let investigator = Investigator::from_settings(&settings, reqwest::Client::new()).unwrap();
    assert!(!format!("{investigator:?}").contains("sk-test-123"));
    let investigation = investigator.investigate(&request()).await;
    assert_eq!(investigation.fallback, None);
    assert_eq!(investigation.engine, "openai");
    assert_eq!(
        investigation.summary,
        "The shop API has returned 503 since 10:00. The database is degraded too."
    );
    assert_eq!(
        investigation.actions,
        ["Check the db probe", "Restart the API"]
    );
    assert_eq!(investigation.model.as_deref(), Some("llama3.1:8b"));
    assert_eq!(
        (investigation.tokens_in, investigation.tokens_out),
        (1000, 500)
    );
    assert!(
        (investigation.cost_usd - 0.007).abs() < 1e-12,
        "{}",
        investigation.cost_usd
    );

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].headers["authorization"], "Bearer sk-test-123");
    let body = &seen[0].body;
    assert_eq!(body["model"], "llama3.1:8b");
    assert_eq!(body["max_tokens"], 321);
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][0]["content"], openai::INSTRUCTION);
    assert_eq!(body["messages"][1]["role"], "user");
    let user: Value =
        serde_json::from_str(body["messages"][1]["content"].as_str().unwrap()).unwrap();
    assert_eq!(user, serde_json::to_value(request()).unwrap());
}

#[tokio::test]
async fn openai_without_choices_falls_back() {
    let (url, _) = server(200, r#"{"choices": []}"#, Duration::ZERO).await;
    let settings = InvestigatorSettings {
        base_url: Some(url.into()),
        model: Some("m".to_owned()),
        ..settings(InvestigatorKind::Openai)
    };
    assert_falls_back(&settings, "openai answered without a summary").await;
}

#[test]
fn long_prompts_are_truncated() {
    let mut request = request();
    request.detail = "é".repeat(20_000);
    let prompt = openai::prompt(&request).unwrap();
    assert!(prompt.len() <= openai::MAX_PROMPT_BYTES + 20);
    assert!(prompt.ends_with("... (truncated)"));
}

#[tokio::test]
async fn max_per_hour_falls_back_without_calling() {
    let (url, seen) = server(200, r#"{"summary": "ok"}"#, Duration::ZERO).await;
    let investigator = investigator(&InvestigatorSettings {
        max_per_hour: 2,
        ..webhook(&url)
    });
    for _ in 0..2 {
        assert_eq!(investigator.investigate(&request()).await.fallback, None);
    }
    let third = investigator.investigate(&request()).await;
    assert_eq!(
        third.fallback.as_deref(),
        Some("over budget: 2 investigations in the last hour")
    );
    assert_eq!(third.engine, "none");
    assert_eq!(seen.lock().unwrap().len(), 2);
    let budget = investigator.budget();
    assert_eq!((budget.calls_last_hour, budget.max_per_hour), (2, 2));
}

#[tokio::test]
async fn daily_budget_survives_a_restart_through_seed_spend() {
    let (url, seen) = server(200, r#"{"summary": "ok"}"#, Duration::ZERO).await;
    let investigator = investigator(&webhook(&url));
    // A row from yesterday does not count today.
    let yesterday = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(25);
    investigator.seed_spend(yesterday, 100.0);
    assert_eq!(investigator.investigate(&request()).await.fallback, None);
    investigator.seed_spend(jiff::Timestamp::now(), 5.0);
    let over = investigator.investigate(&request()).await;
    assert_eq!(
        over.fallback.as_deref(),
        Some("over budget: $5.00 spent today")
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(investigator.budget().spent_today_usd, 5.0);
}

#[test]
fn api_key_sources() {
    let http = reqwest::Client::new();
    let from_env = InvestigatorSettings {
        api_key_env: Some("SHOP_KEY".to_owned()),
        ..webhook("http://127.0.0.1:1")
    };
    let built = Investigator::build(&from_env, http.clone(), |name| {
        (name == "SHOP_KEY").then(|| " sk-env \n".to_owned())
    })
    .unwrap();
    assert_eq!(
        built.inner.api_key.as_ref().map(Secret::expose),
        Some("sk-env")
    );
    let error = Investigator::build(&from_env, http.clone(), |_| None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "environment variable SHOP_KEY (investigator.api_key_env) is not set"
    );
    let missing_file = InvestigatorSettings {
        api_key_file: Some("/nonexistent/key".into()),
        ..webhook("http://127.0.0.1:1")
    };
    let error = Investigator::build(&missing_file, http.clone(), |_| None).unwrap_err();
    assert!(error.to_string().contains("/nonexistent/key"), "{error}");
    let error =
        Investigator::build(&settings(InvestigatorKind::Openai), http, |_| None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "investigator.base_url is required for investigator kind openai"
    );
}

#[tokio::test]
async fn an_engine_echoing_the_key_or_url_secret_has_it_blanked_out() {
    let (url, seen) = server(
        200,
        r#"{"summary":"called with inv-key-0123 at token=inv-query-4567","actions":["use inv-key-0123"]}"#,
        Duration::ZERO,
    )
    .await;
    let settings = InvestigatorSettings {
        url: Some(format!("{url}/investigate?token=inv-query-4567").into()),
        api_key: Some(Secret::new("inv-key-0123")),
        ..settings(InvestigatorKind::Webhook)
    };
    let answer = investigator(&settings).investigate(&request()).await;
    assert_eq!(
        seen.lock().unwrap()[0].headers["authorization"],
        "Bearer inv-key-0123"
    );
    assert_eq!(answer.fallback, None);
    assert_eq!(answer.summary, "called with *** at ***");
    assert_eq!(answer.actions, ["use ***"]);
}

#[test]
fn a_wrong_typed_field_quoting_a_huge_string_gives_a_short_reason() {
    // Found by the remote_answers fuzz target: serde_json quotes a string of
    // the wrong type whole, so the fallback reason (kept in an audit row)
    // grew with whatever the engine sent.
    let body = format!("{{\"summary\": 1, \"actions\": \"{}\"}}", "a".repeat(5000));
    for format in [AnswerFormat::Webhook, AnswerFormat::Openai] {
        let reason = parse_answer(format, body.as_bytes(), "m").unwrap_err();
        assert!(reason.len() <= 512, "{format:?}: {} bytes", reason.len());
    }
    let tier = crate::escalation::tier::parse_answer(
        200,
        format!(
            "{{\"status\": \"fixed\", \"notes\": 7, \"patch\": \"{}\"}}",
            "b".repeat(5000)
        )
        .as_bytes(),
        0,
    );
    assert!(tier.error.is_some_and(|e| e.len() <= 512));
}
