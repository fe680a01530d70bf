//! The holds against the real incident commander: a freeze recorded in the
//! audit log is never followed by an action that started after it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ractor::Actor;
use serde_json::json;
use tokio::sync::watch;

use super::{CycleContext, CycleRecord, CycleStore, Signal, Trigger, run};
use crate::audit::{AuditLog, AuditReader, AuditRow, AuditWriter, AuditWriterArgs, FsyncPolicy};
use crate::control::OperationalState;
use crate::debounce::{LatestObservations, ObservationHistory};
use crate::incidents::{
    CommanderArgs, FreezeSet, IncidentCommander, IncidentMsg, IncidentStore, OpenTrigger, Sev,
};
use crate::notify::Notifiers;
use crate::settings::{ComponentSettings, FixKind, IncidentSettings};

/// Rows that record an action starting or its result.
const RESULT_SEAMS: [&str; 4] = [
    "escalation.fix_attempted",
    "escalation.tier_called",
    "escalation.patch_applied",
    "escalation.rolled_back",
];

fn component(name: &str) -> ComponentSettings {
    let mut component = ComponentSettings {
        name: name.to_owned(),
        ..ComponentSettings::default()
    };
    component.fix.enabled = true;
    component.fix.action.kind = Some(FixKind::Command);
    component.fix.action.command = vec!["true".to_owned()];
    component.fix.verify_timeout = Duration::from_millis(20);
    component
}

fn context(
    name: &str,
    audit: &AuditLog,
    state_dir: &Path,
    incidents: &IncidentStore,
    freeze: &FreezeSet,
    state: &OperationalState,
) -> Arc<CycleContext> {
    Arc::new(CycleContext {
        component: component(name),
        audit: audit.clone(),
        http: reqwest::Client::new(),
        notifiers: Notifiers::default(),
        state: state.clone(),
        latest: LatestObservations::default(),
        saved: crate::escalation::SavedFile::new(state_dir, name, ".cycle.json"),
        state_dir: state_dir.to_owned(),
        managed: None,
        metrics: crate::metrics::Metrics::default(),
        incidents: incidents.clone(),
        freeze: freeze.clone(),
        commander: format!("no-commander-{name}"),
    })
}

fn all_rows(audit_dir: &std::path::Path) -> Vec<AuditRow> {
    AuditReader::open(audit_dir)
        .unwrap()
        .rows_from(1, None)
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Violations of "nothing starts after the hold's row" for `component`:
/// an `escalation.action_started` after `hold_seq`, or a result row after it
/// whose action did not start before it.
fn violations(rows: &[AuditRow], component: &str, hold_seq: u64) -> Vec<String> {
    rows.iter()
        .filter(|r| r.seq > hold_seq && r.component.as_deref() == Some(component))
        .filter(|r| {
            if r.seam == "escalation.action_started" {
                return true;
            }
            RESULT_SEAMS.contains(&r.seam.as_str())
                && r.details["outcome"] != "skipped"
                && r.details["started_seq"]
                    .as_u64()
                    .is_none_or(|s| s > hold_seq)
        })
        .map(|r| format!("{} {} {}", r.seq, r.seam, r.details))
        .collect()
}

/// Polls `cond` until it holds; bounded generously (the machine may be busy).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not met: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_freeze_is_never_followed_by_an_action_that_started_after_it() {
    const RACES: usize = 200;
    const AT_ONCE: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().to_owned();
    let audit_dir = state_dir.join("audit");
    let (audit, queue) = AuditLog::new();
    let mut writer_args = AuditWriterArgs::new(&audit_dir, queue);
    writer_args.fsync = FsyncPolicy::Never;
    let (_writer, _) = Actor::spawn(None, AuditWriter, writer_args).await.unwrap();
    let store = IncidentStore::default();
    let freeze = FreezeSet::default();
    let args = CommanderArgs {
        settings: IncidentSettings::default(),
        state_dir: state_dir.clone(),
        audit: audit.clone(),
        audit_dir: audit_dir.clone(),
        outbox: crate::notify::Outbox::new(Notifiers::default(), audit.clone(), audit_dir.clone()),
        latest: LatestObservations::default(),
        history: ObservationHistory::default(),
        criticality: HashMap::new(),
        depends_on: HashMap::new(),
        store: store.clone(),
        cursor_dir: state_dir.join("cursors"),
        freeze: freeze.clone(),
        effective_config: crate::incidents::EffectiveConfig::fixed(json!({})),
        tick: Duration::from_secs(3600),
    };
    let (commander, _) = Actor::spawn(None, IncidentCommander, args).await.unwrap();
    let state = OperationalState::default();
    let cycles = CycleStore::default();

    for round in 0..RACES / AT_ONCE {
        let mut tasks = Vec::new();
        let names: Vec<String> = (0..AT_ONCE).map(|i| format!("c{round}-{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            // The fix is pending while the incident opens and freezes the
            // component; spreading the cycles' starts over the time the
            // commander takes to open the round's incidents puts the start
            // at every point of the open → freeze sequence.
            let ctx = context(name, &audit, &state_dir, &store, &freeze, &state);
            let mut record = CycleRecord::default();
            record.begin(&Trigger::ManagedFatal("race".into()), &ctx);
            // Half the fixes are past their evidence wait (a resumed cycle)
            // and start at once, racing the freeze itself.
            record.evidence_awaited = i % 2 == 0;
            let (tx, rx) = watch::channel(Signal::None);
            let (_, open) = watch::channel(Default::default());
            let offset = Duration::from_millis(((i * 37 + round * 11) % 120) as u64);
            let cycles = cycles.clone();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                let _keep = tx;
                run(ctx, cycles, record, rx, open).await;
            }));
            commander
                .cast(IncidentMsg::Open {
                    trigger: OpenTrigger::Operator {
                        title: format!("race {name}"),
                        severity: Some(Sev::Sev0),
                        components: vec![name.clone()],
                    },
                    reply: None,
                })
                .unwrap();
        }
        // Each race ends when the cycle ended, or sits held by the freeze.
        eventually("every race settled", || {
            let rows = all_rows(&audit_dir);
            names.iter().zip(&tasks).all(|(name, task)| {
                task.is_finished()
                    || rows.iter().any(|r| {
                        r.seam == "escalation.step_skipped"
                            && r.component.as_deref() == Some(name)
                            && r.details["reason"]
                                .as_str()
                                .is_some_and(|reason| reason.contains("frozen"))
                    })
            })
        })
        .await;
        for task in &tasks {
            task.abort();
        }
    }

    audit.flush().await.unwrap();
    let rows = all_rows(&audit_dir);
    let mut frozen_at: BTreeMap<String, u64> = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|r| r.seam == "incident.automation_frozen")
    {
        for name in row.details["components"].as_array().into_iter().flatten() {
            if let Some(name) = name.as_str() {
                frozen_at.entry(name.to_owned()).or_insert(row.seq);
            }
        }
    }
    assert_eq!(frozen_at.len(), RACES, "every race froze its component");
    let mut bad = Vec::new();
    let (mut before, mut held) = (0, 0);
    for (name, seq) in &frozen_at {
        bad.extend(violations(&rows, name, *seq));
        let started = rows
            .iter()
            .any(|r| r.component.as_deref() == Some(name) && r.seam == "escalation.fix_attempted");
        if started {
            before += 1;
        } else {
            held += 1;
        }
    }
    assert!(
        bad.is_empty(),
        "{} action(s) started after their component's freeze row:\n{}",
        bad.len(),
        bad.join("\n")
    );
    // Both sides of the race were exercised.
    assert!(held > 0, "no fix was ever held by the freeze");
    eprintln!("{before} fix(es) started before the freeze, {held} held by it");
}

/// A pause asked over the API is applied only once its row is durable; until
/// then it is pending, and a pending pause already holds every action, so no
/// action row can be queued behind the pause row.
#[test]
fn a_pause_being_recorded_holds_automation_until_applied_or_withdrawn() {
    let state = OperationalState::default();
    let freeze = crate::incidents::FreezeSet::default();
    assert_eq!(super::hold_reason(&state, &freeze, "site"), None);
    let pending = state.hold_pending();
    assert!(
        super::hold_reason(&state, &freeze, "site").is_some(),
        "a pending pause must hold"
    );
    // Withdrawn (the row never became durable): nothing changed.
    drop(pending);
    assert_eq!(super::hold_reason(&state, &freeze, "site"), None);
    // Recorded: the pause is applied before the pending mark goes.
    let pending = state.hold_pending();
    state.pause("operator");
    drop(pending);
    assert!(super::hold_reason(&state, &freeze, "site").is_some());
}
