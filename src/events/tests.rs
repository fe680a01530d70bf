//! Golden files pin the JSON of every typed seam; `docs/events.md` is kept
//! in step with the types; readers are lenient about what they do not know.
//! `WARDEN_UPDATE_GOLDEN=1 cargo test --lib events` rewrites the golden files
//! after an intended change (review the diff: it is the log's format).

use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::messages::Health;
use crate::notify::{Delivery, DeliveryOutcome, Notice, NoticeStatus};

const TRACE: Option<&str> = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");

fn observation(status: Health) -> Observation {
    Observation {
        probe: "api".to_owned(),
        component: "shop".to_owned(),
        status,
        latency_ms: 12,
        reasons: vec!["status 503 (expected 2xx)".to_owned()],
        stage: None,
        details: json!({ "status": 503 }),
        at: "2026-12-07T08:00:00.000Z".to_owned(),
    }
}

fn notice() -> Notice {
    Notice {
        idempotency_key: "warden-41".to_owned(),
        seq: 41,
        caller_session_id: Some("probe:api:service_unhealthy:41".to_owned()),
        group: None,
        probe: "api".to_owned(),
        component: "shop".to_owned(),
        severity: Severity::Critical,
        category: "service_unhealthy".to_owned(),
        kind: "fired".to_owned(),
        status: NoticeStatus::Firing,
        title: "api: service unhealthy".to_owned(),
        summary: "GET /health answered 503.".to_owned(),
        actions: vec!["check the api pods".to_owned()],
        runbook: None,
        at: "2026-12-07T08:00:00.000Z".to_owned(),
        details: json!({}),
    }
}

fn delivered(outcome: DeliveryOutcome) -> Delivered {
    Delivered {
        source_seq: 41,
        notifier: "pager".to_owned(),
        idempotency_key: "warden-41".to_owned(),
        category: "service_unhealthy".to_owned(),
        kind: "fired".to_owned(),
        severity: Severity::Critical,
        status: NoticeStatus::Firing,
        attempts: 1,
        last_status: Some(202),
        error: None,
        duration_ms: 3,
        wake_seq: Some(41),
        redelivered: Some(false),
        outcome,
    }
}

/// One example of every typed seam, as its writer builds it.
fn examples() -> Vec<(&'static str, NewRow)> {
    let wake = Wake {
        probe: "api".to_owned(),
        component: "shop".to_owned(),
        severity: Severity::Critical,
        category: "service_unhealthy".to_owned(),
        kind: WakeKind::Fired,
        title: "api: service unhealthy".to_owned(),
        detail: "status 503 (expected 2xx)".to_owned(),
        observation: Some(observation(Health::Unhealthy)),
        consecutive_failures: 3,
        stage: None,
        reminder: 0,
        envelope_status: "enabled".to_owned(),
        envelope_fix: Some("restart the managed process".to_owned()),
        traceparent: TRACE.map(str::to_owned),
    };
    let flapping = Wake {
        kind: WakeKind::Flapping,
        title: "api is flapping".to_owned(),
        ..wake.clone()
    };
    let completed = InvestigationCompleted {
        wake_seq: 41,
        wake_seam: "probe.wake_requested".to_owned(),
        probe: "api".to_owned(),
        component: "shop".to_owned(),
        category: "service_unhealthy".to_owned(),
        severity: Severity::Critical,
        kind: "fired".to_owned(),
        engine: "none".to_owned(),
        model: None,
        tokens_in: 0,
        tokens_out: 0,
        cost_usd: 0.0,
        duration_ms: 1,
        summary: "GET /health answered 503.".to_owned(),
        actions: vec!["check the api pods".to_owned()],
        fallback: None,
        dm_status: "sent".to_owned(),
        autofix_attempted: false,
        envelope_status: "enabled".to_owned(),
        envelope_fix: Some("restart the managed process".to_owned()),
        deliveries: vec![Delivery {
            notifier: "pager".to_owned(),
            outcome: DeliveryOutcome::Sent,
            attempts: 1,
            last_status: Some(202),
            error: None,
            duration_ms: 3,
        }],
        notice: notice(),
    };
    vec![
        ("probe.wake_requested", row(&wake)),
        ("probe.flapping", row(&flapping)),
        (
            "probe.wake_suppressed",
            row(&Suppressed {
                probe: "api".to_owned(),
                component: "shop".to_owned(),
                severity: Severity::Warning,
                category: "service_unhealthy".to_owned(),
                kind: WakeKind::Fired,
                title: "api: service unhealthy".to_owned(),
                detail: "status 503 (expected 2xx)".to_owned(),
                observation: Some(observation(Health::Unhealthy)),
                suppression: Suppression {
                    reason: "dependency".to_owned(),
                    suppressed_by: Some("db".to_owned()),
                },
                suppressed_count: 1,
                traceparent: TRACE.map(str::to_owned),
            }),
        ),
        (
            "probe.resolved",
            row(&Resolved {
                probe: "api".to_owned(),
                component: "shop".to_owned(),
                severity: Severity::Critical,
                category: "service_unhealthy".to_owned(),
                title: "api recovered".to_owned(),
                open_for_ms: 4200,
                woken: true,
                observation: Some(Observation {
                    reasons: Vec::new(),
                    ..observation(Health::Healthy)
                }),
                traceparent: TRACE.map(str::to_owned),
            }),
        ),
        (
            "probe.flapping_settled",
            row(&FlappingSettled {
                probe: "api".to_owned(),
                component: "shop".to_owned(),
                category: "service_unhealthy".to_owned(),
                traceparent: TRACE.map(str::to_owned),
            }),
        ),
        (
            "issue.acknowledged",
            row(&Acknowledged {
                probe: "api".to_owned(),
                component: "shop".to_owned(),
                severity: Severity::Critical,
                category: "service_unhealthy".to_owned(),
                woken: true,
                note: Some("on it".to_owned()),
                author: Some("ana".to_owned()),
                again: false,
            }),
        ),
        ("probe.investigation_completed", row(&completed)),
        ("notification.sent", row(&delivered(DeliveryOutcome::Sent))),
        (
            "notification.failed",
            row(&Delivered {
                last_status: Some(503),
                error: Some("status 503".to_owned()),
                attempts: 6,
                ..delivered(DeliveryOutcome::Failed)
            }),
        ),
        (
            "notification.folded",
            row(&Delivered {
                attempts: 0,
                last_status: None,
                duration_ms: 0,
                ..delivered(DeliveryOutcome::Folded)
            }),
        ),
    ]
}

fn audit_row(new: &NewRow) -> AuditRow {
    AuditRow {
        seq: 42,
        ts: "2026-12-07T08:00:00.100Z".to_owned(),
        seam: new.seam.clone(),
        caller_session_id: None,
        trace_id: None,
        component: None,
        details: new.details.clone(),
    }
}

#[test]
fn every_typed_seam_matches_its_golden_file() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/events/golden");
    let update = std::env::var_os("WARDEN_UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for (seam, new) in examples() {
        assert_eq!(
            new.seam, seam,
            "the example for {seam} is written as {}",
            new.seam
        );
        let text = serde_json::to_string_pretty(&json!({ "seam": seam, "details": new.details }))
            .unwrap()
            + "\n";
        let path = dir.join(format!("{seam}.json"));
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(golden) if golden == text => {}
            Ok(golden) => stale.push(format!("{seam}:\n--- golden\n{golden}\n+++ now\n{text}")),
            Err(error) => stale.push(format!("{seam}: {}: {error}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "the JSON of a seam changed (WARDEN_UPDATE_GOLDEN=1 rewrites the files if intended):\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_typed_seam_decodes_back_to_what_was_written() {
    for (seam, new) in examples() {
        let row = audit_row(&new);
        let decoded = decode(&row);
        assert_ne!(decoded, Decoded::Other, "{seam} did not decode");
        let again = match decoded {
            Decoded::Wake(e) => self::row(&e),
            Decoded::Suppressed(e) => self::row(&e),
            Decoded::Resolved(e) => self::row(&e),
            Decoded::FlappingSettled(e) => self::row(&e),
            Decoded::Acknowledged(e) => self::row(&e),
            Decoded::InvestigationCompleted(e) => self::row(e.as_ref()),
            Decoded::Delivered(_) => {
                let e = Delivered::from_row(&row).unwrap();
                self::row(&e)
            }
            Decoded::Other => unreachable!(),
        };
        assert_eq!(again.seam, new.seam);
        assert_eq!(again.details, new.details, "{seam}");
    }
}

#[test]
fn readers_ignore_unknown_fields_and_unknown_seams() {
    let (_, new) = examples().remove(0);
    let mut row = audit_row(&new);
    let details = row.details.as_object_mut().unwrap();
    details.insert("added_by_a_newer_warden".to_owned(), json!({ "x": 1 }));
    details.insert("v".to_owned(), json!(SCHEMA + 1));
    assert!(matches!(decode(&row), Decoded::Wake(_)));

    row.seam = "probe.something_new".to_owned();
    assert_eq!(decode(&row), Decoded::Other);
    assert!(matches!(
        parse::<Wake>(&row),
        Err(EventError::WrongSeam { .. })
    ));
}

#[test]
fn a_row_without_a_severity_is_not_read_as_critical() {
    let (_, new) = examples().remove(0);
    let mut row = audit_row(&new);
    row.details.as_object_mut().unwrap().remove("severity");
    assert_eq!(decode(&row), Decoded::Other);
    assert!(matches!(parse::<Wake>(&row), Err(EventError::Shape { .. })));
}

/// The `### `seam`` section of docs/events.md and its field names.
fn documented(doc: &str, seam: &str) -> Option<Vec<String>> {
    let heading = format!("### `{seam}`");
    let start = doc.find(&heading)? + heading.len();
    let rest = &doc[start..];
    let end = rest.find("\n### ").unwrap_or(rest.len());
    Some(
        rest[..end]
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|line| line.split_once('`').map(|(name, _)| name.to_owned()))
            .collect(),
    )
}

#[test]
fn docs_events_md_lists_every_typed_seam_and_field() {
    let doc = include_str!("../../docs/events.md");
    let mut problems = Vec::new();
    for (seam, new) in examples() {
        let Some(fields) = documented(doc, seam) else {
            problems.push(format!("no `### `{seam}`` section"));
            continue;
        };
        let Value::Object(details) = &new.details else {
            continue;
        };
        for key in details.keys() {
            if !fields.contains(key) {
                problems.push(format!("{seam}: field `{key}` is not documented"));
            }
        }
        for field in &fields {
            if !details.contains_key(field) {
                problems.push(format!(
                    "{seam}: documents `{field}`, which it does not have"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/events.md:\n{}",
        problems.join("\n")
    );
}
