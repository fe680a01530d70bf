//! Response end to end, in-process: a failing loopback target, the debouncer,
//! the wake consumer, a loopback investigator and loopback notifiers. Every
//! assertion reads the audit log or what the receivers got.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::instance::{WAIT, rows, start, wait_rows};

use std::time::Duration;

use support::process::TOKEN;
use support::receiver::Receiver;
use support::targets::Switchable;
use warden::audit::AuditRow;

/// A failing http probe that fires after two failures.
fn failing_probe(url: &str) -> String {
    format!(
        "[debounce]\nfailure_threshold = 2\n\n[[probes]]\nname = \"api\"\nkind = \"http\"\nurl = \"{url}\"\ninterval = \"100ms\"\ntimeout = \"80ms\"\n"
    )
}

fn webhook(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[notifiers]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}\"\ntimeout = \"2s\"\nbackoff_min = \"10ms\"\nbackoff_max = \"50ms\"\n{extra}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_wake_is_investigated_once_and_reaches_each_notifier_once() {
    let dir = tempfile::tempdir().unwrap();
    let target = Switchable::start(503).await;
    let investigator = Receiver::start().await;
    investigator.reply(serde_json::json!({
        "summary": "The API answers 503 since the last deploy.",
        "actions": ["roll back"],
        "model": "test-model",
        "tokens_in": 120,
        "tokens_out": 30,
        "cost_usd": 0.002
    }));
    let (ops, oncall) = (Receiver::start().await, Receiver::start().await);
    let config = format!(
        "{}\n[investigator]\nkind = \"webhook\"\nurl = \"{}\"\ntimeout = \"5s\"\n\n{}{}",
        failing_probe(&target.url),
        investigator.url,
        webhook("ops", &ops.url, ""),
        webhook("oncall", &oncall.url, "min_severity = \"critical\""),
    );
    let warden = start(dir.path(), &config).await;
    let completed = wait_rows(dir.path(), "probe.investigation_completed", 1).await;
    let wake = &rows(dir.path(), "probe.wake_requested")[0];
    let done = &completed[0];
    assert_eq!(done.details["wake_seq"], wake.seq);
    assert_eq!(done.details["dm_status"], "sent");
    assert_eq!(done.details["model"], "test-model");
    assert_eq!(done.details["tokens_in"], 120);
    assert_eq!(done.details["autofix_attempted"], false);
    assert_eq!(done.caller_session_id, wake.caller_session_id);

    // Deliveries are recorded before the investigation row, so counting now is exact.
    let key = format!("warden-{}", wake.seq);
    for receiver in [&ops, &oncall] {
        assert_eq!(
            receiver.wake_delivered_by_key(),
            [(key.clone(), 1)].into_iter().collect()
        );
        let notice = &receiver.received_wake()[0].body;
        assert_eq!(notice["idempotency_key"], key);
        assert_eq!(notice["status"], "firing");
        assert_eq!(notice["probe"], "api");
        assert_eq!(notice["severity"], "critical");
        assert_eq!(
            notice["summary"],
            "The API answers 503 since the last deploy."
        );
        assert_eq!(
            notice["caller_session_id"],
            wake.caller_session_id.clone().unwrap()
        );
    }
    let request = &investigator.received()[0];
    assert_eq!(request.body["probe"], "api");
    assert_eq!(request.body["seq"], wake.seq);
    assert!(
        !request.body["recent_observations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The incident this critical issue opens sends its own notices; count
    // this wake's deliveries.
    let sent: Vec<_> = rows(dir.path(), "notification.sent")
        .into_iter()
        .filter(|row| row.details["wake_seq"] == wake.seq)
        .collect();
    assert_eq!(sent.len(), 2);
    let status: serde_json::Value = reqwest::get(format!("http://{}/api/wake", warden.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["budget"]["calls_last_hour"], 1, "{status}");
    let metrics = reqwest::get(format!("http://{}/metrics", warden.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "warden_investigations_total{engine=\"webhook\",outcome=\"ok\"} 1",
        // Incident notices are counted too, so at least the wake's one.
        "warden_notifications_total{notifier=\"ops\",outcome=\"sent\"} ",
        "warden_notifications_total{notifier=\"oncall\",outcome=\"sent\"} ",
        "warden_issues_total{event=\"fired\",reason=\"\"} 1",
        "warden_issues_open 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    assert!(
        metrics.contains("warden_probe_checks_total{probe=\"api\",status=\"unhealthy\"}"),
        "{metrics}"
    );
    assert!(
        (status["budget"]["spent_today_usd"].as_f64().unwrap() - 0.002).abs() < 1e-9,
        "{status}"
    );
    assert!(
        sent.iter()
            .all(|r| r.caller_session_id == wake.caller_session_id)
    );

    // Recovery: a resolved notice under the same story, once per notifier.
    target.set(200);
    let completed = wait_rows(dir.path(), "probe.investigation_completed", 2).await;
    assert_eq!(completed[1].details["kind"], "resolved");
    assert_eq!(
        ops.received_wake().last().unwrap().body["status"],
        "resolved"
    );
    assert_eq!(ops.wake_delivered_by_key().len(), 2);
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_investigator_that_is_down_falls_back_and_the_notice_still_goes_out() {
    let dir = tempfile::tempdir().unwrap();
    let target = Switchable::start(503).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let ops = Receiver::start().await;
    let config = format!(
        "{}\n[investigator]\nkind = \"webhook\"\nurl = \"http://{closed}/investigate\"\ntimeout = \"1s\"\n\n{}",
        failing_probe(&target.url),
        webhook("ops", &ops.url, ""),
    );
    let warden = start(dir.path(), &config).await;
    let completed = wait_rows(dir.path(), "probe.investigation_completed", 1).await;
    assert_eq!(
        completed[0].details["dm_status"],
        "engine_unavailable_fallback"
    );
    assert_eq!(completed[0].details["engine"], "none");
    assert!(completed[0].details["fallback"].as_str().is_some());
    let notice = &ops.received_wake()[0].body;
    assert!(
        notice["summary"].as_str().unwrap().contains("api"),
        "{notice}"
    );
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_down_for_a_while_gets_the_notice_once_when_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let target = Switchable::start(503).await;
    let ops = Receiver::start().await;
    // Down for its first four requests: the first pass (1 + 1 retry) fails,
    // the first redelivery round fails, the second succeeds.
    ops.script(&[(500, None), (500, None), (502, None), (503, None)]);
    let config = format!(
        "{}\n[wake]\nredeliver_every = \"200ms\"\n\n{}",
        failing_probe(&target.url),
        webhook("ops", &ops.url, "retries = 1"),
    );
    let warden = start(dir.path(), &config).await;
    let completed = wait_rows(dir.path(), "probe.investigation_completed", 1).await;
    assert_eq!(completed[0].details["dm_status"], "failed_send");
    // The incident this critical issue opens sends its own notices (from
    // their own `notice.requested` rows); wait for the wake notice's delivery.
    let wake_sent = || {
        rows(dir.path(), "notification.sent")
            .into_iter()
            .filter(|row| row.details["wake_seq"] == completed[0].details["wake_seq"])
            .collect::<Vec<_>>()
    };
    assert!(support::eventually(WAIT, || std::future::ready(!wake_sent().is_empty())).await);
    let sent = wake_sent();
    assert_eq!(sent[0].details["redelivered"], true);
    assert!(!rows(dir.path(), "notification.failed").is_empty());
    assert_eq!(
        ops.wake_delivered_by_key()
            .values()
            .copied()
            .collect::<Vec<_>>(),
        [1]
    );
    // The cursor passes the row only once the notice is delivered.
    let wake_seq = completed[0].details["wake_seq"].as_u64().unwrap();
    assert!(
        support::eventually(WAIT, || {
            let cursor = warden.wake.snapshot().cursor;
            async move { cursor >= wake_seq }
        })
        .await
    );
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_from_a_429_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let target = Switchable::start(503).await;
    let ops = Receiver::start().await;
    ops.script(&[(429, Some("1"))]);
    // An info issue opens no incident, so the only request is the wake notice.
    let config = format!(
        "{}\n{}",
        failing_probe(&target.url).replace(
            "timeout = \"80ms\"\n",
            "timeout = \"80ms\"\nseverity = \"info\"\n"
        ),
        // Retry-After is honoured up to four times backoff_max.
        webhook("ops", &ops.url, "").replace("backoff_max = \"50ms\"", "backoff_max = \"5s\"")
    );
    let warden = start(dir.path(), &config).await;
    wait_rows(dir.path(), "notification.sent", 1).await;
    let received = ops.received_wake();
    assert_eq!(received[0].answered, 429);
    assert_eq!(received[1].answered, 200);
    let waited = received[1].at.duration_since(received[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_issue_gets_no_more_reminders() {
    let dir = tempfile::tempdir().unwrap();
    let target = Switchable::start(503).await;
    let ops = Receiver::start().await;
    let config = format!(
        "{}\n{}",
        failing_probe(&target.url).replace(
            "failure_threshold = 2\n",
            "failure_threshold = 2\nremind_after = \"300ms\"\nremind_max = \"300ms\"\n"
        ),
        webhook("ops", &ops.url, ""),
    );
    let warden = start(dir.path(), &config).await;
    let wakes = wait_rows(dir.path(), "probe.wake_requested", 2).await;
    assert_eq!(wakes[1].details["kind"], "reminder");
    let session = wakes[0].caller_session_id.clone().unwrap();

    let client = reqwest::Client::new();
    let base = format!("http://{}", warden.addr);
    let denied = client
        .post(format!("{base}/api/issues/{session}/ack"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    let unknown = client
        .post(format!("{base}/api/issues/probe:nope:x:1/ack"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let acked = client
        .post(format!("{base}/api/issues/{session}/ack"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "note": "looking at it", "author": "sam" }))
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status(), 200);
    let ack_seq = acked.json::<serde_json::Value>().await.unwrap()["seq"]
        .as_u64()
        .unwrap();
    let issues: serde_json::Value = client
        .get(format!("{base}/api/issues"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(issues["issues"][0]["acknowledged"], true);

    // Several reminder periods of probing later: no reminder after the ack.
    let hits = target.hits();
    assert!(
        support::eventually(WAIT, || {
            let now = target.hits();
            async move { now >= hits + 15 }
        })
        .await
    );
    let later: Vec<AuditRow> = rows(dir.path(), "probe.wake_requested")
        .into_iter()
        .filter(|r| r.seq > ack_seq)
        .collect();
    assert!(later.is_empty(), "reminders after the ack: {later:#?}");
    assert_eq!(rows(dir.path(), "issue.acknowledged").len(), 1);
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_investigator_hears_of_the_components_other_open_issues_as_of_the_wake() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (Switchable::start(503).await, Switchable::start(200).await);
    let investigator = Receiver::start().await;
    investigator.reply(serde_json::json!({ "summary": "two probes down" }));
    let config = format!(
        "[debounce]\nfailure_threshold = 2\n\n\
         [[probes]]\nname = \"api\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"100ms\"\ntimeout = \"80ms\"\ncomponent = \"shop\"\n\n\
         [[probes]]\nname = \"checkout\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"100ms\"\ntimeout = \"80ms\"\ncomponent = \"shop\"\n\n\
         [investigator]\nkind = \"webhook\"\nurl = \"{}\"\ntimeout = \"5s\"\n",
        first.url, second.url, investigator.url
    );
    let warden = start(dir.path(), &config).await;
    let first_wake = wait_rows(dir.path(), "probe.wake_requested", 1).await;
    assert_eq!(first_wake[0].details["probe"], "api");
    assert!(
        first_wake[0].details.get("open_issues").is_none(),
        "nothing else was open: {:#?}",
        first_wake[0]
    );
    second.set(503);
    let wakes = wait_rows(dir.path(), "probe.wake_requested", 2).await;
    let listed = &wakes[1].details["open_issues"];
    assert_eq!(listed[0]["probe"], "api", "{:#?}", wakes[1]);
    assert_eq!(
        listed[0]["caller_session_id"].as_str(),
        first_wake[0].caller_session_id.as_deref()
    );
    // The investigator is told what the row says, not what is open when it reads it.
    first.set(200);
    assert!(
        support::eventually(WAIT, || {
            let got = investigator.received().iter().any(|r| {
                r.body["probe"] == "checkout" && r.body["open_issues"][0]["probe"] == "api"
            });
            async move { got }
        })
        .await,
        "{:#?}",
        investigator.received()
    );
    warden.shutdown().await.unwrap();
}
