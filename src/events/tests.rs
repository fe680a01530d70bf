//! Golden files pin the JSON of every typed seam; `docs/events.md` is kept
//! in step with the types; readers are lenient about what they do not know.
//! `WARDEN_UPDATE_GOLDEN=1 cargo test --lib events` rewrites the golden files
//! after an intended change (review the diff: it is the log's format).

use std::path::PathBuf;

use serde_json::{Value, json};

use super::escalation as esc;
use super::*;
use crate::audit::{AuditRow, RowRef};
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
    let mut all = vec![
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
    ];
    all.extend(incident_examples());
    all.extend(service_examples());
    all
}

/// One example of every `incident.*` seam.
fn incident_examples() -> Vec<(&'static str, NewRow)> {
    use super::incident as inc;
    use crate::messages::Sev;
    let id = || "INC-20261207-001".to_owned();
    vec![
        (
            "incident.opened",
            row(&inc::Opened {
                id: id(),
                severity: Sev::Sev2,
                title: "api: service unhealthy".to_owned(),
                reason: "a critical issue on a high-criticality component".to_owned(),
                evidence: vec!["evidence/opened.json".to_owned()],
                trigger: crate::incidents::OpenTrigger::Issue {
                    caller_session_id: Some("probe:api:service_unhealthy:41".to_owned()),
                    probe: "api".to_owned(),
                    component: "shop".to_owned(),
                    category: "service_unhealthy".to_owned(),
                    severity: Severity::Critical,
                    seq: 41,
                },
            }),
        ),
        (
            "incident.joined",
            row(&inc::Joined {
                id: id(),
                probe: "db".to_owned(),
                issue_seq: 44,
                seam: "probe.wake_requested".to_owned(),
            }),
        ),
        (
            "incident.severity_changed",
            row(&inc::SeverityChanged {
                id: id(),
                from: Sev::Sev2,
                to: Sev::Sev1,
                reason: "two important components down".to_owned(),
            }),
        ),
        (
            "incident.note",
            row(&inc::Note {
                id: id(),
                text: "rolling back 1.4.2".to_owned(),
                author: Some("ana".to_owned()),
            }),
        ),
        ("incident.mitigated", row(&inc::Mitigated { id: id() })),
        (
            "incident.update_sent",
            row(&inc::UpdateSent {
                id: id(),
                severity: Sev::Sev2,
                changes: 3,
                unhealthy: vec!["api (unhealthy)".to_owned()],
                notice_seq: Some(90),
            }),
        ),
        (
            "incident.resolved",
            row(&inc::Resolved {
                id: id(),
                severity: Sev::Sev2,
                note: "impact stopped".to_owned(),
                force: false,
                by: "warden".to_owned(),
                duration_s: Some(754),
            }),
        ),
        (
            "incident.automation_frozen",
            row(&inc::AutomationFrozen {
                id: id(),
                components: vec!["shop".to_owned()],
            }),
        ),
        (
            "incident.automation_unfrozen",
            row(&inc::AutomationUnfrozen {
                id: id(),
                components: vec!["shop".to_owned()],
            }),
        ),
    ]
}

/// One example of every seam of Warden itself.
fn service_examples() -> Vec<(&'static str, NewRow)> {
    use super::service as svc;
    use crate::control::{BootGate, ConfigOrigin, EpochFacts, GateStatus, RunState, StateSnapshot};
    use crate::managed::ManagedEvent;
    let facts = EpochFacts {
        state_epoch: 3,
        known_epoch: 4,
        log_last_seq: 120,
        known_high_water: 180,
    };
    let state = |state, reasons: &[&str]| {
        svc::StateView::from(&StateSnapshot {
            state,
            degradation_reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
            since: "2026-12-07T08:00:00.000Z".to_owned(),
        })
    };
    let who = || ("warden.root".to_owned(), "pipeline".to_owned());
    vec![
        (
            "service.boot",
            row(&svc::Boot {
                version: "0.1.0".to_owned(),
                pid: 4242,
                api: "127.0.0.1:9400".to_owned(),
                gates: vec![BootGate {
                    name: "state_dir_writable".to_owned(),
                    status: GateStatus::Pass,
                    detail: "./var is writable".to_owned(),
                    at: "2026-12-07T08:00:00.000Z".to_owned(),
                }],
                open_issues_restored: 1,
            }),
        ),
        (
            "service.config_origin",
            row(&ConfigOrigin::operator("warden.toml", "[service]\n")),
        ),
        (
            "service.started",
            row(&svc::Started {
                incarnation: 1,
                summary: "3 probes, 1 component, 1 notifier".to_owned(),
            }),
        ),
        (
            "service.stopping",
            row(&svc::Stopping {
                reason: "shutdown requested".to_owned(),
            }),
        ),
        (
            "service.meltdown",
            row(&svc::Meltdown {
                meltdowns: 1,
                action: "restart_tree".to_owned(),
            }),
        ),
        (
            "service.config_known_good",
            row(&svc::ConfigKnownGood {
                path: "./var/config/last-known-good.toml".to_owned(),
                digest: "sha256:0f1e".to_owned(),
            }),
        ),
        (
            "service.config_rolled_back",
            row(&svc::ConfigRolledBack {
                from: "the configuration this boot ran on".to_owned(),
                from_digest: "sha256:aa01".to_owned(),
                to: "./var/config/last-known-good.toml".to_owned(),
                to_digest: "sha256:0f1e".to_owned(),
                operator_config_written: false,
            }),
        ),
        (
            "service.secrets_reloaded",
            row(&svc::SecretsReloaded { operator_tokens: 2 }),
        ),
        (
            "service.secrets_reload_failed",
            row(&svc::SecretsReloadFailed {
                error: "token file ./ops.token is empty".to_owned(),
            }),
        ),
        (
            "storage.pruned",
            row(&crate::storage::RetentionReport {
                audit_segments: vec!["audit-00000000000000000001.jsonl".to_owned()],
                audit_bytes: 1_048_576,
                audit_held_for_cursor: 0,
                incidents: vec!["INC-20261101-001".to_owned()],
                errors: Vec::new(),
            }),
        ),
        (
            "dr.cursor_beyond_log",
            row(&svc::CursorBeyondLog {
                detail: "cursor wake-consumer at 300 is past the log's end".to_owned(),
                log_last_seq: 120,
            }),
        ),
        ("dr.rewind_detected", row(&svc::RewindDetected(facts))),
        (
            "dr.known_epoch_violation",
            row(&svc::KnownEpochViolation(facts)),
        ),
        (
            "dr.epoch_unreadable",
            row(&svc::EpochUnreadable {
                detail: "state_epoch: not a number".to_owned(),
            }),
        ),
        (
            "dr.epoch_bumped",
            row(&svc::EpochBumped {
                from: 3,
                to: 5,
                audit_high_water: 120,
                reason: Some("restored from last night's backup".to_owned()),
                actor: "operator".to_owned(),
            }),
        ),
        (
            "audit.recovered",
            row(&svc::AuditRecovered {
                file: "audit-00000000000000000001.jsonl".to_owned(),
                truncated_bytes: 37,
                last_good_seq: Some(119),
            }),
        ),
        (
            "audit.rows_dropped",
            row(&svc::RowsDropped {
                rows: 12,
                reason: "the audit queue was full while the log was not writable".to_owned(),
            }),
        ),
        (
            "control.command",
            row(&svc::ControlCommand {
                command: "pause".to_owned(),
                reason: Some("deploy".to_owned()),
                actor: "operator".to_owned(),
                result: "applied".to_owned(),
                detail: json!("paused"),
                before: state(RunState::Running, &[]),
                after: state(RunState::Paused, &["operator"]),
            }),
        ),
        (
            "operator.note",
            row(&svc::OperatorNote {
                text: "db failover in progress".to_owned(),
                author: Some("ana".to_owned()),
            }),
        ),
        (
            "chaos.fault",
            row(&svc::ChaosFault {
                fault: "kill debouncer".to_owned(),
                landed: true,
                actor_id: Some("0.17".to_owned()),
            }),
        ),
        (
            "wake.cursor_reset",
            row(&svc::WakeCursorReset {
                path: "./var/cursors/wake-consumer".to_owned(),
                reason: "not a number".to_owned(),
                resumed_at: 120,
            }),
        ),
        (
            "escalation.snapshot_taken",
            row(&svc::SnapshotTaken {
                copied: vec!["/etc/shop/app.toml".to_owned()],
                missing: Vec::new(),
                refused: Vec::new(),
                already_taken: false,
            }),
        ),
        (
            "escalation.snapshot_failed",
            row(&svc::SnapshotFailed {
                error: "permission denied".to_owned(),
            }),
        ),
        (
            "managed.previous_stopped",
            row(&svc::PreviousStopped {
                pgid: 3131,
                outcome: "stopped".to_owned(),
            }),
        ),
        (
            "managed.restart_held",
            row(&svc::RestartHeld {
                attempt: 2,
                reason: "paused".to_owned(),
            }),
        ),
        (
            "managed.started",
            row(&ManagedEvent::Started {
                component: "shop".to_owned(),
                pid: 3131,
                attempt: 0,
            }),
        ),
        (
            "managed.exited",
            row(&ManagedEvent::Exited {
                component: "shop".to_owned(),
                pid: 3131,
                code: None,
                signal: Some(15),
                expected: true,
                uptime_ms: 5_000,
                forced: Some(false),
                requested: Some("restart".to_owned()),
                reason: Some("fix: restart".to_owned()),
            }),
        ),
        (
            "managed.restart_scheduled",
            row(&ManagedEvent::RestartScheduled {
                component: "shop".to_owned(),
                attempt: 1,
                delay_ms: 500,
            }),
        ),
        (
            "managed.fatal",
            row(&ManagedEvent::Fatal {
                component: "shop".to_owned(),
                restarts: 5,
                within_ms: 60_000,
                reason: "5 restarts within 60s".to_owned(),
            }),
        ),
        (
            "managed.start_failed",
            row(&ManagedEvent::StartFailed {
                component: "shop".to_owned(),
                error: "No such file or directory".to_owned(),
            }),
        ),
        (
            "managed.stopped",
            row(&ManagedEvent::Stopped {
                component: "shop".to_owned(),
                reason: "stop requested".to_owned(),
            }),
        ),
        (
            "supervision.started",
            row(&svc::ChildStarted {
                supervisor: who().0,
                child: who().1,
                actor_id: "0.12".to_owned(),
            }),
        ),
        (
            "supervision.exited",
            row(&svc::ChildExited {
                supervisor: who().0,
                child: who().1,
                exit: "panicked: boom".to_owned(),
                abnormal: true,
            }),
        ),
        (
            "supervision.restart_scheduled",
            row(&svc::RestartScheduled {
                supervisor: who().0,
                child: who().1,
                attempt: 1,
                delay_ms: 10,
                reason: "panicked: boom".to_owned(),
            }),
        ),
        (
            "supervision.restarted",
            row(&svc::ChildRestarted {
                supervisor: who().0,
                child: who().1,
                attempt: 1,
            }),
        ),
        (
            "supervision.start_failed",
            row(&svc::StartFailed {
                supervisor: who().0,
                child: who().1,
                error: "name taken".to_owned(),
            }),
        ),
        (
            "supervision.stopped",
            row(&svc::ChildStopped {
                supervisor: who().0,
                child: who().1,
                killed: false,
            }),
        ),
        (
            "supervision.meltdown",
            row(&svc::SupervisorMeltdown {
                supervisor: who().0,
                restarts: 5,
                within_ms: 10_000,
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
        details: new.details(),
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
        let text = serde_json::to_string_pretty(&json!({ "seam": seam, "details": new.details() }))
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
        assert_eq!(again.details(), new.details(), "{seam}");
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
        _ => incident_again(row).or_else(|| service_again(row)),
    }
}

/// An incident row parsed with its type and written again.
fn incident_again(row: &AuditRow) -> Option<NewRow> {
    use super::incident as inc;
    fn again<E: Event>(row: &AuditRow) -> Option<NewRow> {
        parse::<E>(row).ok().map(|e| self::row(&e))
    }
    match row.seam.as_str() {
        "incident.opened" => again::<inc::Opened>(row),
        "incident.joined" => again::<inc::Joined>(row),
        "incident.severity_changed" => again::<inc::SeverityChanged>(row),
        "incident.note" => again::<inc::Note>(row),
        "incident.mitigated" => again::<inc::Mitigated>(row),
        "incident.update_sent" => again::<inc::UpdateSent>(row),
        "incident.resolved" => again::<inc::Resolved>(row),
        "incident.automation_frozen" => again::<inc::AutomationFrozen>(row),
        "incident.automation_unfrozen" => again::<inc::AutomationUnfrozen>(row),
        _ => None,
    }
}

/// A row of Warden itself parsed with its type and written again.
fn service_again(row: &AuditRow) -> Option<NewRow> {
    use super::service as svc;
    fn again<E: Event>(row: &AuditRow) -> Option<NewRow> {
        parse::<E>(row).ok().map(|e| self::row(&e))
    }
    match row.seam.as_str() {
        "service.boot" => again::<svc::Boot>(row),
        "service.config_origin" => again::<crate::control::ConfigOrigin>(row),
        "service.started" => again::<svc::Started>(row),
        "service.stopping" => again::<svc::Stopping>(row),
        "service.meltdown" => again::<svc::Meltdown>(row),
        "service.config_known_good" => again::<svc::ConfigKnownGood>(row),
        "service.config_rolled_back" => again::<svc::ConfigRolledBack>(row),
        "service.secrets_reloaded" => again::<svc::SecretsReloaded>(row),
        "service.secrets_reload_failed" => again::<svc::SecretsReloadFailed>(row),
        "storage.pruned" => again::<crate::storage::RetentionReport>(row),
        "dr.cursor_beyond_log" => again::<svc::CursorBeyondLog>(row),
        "dr.rewind_detected" => again::<svc::RewindDetected>(row),
        "dr.known_epoch_violation" => again::<svc::KnownEpochViolation>(row),
        "dr.epoch_unreadable" => again::<svc::EpochUnreadable>(row),
        "dr.epoch_bumped" => again::<svc::EpochBumped>(row),
        "audit.recovered" => again::<svc::AuditRecovered>(row),
        "audit.rows_dropped" => again::<svc::RowsDropped>(row),
        "control.command" => again::<svc::ControlCommand>(row),
        "operator.note" => again::<svc::OperatorNote>(row),
        "chaos.fault" => again::<svc::ChaosFault>(row),
        "wake.cursor_reset" => again::<svc::WakeCursorReset>(row),
        "escalation.snapshot_taken" => again::<svc::SnapshotTaken>(row),
        "escalation.snapshot_failed" => again::<svc::SnapshotFailed>(row),
        "managed.previous_stopped" => again::<svc::PreviousStopped>(row),
        "managed.restart_held" => again::<svc::RestartHeld>(row),
        seam if seam.starts_with("managed.") => again::<crate::managed::ManagedEvent>(row),
        "supervision.started" => again::<svc::ChildStarted>(row),
        "supervision.exited" => again::<svc::ChildExited>(row),
        "supervision.restart_scheduled" => again::<svc::RestartScheduled>(row),
        "supervision.restarted" => again::<svc::ChildRestarted>(row),
        "supervision.start_failed" => again::<svc::StartFailed>(row),
        "supervision.stopped" => again::<svc::ChildStopped>(row),
        "supervision.meltdown" => again::<svc::SupervisorMeltdown>(row),
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
        let Value::Object(details) = &new.details() else {
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

/// The followers decode rows borrowed from their line ([`RowRef`], details
/// still encoded as the writer stored them); every seam must read the same
/// from there as from a parsed [`AuditRow`].
#[test]
fn every_typed_seam_decodes_the_same_from_its_stored_line() {
    for (seam, new) in examples() {
        let mut line = Vec::new();
        new.encode_stamped(42, "2026-12-07T08:00:00.100Z", &mut line);
        let body = &line[..line.len() - 1];
        let owned: AuditRow = serde_json::from_slice(body).unwrap();
        let borrowed: RowRef<'_> = serde_json::from_slice(body).unwrap();
        assert_eq!(decode(&borrowed), decode(&owned), "{seam}");
        assert_eq!(issue_event(&borrowed), issue_event(&owned), "{seam}");
    }
}
