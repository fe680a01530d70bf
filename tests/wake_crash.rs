//! Exactly-once notices across a crash, with the real binary: 200 issues fire
//! at once, the notifier is slow, Warden is `kill -9`ed in the middle of the
//! burst and restarted. Every issue must reach the receiver, and none twice
//! beyond what was in flight at the moment of the kill (those repeat with the
//! same idempotency key, which is what the key is for).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::process;
use support::receiver::Receiver;
use support::targets::Switchable;
use warden::audit::AuditReader;

const PROBES: usize = 200;
const MAX_CONCURRENCY: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_a_burst_of_wakes_loses_no_notice_and_repeats_none() {
    let dir = tempfile::tempdir().unwrap();
    let target = Switchable::start(503).await;
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(20));
    let extra = process::burst_config(&receiver.url, &target.url, PROBES, MAX_CONCURRENCY);
    let config = process::write_config(dir.path(), &extra);

    let mut warden = process::start(&config).await;
    assert!(
        support::eventually(Duration::from_secs(60), || {
            let delivered = receiver.wake_delivered_by_key().len();
            async move { delivered >= 40 }
        })
        .await,
        "the first notices did not arrive"
    );
    warden.child.kill().await.unwrap(); // SIGKILL, mid-burst
    let before_restart = receiver.wake_delivered_by_key().len();

    let mut warden = process::start(&config).await;
    let all = support::eventually(Duration::from_secs(120), || {
        let delivered = receiver.wake_delivered_by_key().len();
        async move { delivered >= PROBES }
    })
    .await;
    let delivered = receiver.wake_delivered_by_key();
    assert!(
        all,
        "only {} of {PROBES} issues reached the receiver",
        delivered.len()
    );
    process::terminate(&warden.child);
    let _ = tokio::time::timeout(Duration::from_secs(30), warden.child.wait()).await;

    // Each wake row of the log reached the receiver under its own key.
    let reader = AuditReader::open(&dir.path().join("var/audit")).unwrap();
    let wakes: BTreeSet<String> = reader
        .rows_from(1, Some("probe.wake_requested"))
        .filter_map(Result::ok)
        .map(|row| format!("warden-{}", row.seq))
        .collect();
    assert_eq!(
        wakes.len(),
        PROBES,
        "one issue per probe, none woken again after the restart"
    );
    let keys: BTreeSet<String> = delivered.keys().cloned().collect();
    assert_eq!(keys, wakes);
    // Repeats only for notices in flight at the kill, and always with the same key.
    let repeated = delivered.values().filter(|n| **n > 1).count();
    eprintln!(
        "wake crash test: {before_restart} delivered before the kill, {} after, {repeated} repeated (same key)",
        delivered.len()
    );
    assert!(
        repeated <= MAX_CONCURRENCY,
        "{repeated} notices repeated: {delivered:?}"
    );
}
