//! A person hears each fact once: the embedded default configuration, run
//! by the real binary with Slack and PagerDuty notifiers pointed at local
//! receivers, through one outage of its demo component.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::instance::rows;
use support::process;
use support::receiver::Receiver;

/// `config/default.toml` as shipped, on its own ports and state dir, with
/// the demo probe checking every 200 ms instead of every 5 s, plus the two
/// notifiers.
fn default_config(
    dir: &std::path::Path,
    slack: &str,
    pagerduty: &str,
) -> (std::path::PathBuf, u16) {
    let (api, demo) = (support::free_port(), support::free_port());
    let shipped = include_str!("../config/default.toml");
    for needle in [
        "state_dir = \"./var\"",
        "127.0.0.1:9400",
        "127.0.0.1:9401",
        "run = [\"warden\",",
        "interval = \"5s\"\ntimeout = \"2s\"",
    ] {
        assert!(shipped.contains(needle), "default.toml changed: {needle}");
    }
    let text = shipped
        .replace(
            "state_dir = \"./var\"",
            &format!("state_dir = \"{}\"", dir.join("var").display()),
        )
        .replace("127.0.0.1:9400", &format!("127.0.0.1:{api}"))
        .replace("127.0.0.1:9401", &format!("127.0.0.1:{demo}"))
        .replace(
            "run = [\"warden\",",
            &format!("run = [\"{}\",", process::warden_bin().display()),
        )
        .replace(
            "interval = \"5s\"\ntimeout = \"2s\"",
            "interval = \"200ms\"\ntimeout = \"150ms\"",
        )
        .replace("log_format = \"human\"", "log_format = \"json\"");
    let text = format!(
        "{text}\n[[notifiers]]\nname = \"slack\"\nkind = \"slack\"\nurl = \"{slack}\"\n\n\
         [[notifiers]]\nname = \"pagerduty\"\nkind = \"pagerduty\"\nurl = \"{pagerduty}\"\n\
         routing_key = \"test-routing-key-0123456789\"\nmin_severity = \"warning\"\n"
    );
    let path = dir.join("warden.toml");
    std::fs::write(&path, text).unwrap();
    (path, demo)
}

async fn control(demo: u16, action: &str) {
    let url = format!("http://127.0.0.1:{demo}/control/{action}");
    let answer = reqwest::Client::new().post(url).send().await.unwrap();
    assert!(
        answer.status().is_success(),
        "{action}: {}",
        answer.status()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_outage_of_the_demo_is_one_pagerduty_incident_and_at_most_three_slack_posts() {
    let dir = tempfile::tempdir().unwrap();
    let (slack, pagerduty) = (Receiver::start().await, Receiver::start().await);
    let (config, demo) = default_config(dir.path(), &slack.url, &pagerduty.url);
    let mut warden = process::start(&config).await;
    assert!(
        support::eventually(Duration::from_secs(30), || async {
            reqwest::get(format!("http://127.0.0.1:{demo}/health"))
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await,
        "the demo target never came up"
    );

    control(demo, "fail").await;
    support::instance::wait_rows(dir.path(), "probe.wake_requested", 1).await;
    control(demo, "recover").await;
    support::instance::wait_rows(dir.path(), "probe.resolved", 1).await;
    // Everything the outage set off has been told once it is all settled:
    // the issue's and any incident's resolution reached PagerDuty.
    let settled = support::eventually(Duration::from_secs(60), || {
        let open = rows(dir.path(), "incident.opened").len();
        let closed = rows(dir.path(), "incident.resolved").len();
        let resolves = pagerduty
            .received()
            .iter()
            .filter(|r| r.body["event_action"] == "resolve")
            .count();
        std::future::ready(open == closed && resolves >= 1)
    })
    .await;
    process::terminate(&warden.child);
    let _ = tokio::time::timeout(Duration::from_secs(30), warden.child.wait()).await;

    let events: Vec<(String, String)> = pagerduty
        .received()
        .iter()
        .map(|r| {
            (
                r.body["event_action"].as_str().unwrap_or("").to_owned(),
                r.body["dedup_key"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let seams: Vec<String> = rows(dir.path(), "*")
        .iter()
        .filter(|r| {
            r.seam.starts_with("incident.")
                || r.seam.starts_with("notification.")
                || r.seam.starts_with("escalation.")
                || r.seam.starts_with("probe.wake")
                || r.seam == "probe.resolved"
        })
        .map(|r| format!("{} {}", r.seq, r.seam))
        .collect();
    assert!(settled, "never settled: {events:?}\n{seams:#?}");
    let triggers: Vec<_> = events.iter().filter(|(a, _)| a == "trigger").collect();
    let resolves: Vec<_> = events.iter().filter(|(a, _)| a == "resolve").collect();
    assert_eq!(triggers.len(), 1, "{events:?}\n{seams:#?}");
    assert_eq!(resolves.len(), 1, "{events:?}\n{seams:#?}");
    assert_eq!(triggers[0].1, resolves[0].1, "one dedup_key: {events:?}");
    let posts = slack.received();
    assert!(
        (1..=3).contains(&posts.len()),
        "{} Slack posts: {:#?}\n{seams:#?}",
        posts.len(),
        posts
            .iter()
            .map(|p| p.body["text"].clone())
            .collect::<Vec<_>>()
    );
    // What was folded is on record, not lost.
    assert!(
        !rows(dir.path(), "notification.sent").is_empty(),
        "{seams:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_issue_is_acknowledged_in_pagerduty_under_the_same_dedup_key() {
    let dir = tempfile::tempdir().unwrap();
    let target = support::targets::Switchable::start(503).await;
    let pagerduty = Receiver::start().await;
    let config = format!(
        "[debounce]\nfailure_threshold = 2\n\n[[probes]]\nname = \"site\"\nkind = \"http\"\nurl = \"{}\"\n\
         interval = \"100ms\"\ntimeout = \"80ms\"\nseverity = \"critical\"\n\n\
         [[notifiers]]\nname = \"pagerduty\"\nkind = \"pagerduty\"\nurl = \"{}\"\nrouting_key = \"test-routing-key-0123456789\"\n",
        target.url, pagerduty.url
    );
    let warden = support::instance::start(dir.path(), &config).await;
    let wake = support::instance::wait_rows(dir.path(), "probe.wake_requested", 1).await;
    let session = wake[0].caller_session_id.clone().unwrap();
    let answer = reqwest::Client::new()
        .post(format!("http://{}/api/issues/{session}/ack", warden.addr))
        .bearer_auth(process::TOKEN)
        .json(&serde_json::json!({ "author": "ana", "note": "on it" }))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    let acknowledged = support::eventually(Duration::from_secs(30), || {
        let done = pagerduty
            .received()
            .iter()
            .any(|r| r.body["event_action"] == "acknowledge");
        std::future::ready(done)
    })
    .await;
    let events: Vec<(String, String)> = pagerduty
        .received()
        .iter()
        .map(|r| {
            (
                r.body["event_action"].as_str().unwrap_or("").to_owned(),
                r.body["dedup_key"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(acknowledged, "{events:?}");
    assert_eq!(
        events[0],
        ("trigger".to_owned(), session.clone()),
        "{events:?}"
    );
    assert!(
        events.iter().all(|(_, key)| *key == session),
        "one dedup_key for the whole story: {events:?}"
    );
    warden.shutdown().await.unwrap();
}

/// Rows of `seam` whose notice kind is `kind`.
fn of_kind(dir: &std::path::Path, seam: &str, kind: &str) -> usize {
    rows(dir, seam)
        .iter()
        .filter(|r| r.details["kind"] == kind || r.details["notice"]["kind"] == kind)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_notice_refused_before_a_kill_9_is_delivered_once_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let target = support::targets::Switchable::start(503).await;
    let ops = Receiver::start().await;
    ops.script(&[(503, None); 64]);
    // No redelivery round before the kill: what reaches the receiver after
    // the restart comes from the log, not from a timer of the old process.
    let config = process::write_config(
        dir.path(),
        &format!(
            "[debounce]\nfailure_threshold = 1\n\n[wake]\nredeliver_every = \"1h\"\n\n\
             [[probes]]\nname = \"site\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"100ms\"\n\
             timeout = \"80ms\"\nseverity = \"critical\"\n\n\
             [[notifiers]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{}\"\nretries = 0\n",
            target.url, ops.url
        ),
    );
    let mut warden = process::start(&config).await;
    let failed = support::eventually(Duration::from_secs(30), || {
        let n = of_kind(dir.path(), "notification.failed", "incident_opened");
        std::future::ready(n >= 1)
    })
    .await;
    assert!(failed, "the incident's opening notice was never refused");
    assert_eq!(
        of_kind(dir.path(), "notice.requested", "incident_opened"),
        1
    );
    warden.child.start_kill().unwrap();
    warden.child.wait().await.unwrap();

    ops.script(&[]);
    let mut again = process::start(&config).await;
    let delivered = support::eventually(Duration::from_secs(30), || {
        let n = of_kind(dir.path(), "notification.sent", "incident_opened");
        std::future::ready(n >= 1)
    })
    .await;
    let opened: Vec<usize> = ops
        .delivered_by_key()
        .iter()
        .filter(|(key, _)| key.contains("incident_opened"))
        .map(|(_, n)| *n)
        .collect();
    process::terminate(&again.child);
    let _ = tokio::time::timeout(Duration::from_secs(30), again.child.wait()).await;
    assert!(
        delivered,
        "the opening notice was not delivered after the restart"
    );
    assert_eq!(opened, [1], "delivered once, under one key");
    assert_eq!(
        of_kind(dir.path(), "notice.requested", "incident_opened"),
        1,
        "the restart asked for nothing twice"
    );
}
