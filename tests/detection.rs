//! Detection end to end, in-process: real probes against loopback targets and
//! real commands, the debouncer, and the durable rows it writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::instance::{WAIT, rows, start, wait_rows};

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::targets::{Misbehaviour, Switchable, misbehaving};
use warden::audit::AuditRow;
use warden::messages::Health;

fn kinds(rows: &[AuditRow]) -> Vec<String> {
    rows.iter()
        .map(|r| r.details["kind"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn http_probe(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[probes]]\nname = \"{name}\"\nkind = \"http\"\nurl = \"{url}\"\ninterval = \"100ms\"\ntimeout = \"80ms\"\n{extra}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_wakes_once_reminds_resolves_and_a_relapse_in_the_window_is_suppressed() {
    let dir = tempfile::tempdir().unwrap();
    let target = Switchable::start(200).await;
    let config = format!(
        "[debounce]\nfailure_threshold = 3\nrecovery_threshold = 2\nwindow = \"10m\"\nremind_after = \"700ms\"\nremind_max = \"5s\"\n\n{}",
        http_probe("api", &target.url, "")
    );
    let warden = start(dir.path(), &config).await;
    assert!(
        support::eventually(WAIT, || {
            let healthy = warden
                .latest
                .get("api")
                .is_some_and(|o| o.status == Health::Healthy);
            async move { healthy }
        })
        .await
    );

    target.set(503);
    let wakes = wait_rows(dir.path(), "probe.wake_requested", 1).await;
    let fired = &wakes[0];
    assert_eq!(fired.details["kind"], "fired");
    assert_eq!(fired.details["consecutive_failures"], 3);
    assert_eq!(fired.details["category"], "service_unhealthy");
    assert_eq!(fired.details["severity"], "critical");
    assert!(
        fired.details["detail"].as_str().unwrap().contains("503"),
        "{}",
        fired.details
    );
    let session = fired.caller_session_id.clone().unwrap();
    assert_eq!(
        session,
        format!("probe:api:service_unhealthy:{}", fired.seq)
    );

    // Still failing: a reminder after remind_after, never a second "fired".
    let wakes = wait_rows(dir.path(), "probe.wake_requested", 2).await;
    assert_eq!(kinds(&wakes), ["fired", "reminder"]);
    assert_eq!(
        wakes[1].caller_session_id.as_deref(),
        Some(session.as_str())
    );

    target.set(200);
    let resolved = wait_rows(dir.path(), "probe.resolved", 1).await;
    assert_eq!(
        resolved[0].caller_session_id.as_deref(),
        Some(session.as_str())
    );

    // A relapse within the window is recorded, not woken.
    target.set(503);
    let suppressed = wait_rows(dir.path(), "probe.wake_suppressed", 1).await;
    assert_eq!(suppressed[0].details["suppression"]["reason"], "window");
    assert_eq!(
        kinds(&rows(dir.path(), "probe.wake_requested"))
            .iter()
            .filter(|k| *k == "fired")
            .count(),
        1
    );
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_target_wakes_once_as_flapping() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("n");
    std::fs::write(&counter, "0").unwrap();
    // Alternates success and failure on every run: a textbook flap.
    let script = format!(
        "n=$(cat {c}); echo $((n+1)) > {c}; [ $((n % 2)) -eq 0 ]",
        c = counter.display()
    );
    let config = format!(
        "[debounce]\nfailure_threshold = 3\nflap_threshold = 4\nflap_window = \"30s\"\n\n[[probes]]\nname = \"flappy\"\nkind = \"command\"\ncommand = [\"sh\", \"-c\", {script:?}]\ninterval = \"100ms\"\ntimeout = \"90ms\"\n"
    );
    let warden = start(dir.path(), &config).await;
    wait_rows(dir.path(), "probe.flapping", 1).await;
    // Let it flap ten more times: still exactly one flapping wake, and no issue fired.
    let runs = |path: &Path| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let seen = runs(&counter);
    assert!(
        support::eventually(WAIT, || {
            let now = runs(&counter);
            async move { now >= seen + 10 }
        })
        .await
    );
    assert_eq!(rows(dir.path(), "probe.flapping").len(), 1);
    assert!(rows(dir.path(), "probe.wake_requested").is_empty());
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependant_of_a_down_dependency_is_suppressed() {
    let dir = tempfile::tempdir().unwrap();
    let web = Switchable::start(503).await;
    // A port nothing listens on: the database is down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = format!(
        "[[probes]]\nname = \"db\"\nkind = \"tcp\"\naddress = \"{closed}\"\ninterval = \"100ms\"\ntimeout = \"80ms\"\ndebounce = {{ failure_threshold = 2 }}\n\n{}\n[[components]]\nname = \"db\"\nprobes = [\"db\"]\n\n[[components]]\nname = \"web\"\nprobes = [\"web\"]\ndepends_on = [\"db\"]\n",
        http_probe("web", &web.url, "debounce = { failure_threshold = 6 }")
    );
    let warden = start(dir.path(), &config).await;
    let suppressed = wait_rows(dir.path(), "probe.wake_suppressed", 1).await;
    assert_eq!(suppressed[0].details["probe"], "web");
    assert_eq!(suppressed[0].details["suppression"]["reason"], "dependency");
    assert_eq!(suppressed[0].details["suppression"]["suppressed_by"], "db");
    let woken: Vec<String> = rows(dir.path(), "probe.wake_requested")
        .iter()
        .map(|r| r.details["probe"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(woken, ["db"]);
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintenance_window_records_without_waking() {
    let dir = tempfile::tempdir().unwrap();
    let target = Switchable::start(503).await;
    let now = jiff::Timestamp::now();
    let config = format!(
        "{}\n[[maintenance]]\nname = \"upgrade\"\ncomponents = [\"api\"]\nstart = \"{}\"\nend = \"{}\"\n",
        http_probe("api", &target.url, ""),
        now - jiff::SignedDuration::from_hours(1),
        now + jiff::SignedDuration::from_hours(1)
    );
    let warden = start(dir.path(), &config).await;
    let suppressed = wait_rows(dir.path(), "probe.wake_suppressed", 1).await;
    assert_eq!(
        suppressed[0].details["suppression"]["reason"],
        "maintenance"
    );
    assert_eq!(
        suppressed[0].details["suppression"]["suppressed_by"],
        "upgrade"
    );
    assert!(rows(dir.path(), "probe.wake_requested").is_empty());
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_debouncer_mid_count_loses_no_count() {
    let dir = tempfile::tempdir().unwrap();
    let target = Switchable::start(503).await;
    let config = http_probe("api", &target.url, "debounce = { failure_threshold = 8 }");
    let warden = start(dir.path(), &config).await;
    let name = warden.names.of("debouncer");
    // Kill it twice while the count runs.
    for _ in 0..2 {
        assert!(
            support::eventually(WAIT, || {
                let hits = target.hits();
                async move { hits >= 2 }
            })
            .await
        );
        if let Some(debouncer) = ractor::registry::where_is(name.clone()) {
            debouncer.kill();
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let wakes = wait_rows(dir.path(), "probe.wake_requested", 1).await;
    assert_eq!(wakes[0].details["consecutive_failures"], 8);
    let restarted = rows(dir.path(), "supervision.restarted");
    assert!(
        restarted.iter().any(|r| r.details["child"] == "debouncer"),
        "{restarted:#?}"
    );
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_across_a_restart_is_not_woken_again_and_still_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let target = Switchable::start(503).await;
    let config = http_probe("api", &target.url, "");
    let warden = start(dir.path(), &config).await;
    let fired = wait_rows(dir.path(), "probe.wake_requested", 1).await;
    let session = fired[0].caller_session_id.clone();
    warden.shutdown().await.unwrap();

    let warden = start(dir.path(), &config).await;
    let hits = target.hits();
    // Several more failing cycles than the threshold.
    assert!(
        support::eventually(WAIT, || {
            let now = target.hits();
            async move { now >= hits + 8 }
        })
        .await
    );
    assert_eq!(
        rows(dir.path(), "probe.wake_requested").len(),
        1,
        "the outage was woken again"
    );
    target.set(200);
    let resolved = wait_rows(dir.path(), "probe.resolved", 1).await;
    assert_eq!(resolved[0].caller_session_id, session);
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn misbehaving_targets_are_unhealthy_with_clear_reasons_and_others_keep_cadence() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = Switchable::start(200).await;
    let mut config = http_probe("steady", &healthy.url, "");
    for (name, how) in [
        ("hang", Misbehaviour::Hang),
        ("huge", Misbehaviour::Huge),
        ("garbage", Misbehaviour::InvalidUtf8),
        ("cut", Misbehaviour::ClosesMidResponse),
    ] {
        let url = misbehaving(how).await;
        config.push_str(&http_probe(
            name,
            &url,
            "unhealthy_if = [\"body contains \\\"never\\\"\"]",
        ));
    }
    let warden = start(dir.path(), &config).await;
    let started = healthy.hits();
    let all_seen = support::eventually(WAIT, || {
        let seen = ["hang", "huge", "garbage", "cut"]
            .iter()
            .all(|p| warden.latest.contains_key(*p));
        async move { seen }
    })
    .await;
    assert!(all_seen);
    tokio::time::sleep(Duration::from_secs(2)).await; // a fixed observation period for the cadence check
    let served = healthy.hits() - started;
    assert!(
        served >= 12,
        "the healthy probe ran only {served} checks in 2s at a 100ms interval"
    );
    let reason = |probe: &str| {
        let o = warden.latest.get(probe).unwrap().clone();
        (o.status, o.reasons.join("; "))
    };
    let (status, why) = reason("hang");
    assert_eq!(status, Health::Unhealthy, "{why}");
    assert!(why.contains("timed out"), "{why}");
    let (status, why) = reason("cut");
    assert_eq!(status, Health::Unhealthy, "{why}");
    let (status, why) = reason("huge");
    assert_eq!(status, Health::Unhealthy, "{why}");
    let (status, why) = reason("garbage");
    assert_eq!(status, Health::Unhealthy, "{why}");
    assert!(why.contains("UTF-8"), "{why}");
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_arrive_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[[probes]]\nname = \"nightly\"\nkind = \"heartbeat\"\nmax_silence = \"1h\"\ninterval = \"100ms\"\ntimeout = \"50ms\"\n";
    let warden = start(dir.path(), config).await;
    let client = reqwest::Client::new();
    let base = format!("http://{}", warden.addr);
    let response = client
        .post(format!("{base}/api/heartbeats/nightly"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .post(format!("{base}/api/heartbeats/nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(
        support::eventually(WAIT, || {
            let healthy = warden
                .latest
                .get("nightly")
                .is_some_and(|o| o.status == Health::Healthy);
            async move { healthy }
        })
        .await
    );
    let probes: Value = client
        .get(format!("{base}/api/probes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(probes["probes"][0]["name"], "nightly");
    assert_eq!(probes["probes"][0]["latest"]["status"], "healthy");
    let one: Value = client
        .get(format!("{base}/api/probes/nightly"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["kind"], "heartbeat");
    let missing = client
        .get(format!("{base}/api/probes/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wake_written_late_shows_the_observation_that_crossed_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let first = Switchable::start(503).await;
    let late = Switchable::start(503).await;
    let config = format!(
        "[chaos]\nenabled = true\n\n{}{}",
        http_probe("first", &first.url, "debounce = { failure_threshold = 1 }"),
        http_probe("late", &late.url, "")
    );
    let warden = start(dir.path(), &config).await;
    // The disk is "full" for the next six writes (about 2.5 s of retries).
    // The debouncer waits on `first`'s wake row meanwhile, so `late`'s
    // failures queue up behind it and are counted only after `late` has
    // recovered: its wake row must still show a failing observation.
    warden
        .chaos
        .as_ref()
        .unwrap()
        .inject(&warden::chaos::ChaosFault::AuditWriteErrors {
            count: 6,
            partial: true,
        })
        .unwrap();
    assert!(
        support::eventually(WAIT, || {
            let hits = late.hits();
            async move { hits >= 4 }
        })
        .await
    );
    late.set(200);
    let wakes = wait_rows(dir.path(), "probe.wake_requested", 2).await;
    let wake = wakes
        .iter()
        .find(|row| row.details["probe"] == "late")
        .unwrap();
    assert_eq!(
        wake.details["observation"]["details"]["status"], 503,
        "{:#}",
        wake.details
    );
    assert!(
        wake.details["detail"].as_str().unwrap().contains("503"),
        "{:#}",
        wake.details
    );
    warden.shutdown().await.unwrap();
}
