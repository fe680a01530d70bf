#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::*;
use crate::settings::ProbeKind;

#[test]
fn coarse_keeps_the_two_largest_units() {
    assert_eq!(coarse(Duration::from_secs(3723)), "1h 2m");
    assert_eq!(
        coarse(Duration::from_secs(6 * 86_400 + 23 * 3600 + 59)),
        "6d 23h"
    );
    assert_eq!(coarse(Duration::from_secs(3600 + 5)), "1h");
    assert_eq!(coarse(Duration::from_millis(45_300)), "45s 300ms");
    assert_eq!(coarse(Duration::from_millis(300)), "300ms");
    assert_eq!(coarse(Duration::ZERO), "0s");
}

#[test]
fn timed_out_uses_humantime() {
    assert_eq!(timed_out(Duration::from_millis(80)), "timed out after 80ms");
}

#[tokio::test]
async fn build_rejects_a_probe_without_kind() {
    let ctx = CheckContext {
        http: super::super::http_client().unwrap(),
        heartbeats: Heartbeats::default(),
    };
    let probe = ProbeSettings {
        name: "p".into(),
        ..ProbeSettings::default()
    };
    let err = Check::build(&probe, &ProbeDefaults::default(), &ctx)
        .err()
        .unwrap();
    assert_eq!(err.to_string(), "probe p: no kind set");
}

#[tokio::test]
async fn timeout_comes_from_the_probe_or_the_defaults() {
    let ctx = CheckContext {
        http: super::super::http_client().unwrap(),
        heartbeats: Heartbeats::default(),
    };
    let mut probe = ProbeSettings {
        name: "p".into(),
        kind: Some(ProbeKind::Heartbeat),
        max_silence: Some(Duration::from_secs(60)),
        ..ProbeSettings::default()
    };
    let defaults = ProbeDefaults::default();
    let check = Check::build(&probe, &defaults, &ctx).unwrap();
    assert_eq!(check.timeout(), defaults.timeout);
    probe.timeout = Some(Duration::from_millis(250));
    let check = Check::build(&probe, &defaults, &ctx).unwrap();
    assert_eq!(check.timeout(), Duration::from_millis(250));
}

fn assert_send_sync<T: Send + Sync + 'static>() {}

#[test]
fn check_and_error_are_send_sync() {
    assert_send_sync::<Check>();
    assert_send_sync::<ProbeError>();
    assert_send_sync::<CheckContext>();
}

fn context() -> CheckContext {
    CheckContext {
        http: super::super::http_client().unwrap(),
        heartbeats: Heartbeats::default(),
    }
}

#[tokio::test]
async fn run_bounds_a_command_by_the_probe_timeout_and_measures_latency() {
    let probe = ProbeSettings {
        name: "slow".into(),
        kind: Some(ProbeKind::Command),
        command: vec!["sleep".into(), "5".into()],
        timeout: Some(Duration::from_millis(90)),
        ..ProbeSettings::default()
    };
    let check = Check::build(&probe, &ProbeDefaults::default(), &context()).unwrap();
    let outcome = check.run().await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(
        outcome.reasons,
        vec!["timed out after 90ms (process killed)"]
    );
    let latency = outcome.facts.latency;
    assert!(latency >= Duration::from_millis(90), "{latency:?}");
    assert!(latency < Duration::from_millis(600), "{latency:?}");
}

#[tokio::test]
async fn run_reports_tcp_outcomes_with_latency() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let probe = ProbeSettings {
        name: "port".into(),
        kind: Some(ProbeKind::Tcp),
        address: Some(listener.local_addr().unwrap().to_string()),
        ..ProbeSettings::default()
    };
    let check = Check::build(&probe, &ProbeDefaults::default(), &context()).unwrap();
    let outcome = check.run().await;
    assert_eq!(outcome.verdict, Health::Healthy);
    assert_eq!(outcome.facts.connected, Some(true));
    assert!(outcome.facts.latency > Duration::ZERO);
}

#[tokio::test]
async fn missing_fields_are_build_errors() {
    let probe = ProbeSettings {
        name: "port".into(),
        kind: Some(ProbeKind::Tcp),
        ..ProbeSettings::default()
    };
    let err = Check::build(&probe, &ProbeDefaults::default(), &context())
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "probe port: address is required for kind tcp"
    );
}
