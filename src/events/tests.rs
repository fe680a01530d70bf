//! Golden files pin the JSON of every typed seam; `docs/events.md` is kept
//! in step with the types; readers are lenient about what they do not know.
//! `WARDEN_UPDATE_GOLDEN=1 cargo test --lib events` rewrites the golden files
//! after an intended change (review the diff: it is the log's format).

use std::path::PathBuf;

use serde_json::{Value, json};

use super::escalation as esc;
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
        conversation: Some("probe:api:service_unhealthy:41".to_owned()),
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
        open_issues: vec![crate::events::OpenIssue {
            probe: "api-tls".to_owned(),
            category: "certificate_expiring".to_owned(),
            severity: Severity::Warning,
            woken: true,
            caller_session_id: Some("probe:api-tls:certificate_expiring:17".to_owned()),
        }],
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
        (
            "escalation.step_skipped",
            row(&esc::StepSkipped {
                component: "shop".to_owned(),
                reason: "operational state is Paused".to_owned(),
                waiting: true,
                action: None,
                tier: None,
            }),
        ),
        (
            "escalation.action_started",
            row(&esc::ActionStarted {
                component: "shop".to_owned(),
                action: "fix".to_owned(),
                source: None,
                attempt: Some(1),
                kind: Some("restart".to_owned()),
                tier: None,
                managed_restart: None,
            }),
        ),
        (
            "escalation.fix_attempted",
            row(&esc::FixAttempted {
                component: "shop".to_owned(),
                attempt: 1,
                action: Some("restart".to_owned()),
                outcome: "succeeded".to_owned(),
                reason: None,
                started_seq: Some(43),
                duration_ms: Some(12),
                output_excerpt: Some("restarted, pid 4242".to_owned()),
                error: None,
            }),
        ),
        (
            "escalation.verified",
            row(&esc::Verified {
                component: "shop".to_owned(),
                after: "fix".to_owned(),
                attempt: 1,
                healthy: false,
                claimed: None,
            }),
        ),
        (
            "escalation.tier_called",
            row(&esc::TierCalled {
                component: "shop".to_owned(),
                tier: "agent".to_owned(),
                kind: Some("webhook".to_owned()),
                notifier: None,
                attempt: 1,
                outcome: "fixed".to_owned(),
                reason: None,
                started_seq: Some(45),
                notes: Some("restarted the pool".to_owned()),
                http_status: Some(200),
                error: None,
                duration_ms: Some(80),
                context_entries: Some(2),
            }),
        ),
        (
            "escalation.patch_applied",
            row(&esc::PatchApplied {
                component: "shop".to_owned(),
                tier: "agent".to_owned(),
                applied: true,
                started_seq: 47,
                entry: Some(1),
                digest: "9f86d081884c7d65".to_owned(),
                files: json!([{ "path": "/etc/shop/app.conf", "before": { "size": 31, "sha256": "aa" }, "after": { "size": 31, "sha256": "bb" } }]),
                error: None,
            }),
        ),
        (
            "escalation.patch_rejected",
            row(&esc::PatchRejected {
                component: "shop".to_owned(),
                tier: "agent".to_owned(),
                started_seq: 47,
                digest: "9f86d081884c7d65".to_owned(),
                files: json!([{ "path": "/etc/passwd", "size": 12 }]),
                reason: "/etc/passwd is outside components[].patch.paths".to_owned(),
            }),
        ),
        (
            "escalation.warning",
            row(&esc::Warning {
                component: "shop".to_owned(),
                attempts: 1,
                threshold: 1,
            }),
        ),
        (
            "escalation.rolled_back",
            row(&esc::RolledBack {
                component: "shop".to_owned(),
                restored: json!({ "restored": ["/etc/shop/app.conf"], "missing": [], "taken_at": "2026-12-07T07:00:00Z" }),
                restarted: Some("restarted, pid 4243".to_owned()),
                started_seq: Some(50),
                history: json!({ "component": "shop", "entries": [] }),
            }),
        ),
        (
            "escalation.exhausted",
            row(&esc::Exhausted {
                component: "shop".to_owned(),
                rolled_back: false,
                reason: "nothing was snapshotted".to_owned(),
                restarted: None,
                started_seq: None,
                history: json!({ "component": "shop", "entries": [] }),
            }),
        ),
        (
            "escalation.automation_stopped",
            row(&esc::AutomationStopped {
                component: "shop".to_owned(),
                exhaustions_in_row: 2,
                history: json!({ "component": "shop", "entries": [] }),
            }),
        ),
        (
            "escalation.cycle_ended",
            row(&esc::CycleEnded {
                component: "shop".to_owned(),
                outcome: "healed".to_owned(),
                healed_by: Some("fix".to_owned()),
                attempts: 1,
            }),
        ),
        (
            "notice.requested",
            row(&NoticeRequested {
                notice: Notice {
                    idempotency_key: "warden-57".to_owned(),
                    seq: 57,
                    category: "escalation".to_owned(),
                    kind: "escalation".to_owned(),
                    title: "shop: escalated to on-call".to_owned(),
                    ..notice()
                },
                only: Some("pager".to_owned()),
            }),
        ),
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
        let again = match decoded {
            Decoded::Wake(e) => self::row(&e),
            Decoded::Suppressed(e) => self::row(&e),
            Decoded::Resolved(e) => self::row(&e),
            Decoded::FlappingSettled(e) => self::row(&e),
            Decoded::Acknowledged(e) => self::row(&e),
            Decoded::InvestigationCompleted(e) => self::row(e.as_ref()),
            Decoded::NoticeRequested(e) => self::row(e.as_ref()),
            Decoded::Delivered(_) => {
                let e = Delivered::from_row(&row).unwrap();
                self::row(&e)
            }
            Decoded::Other => match escalation_again(&row) {
                Some(again) => again,
                None => panic!("{seam} did not decode"),
            },
        };
        assert_eq!(again.seam, new.seam);
        assert_eq!(again.details, new.details, "{seam}");
    }
}

/// An escalation row parsed with its type and written again.
fn escalation_again(row: &AuditRow) -> Option<NewRow> {
    fn again<E: Event>(row: &AuditRow) -> Option<NewRow> {
        parse::<E>(row).ok().map(|e| self::row(&e))
    }
    match row.seam.as_str() {
        "escalation.step_skipped" => again::<esc::StepSkipped>(row),
        "escalation.action_started" => again::<esc::ActionStarted>(row),
        "escalation.fix_attempted" => again::<esc::FixAttempted>(row),
        "escalation.verified" => again::<esc::Verified>(row),
        "escalation.tier_called" => again::<esc::TierCalled>(row),
        "escalation.patch_applied" => again::<esc::PatchApplied>(row),
        "escalation.patch_rejected" => again::<esc::PatchRejected>(row),
        "escalation.warning" => again::<esc::Warning>(row),
        "escalation.rolled_back" => again::<esc::RolledBack>(row),
        "escalation.exhausted" => again::<esc::Exhausted>(row),
        "escalation.automation_stopped" => again::<esc::AutomationStopped>(row),
        "escalation.cycle_ended" => again::<esc::CycleEnded>(row),
        _ => None,
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

/// The `### `seam`` section of docs/events.md: its field names, and
/// whether each is marked optional (left out when it does not apply).
fn documented(doc: &str, seam: &str) -> Option<Vec<(String, bool)>> {
    let heading = format!("### `{seam}`");
    let start = doc.find(&heading)? + heading.len();
    let rest = &doc[start..];
    let end = rest.find("\n### ").unwrap_or(rest.len());
    Some(
        rest[..end]
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|line| {
                let (name, rest) = line.split_once('`')?;
                Some((name.to_owned(), rest.contains("optional")))
            })
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
            if !fields.iter().any(|(name, _)| name == key) {
                problems.push(format!("{seam}: field `{key}` is not documented"));
            }
        }
        for (field, optional) in &fields {
            if !optional && !details.contains_key(field) {
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

#[test]
fn a_count_written_as_null_reads_as_zero() {
    let (_, new) = examples().remove(0);
    let mut row = audit_row(&new);
    let details = row.details.as_object_mut().unwrap();
    details.insert("reminder".to_owned(), Value::Null);
    details.insert("consecutive_failures".to_owned(), Value::Null);
    let Decoded::Wake(wake) = decode(&row) else {
        panic!("not read");
    };
    assert_eq!((wake.reminder, wake.consecutive_failures), (0, 0));
}

#[test]
fn an_escalation_step_counts_itself_in_its_metric() {
    let metrics = crate::metrics::Metrics::new();
    let called = esc::TierCalled {
        component: "shop".to_owned(),
        tier: "oncall".to_owned(),
        kind: Some("notifier".to_owned()),
        notifier: Some("pager".to_owned()),
        attempt: 1,
        outcome: "paging".to_owned(),
        reason: None,
        started_seq: Some(4),
        notes: None,
        http_status: None,
        error: None,
        duration_ms: None,
        context_entries: None,
    };
    called.count(&metrics);
    called.count(&metrics);
    let text = metrics.encode();
    assert!(
        text.contains(
            "warden_escalation_steps_total{component=\"shop\",rung=\"oncall\",outcome=\"paging\"} 2"
        ),
        "{text}"
    );
}
