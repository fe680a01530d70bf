#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::settings::ProbeKind;

const EXPIRY: &str = "2026-12-18T00:00:00Z";

fn expiry() -> Timestamp {
    EXPIRY.parse().unwrap()
}

fn before(secs: i64) -> Timestamp {
    expiry() - SignedDuration::from_secs(secs)
}

const DAY: i64 = 86_400;

#[test]
fn far_from_expiry_is_healthy() {
    let outcome = evaluate(expiry(), before(31 * DAY), &DEFAULT_ALERT_DAYS);
    assert_eq!(outcome.verdict, Health::Healthy);
    assert_eq!(outcome.stage, None);
    assert!(outcome.reasons.is_empty());
    assert_eq!(outcome.facts.cert_expires_in, Some(31 * DAY));
}

#[test]
fn thresholds_pick_the_smallest_window_containing_the_remaining_time() {
    let cases = [
        (30 * DAY + 1, None),
        (30 * DAY, Some("30d")),
        (14 * DAY + 1, Some("30d")),
        (14 * DAY, Some("14d")),
        (7 * DAY + 1, Some("14d")),
        (7 * DAY, Some("7d")),
        (DAY + 1, Some("7d")),
        (DAY, Some("1d")),
        (1, Some("1d")),
    ];
    for (left, stage) in cases {
        let outcome = evaluate(expiry(), before(left), &DEFAULT_ALERT_DAYS);
        assert_eq!(outcome.stage.as_deref(), stage, "{left}s left");
        let verdict = if stage.is_some() {
            Health::Degraded
        } else {
            Health::Healthy
        };
        assert_eq!(outcome.verdict, verdict, "{left}s left");
    }
}

#[test]
fn degraded_reason_names_the_window() {
    let outcome = evaluate(expiry(), before(7 * DAY - 3600), &DEFAULT_ALERT_DAYS);
    assert_eq!(outcome.verdict, Health::Degraded);
    assert_eq!(
        outcome.reasons,
        vec!["credential expires in 6d 23h (2026-12-18T00:00:00Z), within the 7d alert"]
    );
    assert_eq!(outcome.facts.cert_expires_in, Some(7 * DAY - 3600));
}

#[test]
fn expired_is_unhealthy_with_stage_expired() {
    let outcome = evaluate(expiry(), before(-(2 * DAY + 3 * 3600)), &DEFAULT_ALERT_DAYS);
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(outcome.stage.as_deref(), Some("expired"));
    assert_eq!(
        outcome.reasons,
        vec!["credential expired 2d 3h ago (2026-12-18T00:00:00Z)"]
    );
    assert_eq!(outcome.facts.cert_expires_in, Some(-(2 * DAY + 3 * 3600)));

    let at_expiry = evaluate(expiry(), expiry(), &DEFAULT_ALERT_DAYS);
    assert_eq!(at_expiry.stage.as_deref(), Some("expired"));
}

#[test]
fn custom_alert_days_are_unordered() {
    let outcome = evaluate(expiry(), before(2 * DAY), &[3, 90]);
    assert_eq!(outcome.stage.as_deref(), Some("3d"));
}

fn probe() -> ProbeSettings {
    ProbeSettings {
        name: "cert".into(),
        kind: Some(ProbeKind::CredentialExpiry),
        ..ProbeSettings::default()
    }
}

#[tokio::test]
async fn the_file_is_reread_on_every_run() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "  2000-01-01T00:00:00Z  ").unwrap();
    let check = CredentialExpiryCheck::build(&ProbeSettings {
        expires_at_file: Some(file.path().to_owned()),
        ..probe()
    })
    .unwrap();
    let outcome = check.run().await;
    assert_eq!(outcome.stage.as_deref(), Some("expired"));

    std::fs::write(file.path(), "2999-01-01T00:00:00+02:00\n").unwrap();
    let outcome = check.run().await;
    assert_eq!(outcome.verdict, Health::Healthy);
    assert!(outcome.facts.cert_expires_in.unwrap() > 0);
}

#[tokio::test]
async fn bad_file_content_is_unhealthy_without_echoing_it() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "s3cret-token").unwrap();
    let source = Source::File(file.path().to_owned());
    let err = read_expiry(&source, |_| None).await.unwrap_err();
    assert!(err.contains("expires_at_file"), "{err}");
    assert!(err.contains("RFC 3339"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");

    std::fs::write(file.path(), "x".repeat(5000)).unwrap();
    let err = read_expiry(&source, |_| None).await.unwrap_err();
    assert!(err.contains("larger than 4 KiB"), "{err}");

    std::fs::write(file.path(), " \n").unwrap();
    let err = read_expiry(&source, |_| None).await.unwrap_err();
    assert!(err.contains("is empty"), "{err}");
}

#[tokio::test]
async fn a_missing_file_is_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    let check = CredentialExpiryCheck::build(&ProbeSettings {
        expires_at_file: Some(dir.path().join("missing")),
        ..probe()
    })
    .unwrap();
    let outcome = check.run().await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert!(
        outcome.reasons[0].starts_with("cannot read expires_at_file"),
        "{:?}",
        outcome.reasons
    );
    assert!(
        outcome.reasons[0].contains("not found"),
        "{:?}",
        outcome.reasons
    );
}

#[tokio::test]
async fn env_sources_use_the_injected_lookup() {
    let source = Source::Env("CERT_EXPIRES".into());
    let at = read_expiry(&source, |var| {
        (var == "CERT_EXPIRES").then(|| OsString::from(EXPIRY))
    })
    .await
    .unwrap();
    assert_eq!(at, expiry());

    let err = read_expiry(&source, |_| None).await.unwrap_err();
    assert_eq!(err, "expires_at_env CERT_EXPIRES: the variable is not set");

    let err = read_expiry(&source, |_| Some(OsString::from("tomorrow")))
        .await
        .unwrap_err();
    assert!(err.contains("RFC 3339"), "{err}");
}

#[tokio::test]
async fn a_real_env_var_that_is_not_a_time_is_unhealthy() {
    // PATH exists in every test environment and is never a timestamp.
    let check = CredentialExpiryCheck::build(&ProbeSettings {
        expires_at_env: Some("PATH".into()),
        ..probe()
    })
    .unwrap();
    let outcome = check.run().await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert!(
        outcome.reasons[0].contains("expires_at_env PATH"),
        "{:?}",
        outcome.reasons
    );
}

#[test]
fn a_bad_fixed_expiry_is_a_build_error() {
    let err = CredentialExpiryCheck::build(&ProbeSettings {
        expires_at: Some("soon".into()),
        ..probe()
    })
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("probe cert: expires_at \"soon\""),
        "{err}"
    );
}
