#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::time::Instant;
use warden_supervisors::LadderStep;

use super::output::{OUTPUT_FILE, Stream, pump, spawn_writer};
use super::process::parse_signal;
use super::*;
use crate::settings::ComponentSettings;

fn component(name: &str, run: bool, depends_on: &[&str]) -> ComponentSettings {
    ComponentSettings {
        name: name.to_owned(),
        run: if run {
            vec!["true".to_owned()]
        } else {
            Vec::new()
        },
        depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
        ..ComponentSettings::default()
    }
}

#[test]
fn start_order_puts_dependencies_first_and_keeps_config_order() {
    let components = vec![
        component("web", true, &["db", "cache"]),
        component("cache", true, &[]),
        component("db", true, &["disk"]),
        component("disk", false, &["volume"]),
        component("volume", true, &[]),
        component("batch", true, &[]),
    ];
    assert_eq!(
        start_order(&components),
        vec!["cache", "volume", "db", "web", "batch"]
    );
}

#[test]
fn start_order_skips_unmanaged_and_survives_cycles_and_unknown_names() {
    let components = vec![
        component("a", true, &["b", "ghost"]),
        component("b", true, &["a"]),
        component("c", false, &[]),
        component("d", true, &[]),
    ];
    assert_eq!(start_order(&components), vec!["d", "a", "b"]);
    assert!(start_order(&[]).is_empty());
}

#[test]
fn restart_ladder_is_immediate_then_backs_off_then_fatal() {
    let settings = crate::settings::RestartSettings {
        max_restarts: 3,
        period: Duration::from_secs(10),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(30),
        backoff_jitter: 0.0,
        stable_after: Duration::from_secs(30),
    };
    let mut state = restart_ladder(&settings).state();
    let now = Instant::now();
    let delays: Vec<LadderStep> = (0..4).map(|_| state.on_failure(now)).collect();
    let expect = |attempt, ms| LadderStep::Retry {
        rung: "restart".into(),
        attempt,
        delay: Duration::from_millis(ms),
    };
    assert_eq!(
        delays,
        vec![
            expect(1, 0),
            expect(2, 20),
            expect(3, 30),
            LadderStep::Exhausted
        ]
    );
    // After the period, the window is empty again.
    let mut state = restart_ladder(&settings).state();
    for at in 0..10 {
        let step = state.on_failure(now + Duration::from_secs(11 * at));
        assert!(
            matches!(step, LadderStep::Retry { attempt: 1, .. }),
            "{step:?}"
        );
    }
}

#[test]
fn signals_parse_with_or_without_prefix() {
    use nix::sys::signal::Signal;
    assert_eq!(parse_signal("TERM"), Some(Signal::SIGTERM));
    assert_eq!(parse_signal("sigint"), Some(Signal::SIGINT));
    assert_eq!(parse_signal("USR2"), Some(Signal::SIGUSR2));
    assert_eq!(parse_signal("NOPE"), None);
}

#[test]
fn events_name_their_seam_and_serialize_flat() {
    let event = ManagedEvent::Exited {
        component: "web".into(),
        pid: 7,
        code: None,
        signal: Some(9),
        expected: false,
        uptime_ms: 12,
        forced: None,
        requested: None,
        reason: None,
    };
    assert_eq!(event.seam(), "managed.exited");
    assert_eq!(event.component(), "web");
    let value = serde_json::to_value(&event).unwrap();
    assert_eq!(value["event"], "exited");
    assert_eq!(value["signal"], 9);
}

#[tokio::test]
async fn output_is_timestamped_tagged_capped_and_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, _writer) = spawn_writer(dir.path(), 2_000, 2, "test").unwrap();
    let mut input = Vec::new();
    for n in 0..100 {
        input.extend_from_slice(format!("line {n}\n").as_bytes());
    }
    input.extend(std::iter::repeat_n(b'x', MAX_LINE + 100));
    input.extend_from_slice(b"\nlast without newline");
    pump(input.as_slice(), Stream::Stdout, tx.clone()).await;
    pump(&b"oops\n"[..], Stream::Stderr, tx.clone()).await;
    drop(tx);
    let live = dir.path().join(OUTPUT_FILE);
    let mut text = String::new();
    for _ in 0..200 {
        text = std::fs::read_to_string(&live).unwrap_or_default();
        if text.contains("oops") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(text.ends_with(" stderr oops\n"), "{text}");
    assert!(text.contains(" stdout last without newline\n"));
    // The long line was cut and marked, then rotated out on its own.
    let one = std::fs::read_to_string(dir.path().join(format!("{OUTPUT_FILE}.1"))).unwrap();
    assert!(
        one.ends_with(" [truncated]\n"),
        "{}",
        &one[one.len() - 50..]
    );
    assert!(one.len() < MAX_LINE + 100);
    let two = std::fs::read_to_string(dir.path().join(format!("{OUTPUT_FILE}.2"))).unwrap();
    assert!(two.lines().all(|line| line.contains(" stdout line ")));
    assert!(!dir.path().join(format!("{OUTPUT_FILE}.3")).exists());
    let first = text.lines().next().unwrap();
    let stamp = first.split(' ').next().unwrap();
    assert!(stamp.parse::<jiff::Timestamp>().is_ok(), "{first}");
    assert!(std::fs::metadata(&live).unwrap().len() <= 2_000);
}
