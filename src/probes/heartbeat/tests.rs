#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::*;
use crate::settings::ProbeKind;

fn probe(name: &str, max_silence: Duration) -> ProbeSettings {
    ProbeSettings {
        name: name.into(),
        kind: Some(ProbeKind::Heartbeat),
        max_silence: Some(max_silence),
        ..ProbeSettings::default()
    }
}

#[tokio::test(start_paused = true)]
async fn silence_counts_from_registration() {
    let beats = Heartbeats::default();
    let check =
        HeartbeatCheck::build(&probe("hb", Duration::from_secs(3600)), beats.clone()).unwrap();
    assert!(beats.last("hb").is_some(), "build registers the probe");
    let outcome = check.run();
    assert_eq!(outcome.verdict, Health::Healthy);
    assert_eq!(outcome.facts.since_last_heartbeat, Some(Duration::ZERO));

    tokio::time::advance(Duration::from_secs(3600 + 120)).await;
    let outcome = check.run();
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(
        outcome.reasons,
        vec!["no heartbeat for 1h 2m (max_silence 1h): none received since the probe started"]
    );
    assert_eq!(
        outcome.facts.since_last_heartbeat,
        Some(Duration::from_secs(3720))
    );
}

#[tokio::test(start_paused = true)]
async fn a_recent_beat_is_healthy_and_a_stale_one_is_not() {
    let beats = Heartbeats::default();
    let check =
        HeartbeatCheck::build(&probe("hb", Duration::from_secs(60)), beats.clone()).unwrap();
    tokio::time::advance(Duration::from_secs(50)).await;
    beats.beat("hb");
    tokio::time::advance(Duration::from_secs(30)).await;
    let outcome = check.run();
    assert_eq!(outcome.verdict, Health::Healthy);
    assert_eq!(
        outcome.facts.since_last_heartbeat,
        Some(Duration::from_secs(30))
    );

    tokio::time::advance(Duration::from_secs(61)).await;
    let outcome = check.run();
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(
        outcome.reasons,
        vec!["no heartbeat for 1m 31s (max_silence 1m): the last one arrived 1m 31s ago"]
    );
}

#[tokio::test(start_paused = true)]
async fn register_keeps_an_existing_beat() {
    let beats = Heartbeats::default();
    beats.beat("hb");
    let first = beats.last("hb");
    tokio::time::advance(Duration::from_secs(5)).await;
    beats.register("hb");
    assert_eq!(beats.last("hb"), first);
    assert_eq!(beats.last("other"), None);
}
