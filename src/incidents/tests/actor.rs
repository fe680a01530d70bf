//! The commander as an actor: a real audit writer, a temp
//! state dir.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ractor::{Actor, ActorRef};
use serde_json::json;

use super::{observation, push};
use crate::audit::{
    AuditLog, AuditMsg, AuditReader, AuditRow, AuditWriter, AuditWriterArgs, FsyncPolicy, NewRow,
};
use crate::debounce::{LatestObservations, ObservationHistory};
use crate::incidents::{
    CommandError, CommanderArgs, FreezeSet, IncidentCommander, IncidentMsg, IncidentStatus,
    IncidentStore, OpenTrigger, Sev, read_timeline,
};
use crate::messages::{Health, IssueEvent};
use crate::notify::Notifiers;
use crate::settings::{Criticality, IncidentSettings, Severity};

struct Rig {
    _dir: tempfile::TempDir,
    state_dir: PathBuf,
    audit: AuditLog,
    writer: ActorRef<AuditMsg>,
    args: CommanderArgs,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().to_owned();
    let audit_dir = state_dir.join("audit");
    let (audit, queue) = AuditLog::new();
    let mut writer_args = AuditWriterArgs::new(&audit_dir, queue);
    writer_args.fsync = FsyncPolicy::Never;
    let (writer, _) = Actor::spawn(None, AuditWriter, writer_args).await.unwrap();
    let args = CommanderArgs {
        settings: IncidentSettings::default(),
        state_dir: state_dir.clone(),
        audit: audit.clone(),
        audit_dir,
        outbox: crate::notify::Outbox::new(
            Notifiers::default(),
            audit.clone(),
            state_dir.join("audit"),
        ),
        latest: LatestObservations::default(),
        history: ObservationHistory::default(),
        criticality: HashMap::from([
            ("api".to_owned(), Criticality::High),
            ("db".to_owned(), Criticality::Critical),
        ]),
        depends_on: HashMap::from([("api".to_owned(), vec!["db".to_owned()])]),
        store: IncidentStore::default(),
        cursor_dir: state_dir.join("cursors"),
        freeze: FreezeSet::default(),
        effective_config: crate::incidents::EffectiveConfig::fixed(
            json!({ "service": { "operator_token": "[redacted]" } }),
        ),
        tick: Duration::from_secs(3600),
    };
    Rig {
        _dir: dir,
        state_dir,
        audit,
        writer,
        args,
    }
}

impl Rig {
    async fn commander(&self) -> ActorRef<IncidentMsg> {
        let (actor, _) = Actor::spawn(None, IncidentCommander, self.args.clone())
            .await
            .unwrap();
        actor
    }

    fn rows(&self, seam: &str) -> Vec<AuditRow> {
        AuditReader::open(&self.state_dir.join("audit"))
            .unwrap()
            .rows_from(1, Some(seam))
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn incident_dir(&self, id: &str) -> PathBuf {
        self.state_dir.join("incidents").join(id)
    }
}

fn wake(seq: u64, probe: &str, component: &str, severity: Severity) -> IssueEvent {
    IssueEvent {
        seq,
        seam: "probe.wake_requested".to_owned(),
        caller_session_id: Some(format!("probe:{probe}:service_unhealthy:{seq}")),
        probe: probe.to_owned(),
        component: component.to_owned(),
        category: "service_unhealthy".to_owned(),
        severity,
        traceparent: None,
    }
}

/// Polls `cond` (yielding, and sleeping briefly) until it holds; bounded.
async fn eventually(mut cond: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not met");
}

fn modified_ms(path: &Path) -> u128 {
    std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::test]
async fn a_critical_issue_opens_sev2_with_evidence_before_the_opened_row_and_related_ones_join() {
    let rig = rig().await;
    let session = "probe:api-http:service_unhealthy:1";
    // The issue's own row, as the debouncer wrote it, must reach the evidence.
    rig.audit
        .append(NewRow::new("probe.wake_requested", json!({"probe": "api-http"})).session(session))
        .await
        .unwrap();
    push(
        &rig.args.history,
        observation("api-http", "api", Health::Unhealthy),
    );
    let commander = rig.commander().await;

    commander
        .cast(IncidentMsg::Issue(wake(
            1,
            "api-http",
            "api",
            Severity::Critical,
        )))
        .unwrap();
    eventually(|| rig.args.store.iter().any(|i| i.opened_seq > 0)).await;
    let incident = rig.args.store.iter().next().unwrap().clone();
    assert_eq!(incident.severity, Sev::Sev2);
    assert_eq!(incident.status, IncidentStatus::Open);
    assert!(incident.id.starts_with("INC-"), "{}", incident.id);
    assert_eq!(incident.evidence.len(), 3, "{:?}", incident.evidence);
    // SEV2 does not freeze at the default level (SEV1).
    assert!(rig.args.freeze.is_empty());

    let opened = rig.rows("incident.opened");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].details["id"], json!(incident.id));
    assert_eq!(opened[0].details["severity"], json!("SEV2"));
    let opened_ms = humantime::parse_rfc3339(&opened[0].ts)
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    for file in &incident.evidence {
        let path = rig.incident_dir(&incident.id).join(file);
        assert!(path.exists(), "{path:?}");
        assert!(
            modified_ms(&path) <= opened_ms,
            "{file} written after the row"
        );
    }
    let audit_evidence: serde_json::Value = serde_json::from_slice(
        &std::fs::read(rig.incident_dir(&incident.id).join(&incident.evidence[1])).unwrap(),
    )
    .unwrap();
    assert_eq!(
        audit_evidence["rows"][0]["caller_session_id"],
        json!(session)
    );
    let observations: serde_json::Value = serde_json::from_slice(
        &std::fs::read(rig.incident_dir(&incident.id).join(&incident.evidence[0])).unwrap(),
    )
    .unwrap();
    assert_eq!(
        observations["api-http"]["history"][0]["status"],
        json!("unhealthy")
    );
    assert!(crate::incidents::evidence_ready(&rig.args.store, "api"));

    // db is a dependency of api, both important: joins, and two important
    // components down raise it to SEV1, which freezes automation on both.
    commander
        .cast(IncidentMsg::Issue(wake(
            2,
            "db-tcp",
            "db",
            Severity::Critical,
        )))
        .unwrap();
    eventually(|| {
        rig.args
            .store
            .get(&incident.id)
            .is_some_and(|i| i.severity == Sev::Sev1)
            && rig.args.freeze.len() == 2
    })
    .await;
    let joined = rig.args.store.get(&incident.id).unwrap().clone();
    assert_eq!(rig.args.store.len(), 1);
    assert_eq!(joined.sessions.len(), 2);
    assert!(joined.components.contains("db") && joined.probes.contains("db-tcp"));
    assert_eq!(
        rig.args.freeze.get("db").map(|e| e.value().clone()),
        Some(incident.id.clone())
    );
    eventually(|| rig.rows("incident.automation_frozen").len() == 1).await;
    let kinds: Vec<String> = read_timeline(&rig.state_dir.join("incidents"), &incident.id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for kind in ["wake", "opened", "evidence", "joined", "severity", "freeze"] {
        assert!(kinds.contains(&kind.to_owned()), "no {kind} in {kinds:?}");
    }

    // An unrelated warning opens its own SEV3; unrelated info opens nothing.
    commander
        .cast(IncidentMsg::Issue(wake(
            3,
            "cache-http",
            "cache",
            Severity::Warning,
        )))
        .unwrap();
    commander
        .cast(IncidentMsg::Issue(wake(
            4,
            "docs-http",
            "docs",
            Severity::Info,
        )))
        .unwrap();
    eventually(|| rig.rows("incident.opened").len() == 2).await;
    // Info is handled after the warning; a timeline call is a barrier.
    let id = ractor::call!(commander, |reply| IncidentMsg::Note {
        id: incident.id.clone(),
        text: "checking db".to_owned(),
        author: Some("ops".to_owned()),
        reply,
    })
    .unwrap();
    assert!(id.is_ok(), "{id:?}");
    assert_eq!(rig.args.store.len(), 2);
    let sev3 = rig
        .args
        .store
        .iter()
        .find(|i| i.id != incident.id)
        .unwrap()
        .clone();
    assert_eq!(sev3.severity, Sev::Sev3);
    assert_eq!(rig.rows("incident.note").len(), 1);

    commander.stop(None);
    rig.writer.stop(None);
}

#[tokio::test]
async fn resolution_is_refused_while_unhealthy_then_writes_the_postmortem() {
    let rig = rig().await;
    push(
        &rig.args.history,
        observation("db-tcp", "db", Health::Unhealthy),
    );
    let commander = rig.commander().await;
    let id = ractor::call!(commander, |reply| IncidentMsg::Open {
        trigger: OpenTrigger::LadderExhausted {
            component: "db".to_owned(),
            history: json!({"rungs": ["restart", "tier"]}),
            session: None,
        },
        reply: Some(reply),
    })
    .unwrap();
    let incident = rig.args.store.get(&id).unwrap().clone();
    // Ladder exhausted on a critical component: SEV1, frozen.
    assert_eq!(incident.severity, Sev::Sev1);
    assert_eq!(
        rig.args.freeze.get("db").map(|e| e.value().clone()),
        Some(id.clone())
    );
    // The probe joins through the component.
    commander
        .cast(IncidentMsg::Issue(wake(
            9,
            "db-tcp",
            "db",
            Severity::Critical,
        )))
        .unwrap();
    eventually(|| {
        rig.args
            .store
            .get(&id)
            .is_some_and(|i| i.probes.contains("db-tcp"))
    })
    .await;

    commander
        .cast(IncidentMsg::Timeline {
            session: None,
            component: Some("db".to_owned()),
            kind: "fix".to_owned(),
            text: "restarted db".to_owned(),
            details: json!({"outcome": "failed"}),
        })
        .unwrap();
    let refused = ractor::call!(commander, |reply| IncidentMsg::Resolve {
        id: id.clone(),
        note: "looks fine".to_owned(),
        force: false,
        reply,
    })
    .unwrap();
    let error = refused.unwrap_err();
    assert!(
        matches!(&error, CommandError::ImpactOngoing(ongoing) if ongoing.probe == "db-tcp"),
        "{error}"
    );

    for _ in 0..3 {
        push(
            &rig.args.history,
            observation("db-tcp", "db", Health::Healthy),
        );
    }
    let accepted = ractor::call!(commander, |reply| IncidentMsg::Resolve {
        id: id.clone(),
        note: "failed over".to_owned(),
        force: false,
        reply,
    })
    .unwrap();
    assert!(accepted.is_ok(), "{accepted:?}");
    let resolved = rig.args.store.get(&id).unwrap().clone();
    assert_eq!(resolved.status, IncidentStatus::Resolved);
    assert!(resolved.resolved_at.is_some());
    assert!(rig.args.freeze.is_empty());
    assert_eq!(rig.rows("incident.resolved").len(), 1);
    assert_eq!(rig.rows("incident.automation_unfrozen").len(), 1);
    let md = std::fs::read_to_string(rig.incident_dir(&id).join("postmortem.md")).unwrap();
    assert!(md.contains("restarted db (outcome: failed)"), "{md}");
    assert!(md.contains("_to be filled in_"));
    assert!(rig.incident_dir(&id).join("postmortem.json").exists());
    let again = ractor::call!(commander, |reply| IncidentMsg::Resolve {
        id: id.clone(),
        note: "again".to_owned(),
        force: true,
        reply,
    })
    .unwrap();
    let again = again.unwrap_err();
    assert!(
        matches!(again, CommandError::Resolved { already: true, .. }),
        "{again}"
    );
    assert!(again.to_string().contains("already resolved"));

    // A forced resolution ignores impact.
    let other = ractor::call!(commander, |reply| IncidentMsg::Open {
        trigger: OpenTrigger::Operator {
            title: "customers report slow checkout".to_owned(),
            severity: Some(Sev::Sev2),
            components: vec!["api".to_owned()],
        },
        reply: Some(reply),
    })
    .unwrap();
    assert_ne!(other, id);
    let changed = ractor::call!(commander, |reply| IncidentMsg::SetSeverity {
        id: other.clone(),
        severity: Sev::Sev0,
        reason: "card data may leak".to_owned(),
        reply,
    })
    .unwrap();
    assert!(changed.is_ok(), "{changed:?}");
    assert!(rig.args.freeze.contains_key("api"));
    let forced = ractor::call!(commander, |reply| IncidentMsg::Resolve {
        id: other.clone(),
        note: "false alarm".to_owned(),
        force: true,
        reply,
    })
    .unwrap();
    assert!(forced.is_ok(), "{forced:?}");
    assert!(rig.args.freeze.is_empty());
    let severity_rows = rig.rows("incident.severity_changed");
    assert_eq!(severity_rows.len(), 1);
    assert_eq!(severity_rows[0].details["to"], json!("SEV0"));

    commander.stop(None);
    rig.writer.stop(None);
}

/// A resolution that passes the impact check but cannot be written is a
/// file error, never the "impact ongoing" refusal an operator would act on.
#[tokio::test]
async fn a_resolution_that_cannot_be_written_is_a_file_error_not_a_refusal() {
    let rig = rig().await;
    let commander = rig.commander().await;
    let id = ractor::call!(commander, |reply| IncidentMsg::Open {
        trigger: OpenTrigger::Operator {
            title: "checkout slow".to_owned(),
            severity: Some(Sev::Sev3),
            components: vec!["api".to_owned()],
        },
        reply: Some(reply),
    })
    .unwrap();
    // A directory where `incident.json` goes: the atomic replace fails even
    // for root, which ignores permission bits.
    let record = rig.incident_dir(&id).join("incident.json");
    std::fs::remove_file(&record).unwrap();
    std::fs::create_dir_all(record.join("blocker")).unwrap();
    let failed = ractor::call!(commander, |reply| IncidentMsg::Resolve {
        id: id.clone(),
        note: "done".to_owned(),
        force: false,
        reply,
    })
    .unwrap();
    let error = failed.unwrap_err();
    assert!(matches!(error, CommandError::Files(_)), "{error:?}");
    assert!(rig.rows("incident.resolved").is_empty());
    commander.stop(None);
    rig.writer.stop(None);
}

#[tokio::test]
async fn a_restarted_commander_reloads_incidents_from_disk() {
    let rig = rig().await;
    let commander = rig.commander().await;
    let id = ractor::call!(commander, |reply| IncidentMsg::Open {
        trigger: OpenTrigger::Meltdown {
            detail: "root restarted 5 times in 10s".to_owned(),
        },
        reply: Some(reply),
    })
    .unwrap();
    commander.stop(None);
    eventually(|| commander.get_status() == ractor::ActorStatus::Stopped).await;

    // A fresh store (a new process): everything comes back from disk.
    let mut args = rig.args.clone();
    args.store = IncidentStore::default();
    args.freeze = FreezeSet::default();
    let (again, _) = Actor::spawn(None, IncidentCommander, args.clone())
        .await
        .unwrap();
    let reloaded = args.store.get(&id).unwrap().clone();
    assert_eq!(reloaded.status, IncidentStatus::Open);
    assert_eq!(reloaded.severity, Sev::Sev1);
    assert!(reloaded.opened_tick.is_some());
    // Meltdown has no components, so nothing to freeze; a second open gets a new id.
    let second = ractor::call!(again, |reply| IncidentMsg::Open {
        trigger: OpenTrigger::Substrate {
            detail: "state dir read-only".to_owned(),
        },
        reply: Some(reply),
    })
    .unwrap();
    assert_ne!(second, id);
    assert_eq!(args.store.len(), 2);
    again.stop(None);
    rig.writer.stop(None);
}

#[tokio::test]
async fn cadence_reminders_fire_on_the_tokio_clock() {
    let mut rig = rig().await;
    rig.args.tick = Duration::from_secs(5);
    let commander = rig.commander().await;
    tokio::time::pause();
    // Keep the runtime busy so the paused clock never auto-advances while
    // the commander waits for the audit thread: only `advance` moves time.
    let spinner = tokio::spawn(async {
        loop {
            tokio::task::yield_now().await;
        }
    });
    let id = ractor::call!(commander, |reply| IncidentMsg::Open {
        trigger: OpenTrigger::Operator {
            title: "api errors".to_owned(),
            severity: Some(Sev::Sev2),
            components: vec!["api".to_owned()],
        },
        reply: Some(reply),
    })
    .unwrap();
    assert!(rig.rows("incident.update_sent").is_empty());
    // SEV2 updates every 30m.
    tokio::time::advance(Duration::from_secs(20 * 60)).await;
    let _ = ractor::call!(commander, |reply| IncidentMsg::Note {
        id: id.clone(),
        text: "still looking".to_owned(),
        author: None,
        reply,
    })
    .unwrap();
    assert!(rig.rows("incident.update_sent").is_empty());
    tokio::time::advance(Duration::from_secs(11 * 60)).await;
    spin_until(|| !rig.rows("incident.update_sent").is_empty()).await;
    let rows = rig.rows("incident.update_sent");
    assert_eq!(rows[0].details["id"], json!(id));
    assert!(rows[0].details["changes"].as_u64().unwrap() >= 1);
    let kinds: Vec<String> = read_timeline(&rig.state_dir.join("incidents"), &id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&"update".to_owned()), "{kinds:?}");
    // Exactly one: the next is 30m away.
    tokio::time::advance(Duration::from_secs(60)).await;
    let _ = ractor::call!(commander, |reply| IncidentMsg::Note {
        id: id.clone(),
        text: "barrier".to_owned(),
        author: None,
        reply,
    })
    .unwrap();
    assert_eq!(rig.rows("incident.update_sent").len(), 1);
    spinner.abort();
    commander.stop(None);
    rig.writer.stop(None);
}

/// Like [`eventually`] without sleeping, for a clock that must not move.
async fn spin_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..200_000 {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition not met");
}

/// The row the debouncer writes for a woken issue.
fn wake_row(probe: &str, component: &str, severity: Severity, session: &str) -> NewRow {
    crate::events::row(&crate::events::Wake {
        probe: probe.to_owned(),
        component: component.to_owned(),
        severity,
        category: "service_unhealthy".to_owned(),
        kind: crate::messages::WakeKind::Fired,
        title: format!("{probe}: service unhealthy"),
        detail: "status 503".to_owned(),
        observation: None,
        consecutive_failures: 2,
        stage: None,
        reminder: 0,
        envelope_status: "absent".to_owned(),
        envelope_fix: None,
        open_issues: Vec::new(),
        traceparent: None,
    })
    .session(session.to_owned())
    .component(component.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_come_from_the_log_after_the_commanders_cursor_even_across_a_kill() {
    let rig = rig().await;
    // A short tick: the tick is when a quiet log's progress is stored.
    let mut args = rig.args.clone();
    args.tick = Duration::from_millis(50);
    let spawn = || async {
        Actor::spawn(None, IncidentCommander, args.clone())
            .await
            .unwrap()
            .0
    };
    let commander = spawn().await;
    let first = rig
        .audit
        .append(wake_row(
            "api-http",
            "api",
            Severity::Critical,
            "probe:api-http:s:1",
        ))
        .await
        .unwrap();
    eventually(|| rig.rows("incident.opened").len() == 1).await;
    let cursor = || {
        crate::audit::Cursor::load(&rig.state_dir.join("cursors"), "incident-commander")
            .ok()
            .flatten()
            .unwrap_or(0)
    };
    eventually(|| cursor() >= first).await;

    // Killed (no post_stop); a row is written while nobody reads the log.
    commander.kill();
    eventually(|| commander.get_status() == ractor::ActorStatus::Stopped).await;
    let second = rig
        .audit
        .append(wake_row(
            "cache-http",
            "cache",
            Severity::Warning,
            "probe:cache-http:s:2",
        ))
        .await
        .unwrap();
    let _again = spawn().await;
    eventually(|| rig.rows("incident.opened").len() == 2).await;
    eventually(|| cursor() >= second).await;
    // The first issue's row was before the cursor: not taken up a second time.
    assert_eq!(rig.args.store.len(), 2);
    // The critical issue is still open: the tally survived the kill.
    let tally: serde_json::Value = serde_json::from_slice(
        &std::fs::read(rig.state_dir.join("incidents/commander.json")).unwrap(),
    )
    .unwrap();
    assert!(
        tally["open_critical"]["api"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{tally}"
    );
}
