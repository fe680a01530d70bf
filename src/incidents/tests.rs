//! Unit tests of the pure parts (severity rules, joining, resolution,
//! cadence, files, postmortem) and actor tests of the commander.

mod actor;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::disk;
use super::model::{Incident, IncidentStatus, OpenTrigger, SeverityChange, TimelineEntry};
use super::severity::{Sev, SeverityFacts, freezes, is_integrity_category, rate};
use super::state::{cadence_due, impact_stopped, joins, related_components};
use crate::debounce::ObservationHistory;
use crate::messages::{Health, Observation};
use crate::settings::{
    CadenceSettings, ConfigSource, Criticality, IncidentSettings, Severity, load_with_env,
};

pub(super) fn observation(probe: &str, component: &str, status: Health) -> Observation {
    Observation {
        probe: probe.to_owned(),
        component: component.to_owned(),
        status,
        latency_ms: 3,
        reasons: if status == Health::Healthy {
            Vec::new()
        } else {
            vec!["status 503 (expected 2xx)".to_owned()]
        },
        stage: None,
        details: json!({}),
        at: "2025-01-01T00:00:00.000Z".to_owned(),
    }
}

pub(super) fn push(history: &ObservationHistory, o: Observation) {
    history.entry(o.probe.clone()).or_default().push_back(o);
}

pub(super) fn incident(id: &str, components: &[&str], probes: &[&str]) -> Incident {
    Incident {
        id: id.to_owned(),
        severity: Sev::Sev2,
        status: IncidentStatus::Open,
        title: "api: service_unhealthy (api-http)".to_owned(),
        components: components.iter().map(|c| (*c).to_owned()).collect(),
        probes: probes.iter().map(|p| (*p).to_owned()).collect(),
        sessions: BTreeSet::from(["probe:api-http:service_unhealthy:7".to_owned()]),
        resolved_sessions: BTreeSet::new(),
        opened_at: "2025-01-01T10:00:00.000Z".to_owned(),
        updated_at: "2025-01-01T10:00:00.000Z".to_owned(),
        resolved_at: None,
        trigger: OpenTrigger::Meltdown {
            detail: "test".to_owned(),
        },
        last_update_at: "2025-01-01T10:00:00.000Z".to_owned(),
        severity_history: vec![SeverityChange {
            at: "2025-01-01T10:00:00.000Z".to_owned(),
            from: None,
            to: Sev::Sev2,
            reason: "critical issue".to_owned(),
        }],
        evidence: Vec::new(),
        opened_seq: 3,
        notices_sent: 0,
        notices_requested: 0,
        deliveries_read: 0,
        last_update_tick: None,
        opened_tick: None,
    }
}

fn facts(category: &str, issue: Severity) -> SeverityFacts<'_> {
    SeverityFacts {
        category,
        issue,
        criticality: Criticality::Normal,
        ladder_exhausted: false,
        important_components_down: 1,
    }
}

#[test]
fn severity_rules_follow_the_table() {
    for category in [
        "credential_expired",
        "signature_mismatch",
        "payload_hash_failed",
        "integrity_check",
        "cross_tenant_read",
        "security_alert",
    ] {
        assert!(is_integrity_category(category), "{category}");
        assert_eq!(
            rate(&facts(category, Severity::Info)),
            Sev::Sev0,
            "{category}"
        );
    }
    assert!(!is_integrity_category("credential_expiring"));
    assert!(!is_integrity_category("service_unhealthy"));

    let exhausted = |criticality| SeverityFacts {
        criticality,
        ladder_exhausted: true,
        ..facts("ladder_exhausted", Severity::Critical)
    };
    assert_eq!(rate(&exhausted(Criticality::Critical)), Sev::Sev1);
    assert_eq!(rate(&exhausted(Criticality::High)), Sev::Sev2);

    let several = SeverityFacts {
        important_components_down: 2,
        ..facts("service_unhealthy", Severity::Critical)
    };
    assert_eq!(rate(&several), Sev::Sev1);
    // Several components down only matters for critical issues.
    let several_warnings = SeverityFacts {
        important_components_down: 3,
        ..facts("service_degraded", Severity::Warning)
    };
    assert_eq!(rate(&several_warnings), Sev::Sev3);

    assert_eq!(
        rate(&facts("service_unhealthy", Severity::Critical)),
        Sev::Sev2
    );
    assert_eq!(
        rate(&facts("service_degraded", Severity::Warning)),
        Sev::Sev3
    );
    assert_eq!(rate(&facts("note", Severity::Info)), Sev::Sev4);
}

#[test]
fn sev_orders_worst_first_and_round_trips() {
    assert!(Sev::Sev0 < Sev::Sev1 && Sev::Sev3 < Sev::Sev4);
    assert_eq!(serde_json::to_value(Sev::Sev2).unwrap(), json!("SEV2"));
    assert_eq!(
        serde_json::from_value::<Sev>(json!("SEV0")).unwrap(),
        Sev::Sev0
    );
    assert_eq!("sev3".parse::<Sev>(), Ok(Sev::Sev3));
    assert!("SEV9".parse::<Sev>().is_err());
    assert_eq!(Sev::Sev1.notice_severity(), Severity::Critical);
    assert_eq!(Sev::Sev2.notice_severity(), Severity::Critical);
    assert_eq!(Sev::Sev3.notice_severity(), Severity::Warning);
    assert_eq!(Sev::Sev4.notice_severity(), Severity::Info);
}

#[test]
fn freeze_applies_at_or_above_the_level() {
    assert!(freezes(Sev::Sev0, Some(Sev::Sev1)));
    assert!(freezes(Sev::Sev1, Some(Sev::Sev1)));
    assert!(!freezes(Sev::Sev2, Some(Sev::Sev1)));
    assert!(!freezes(Sev::Sev0, None));
    assert!(freezes(Sev::Sev3, Some(Sev::Sev3)));
}

#[test]
fn related_issues_join_by_session_component_or_dependency_in_window() {
    let depends_on = HashMap::from([("api".to_owned(), vec!["db".to_owned()])]);
    assert!(related_components("api", "db", &depends_on));
    assert!(related_components("db", "api", &depends_on));
    assert!(!related_components("api", "cache", &depends_on));

    let open = incident("INC-1", &["api"], &["api-http"]);
    let window = Duration::from_secs(1800);
    let young = Duration::from_secs(60);
    let old = Duration::from_secs(3600);
    // Same component: always.
    assert!(joins(&open, None, "api", &depends_on, old, window));
    // Dependency: only inside the window.
    assert!(joins(&open, None, "db", &depends_on, young, window));
    assert!(!joins(&open, None, "db", &depends_on, old, window));
    // Unrelated: never, unless the session is already part of it.
    assert!(!joins(&open, None, "cache", &depends_on, young, window));
    assert!(joins(
        &open,
        Some("probe:api-http:service_unhealthy:7"),
        "cache",
        &depends_on,
        old,
        window
    ));
    // Resolved incidents take nothing.
    let mut resolved = open.clone();
    resolved.status = IncidentStatus::Resolved;
    assert!(!joins(&resolved, None, "api", &depends_on, young, window));
}

#[test]
fn resolution_needs_consecutive_healthy_observations() {
    let history = ObservationHistory::default();
    let probes = vec!["api-http".to_owned()];
    let err = impact_stopped(&probes, &history, 3).unwrap_err();
    assert_eq!(err.probe, "api-http");
    assert!(
        err.to_string()
            .contains("probe api-http is still unhealthy"),
        "{err}"
    );

    push(&history, observation("api-http", "api", Health::Unhealthy));
    push(&history, observation("api-http", "api", Health::Healthy));
    push(&history, observation("api-http", "api", Health::Healthy));
    assert!(impact_stopped(&probes, &history, 3).is_err());
    push(&history, observation("api-http", "api", Health::Degraded));
    assert!(impact_stopped(&probes, &history, 1).is_err());
    for _ in 0..3 {
        push(&history, observation("api-http", "api", Health::Healthy));
    }
    assert_eq!(impact_stopped(&probes, &history, 3), Ok(()));
    // No probes: nothing to wait for.
    assert_eq!(impact_stopped(&Vec::new(), &history, 3), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn cadence_is_due_per_severity() {
    let cadence = CadenceSettings::default();
    let start = Instant::now();
    tokio::time::advance(Duration::from_secs(14 * 60)).await;
    assert!(!cadence_due(&cadence, Sev::Sev1, start, Instant::now()));
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(cadence_due(&cadence, Sev::Sev1, start, Instant::now()));
    assert!(cadence_due(&cadence, Sev::Sev0, start, Instant::now()));
    assert!(!cadence_due(&cadence, Sev::Sev2, start, Instant::now()));
    tokio::time::advance(Duration::from_secs(15 * 60)).await;
    assert!(cadence_due(&cadence, Sev::Sev2, start, Instant::now()));
    // SEV3 and SEV4 have no cadence by default.
    tokio::time::advance(Duration::from_secs(24 * 3600)).await;
    assert!(!cadence_due(&cadence, Sev::Sev3, start, Instant::now()));
    assert!(!cadence_due(&cadence, Sev::Sev4, start, Instant::now()));
}

#[test]
fn incident_and_timeline_round_trip_and_tolerate_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("incidents");
    let id = disk::claim_id(&root, "20250101").unwrap();
    assert_eq!(id, "INC-20250101-001");
    assert_eq!(
        disk::claim_id(&root, "20250101").unwrap(),
        "INC-20250101-002"
    );
    let mut saved = incident(&id, &["api"], &["api-http"]);
    saved.evidence = vec!["evidence/01-issue-observations.json".to_owned()];
    disk::save(&root, &saved).unwrap();
    let first = TimelineEntry::now("opened", "opened as SEV2", json!({"a": 1}));
    disk::append_timeline(&root, &id, &first).unwrap();
    // A crash mid-append leaves half a line.
    let path = root.join(&id).join(disk::TIMELINE_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"at":"2025-01-01T10:0"#);
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(
        disk::read_timeline(&root, &id).unwrap(),
        vec![first.clone()]
    );
    // The next append starts on a fresh line, so it is not swallowed.
    let second = TimelineEntry::now("note", "ops: looking", json!(null));
    disk::append_timeline(&root, &id, &second).unwrap();
    let entries = disk::read_timeline(&root, &id).unwrap();
    assert_eq!(entries, vec![first, second]);

    let (loaded, skipped) = disk::load_all(&root).unwrap();
    assert_eq!(loaded, vec![saved]);
    // The second claimed id never got an incident.json.
    assert_eq!(skipped.len(), 1);
    assert!(disk::read_timeline(&root, "INC-none").unwrap().is_empty());
}

#[test]
fn incident_files_are_private_and_planted_symlinks_redirect_nothing() {
    use std::os::unix::fs::{MetadataExt, symlink};
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let root = dir.path().join("incidents");
    let id = disk::claim_id(&root, "20250101").unwrap();
    let incident_dir = root.join(&id);
    // The temporary names the old writer derived from the target.
    for name in ["incident.tmp", "postmortem.tmp"] {
        symlink(&victim, incident_dir.join(name)).unwrap();
    }
    disk::save(&root, &incident(&id, &["api"], &["api-http"])).unwrap();
    disk::write_postmortem(&root, &id, "# postmortem\n", &json!({})).unwrap();
    let evidence = disk::write_evidence(&root, &id, "audit", &json!({})).unwrap();
    disk::append_timeline(&root, &id, &TimelineEntry::now("note", "x", json!(null))).unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&incident_dir), 0o700);
    for file in [
        disk::INCIDENT_FILE,
        disk::TIMELINE_FILE,
        "postmortem.md",
        "postmortem.json",
        evidence.as_str(),
    ] {
        assert_eq!(mode(&incident_dir.join(file)), 0o600, "{file}");
    }
    // A timeline replaced by a link is refused, not followed.
    std::fs::remove_file(incident_dir.join(disk::TIMELINE_FILE)).unwrap();
    symlink(&victim, incident_dir.join(disk::TIMELINE_FILE)).unwrap();
    assert!(
        disk::append_timeline(&root, &id, &TimelineEntry::now("note", "y", json!(null))).is_err()
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
}

#[test]
fn evidence_files_are_numbered_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let a = disk::write_evidence(&root, "INC-1", "audit", &json!({"n": 1})).unwrap();
    let b = disk::write_evidence(&root, "INC-1", "audit", &json!({"n": 2})).unwrap();
    let c = disk::write_evidence(&root, "INC-1", "../../etc/passwd", &json!({})).unwrap();
    assert_eq!(a, "evidence/01-audit.json");
    assert_eq!(b, "evidence/02-audit.json");
    assert_eq!(c, "evidence/03-_.._etc_passwd.json");
    let first: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("INC-1").join(&a)).unwrap()).unwrap();
    assert_eq!(first, json!({"n": 1}));
    // A gap (a file removed by hand) does not lead to overwriting.
    std::fs::remove_file(root.join("INC-1").join(&a)).unwrap();
    let d = disk::write_evidence(&root, "INC-1", "audit", &json!({"n": 4})).unwrap();
    assert_eq!(d, "evidence/04-audit.json");
}

#[test]
fn postmortem_has_timeline_impact_automation_and_placeholders() {
    let mut resolved = incident("INC-20250101-001", &["api", "db"], &["api-http"]);
    resolved.status = IncidentStatus::Resolved;
    resolved.resolved_at = Some("2025-01-01T10:45:00.000Z".to_owned());
    resolved.notices_sent = 4;
    let timeline = vec![
        TimelineEntry {
            at: "2025-01-01T10:00:00.000Z".to_owned(),
            kind: "opened".to_owned(),
            text: "opened as SEV2".to_owned(),
            details: json!(null),
        },
        TimelineEntry {
            at: "2025-01-01T10:05:00.000Z".to_owned(),
            kind: "fix".to_owned(),
            text: "restart api".to_owned(),
            details: json!({"outcome": "failed"}),
        },
        TimelineEntry {
            at: "2025-01-01T10:20:00.000Z".to_owned(),
            kind: "rollback".to_owned(),
            text: "rolled back to v41".to_owned(),
            details: json!({"ok": true}),
        },
    ];
    let (md, json) = super::postmortem::build(&resolved, &timeline);
    for needle in [
        "# Postmortem INC-20250101-001",
        "## Timeline (UTC)",
        "- 2025-01-01T10:05:00.000Z `fix` restart api",
        "Components: api, db",
        "Probes: api-http",
        "Duration: 45m",
        "Notices sent: 4",
        "## What the automation did",
        "restart api (outcome: failed)",
        "rolled back to v41 (outcome: worked)",
        "## Root cause\n\n_to be filled in_",
        "## Corrective actions",
        "| action | owner | deadline |",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    assert_eq!(json["impact"]["duration_s"], json!(2700));
    assert_eq!(json["automation"].as_array().unwrap().len(), 2);
    assert_eq!(
        json["corrective_actions"][0]["owner"],
        json!("_to be filled in_")
    );
    assert_eq!(json["timeline"].as_array().unwrap().len(), 3);
}

#[test]
fn evidence_ready_needs_an_open_incident_with_evidence() {
    let store = super::IncidentStore::default();
    assert!(!super::evidence_ready(&store, "api"));
    let mut open = incident("INC-1", &["api"], &["api-http"]);
    store.insert(open.id.clone(), open.clone());
    assert!(!super::evidence_ready(&store, "api"));
    open.evidence = vec!["evidence/01-x.json".to_owned()];
    store.insert(open.id.clone(), open.clone());
    assert!(super::evidence_ready(&store, "api"));
    assert!(!super::evidence_ready(&store, "db"));
    open.status = IncidentStatus::Resolved;
    store.insert(open.id.clone(), open);
    assert!(!super::evidence_ready(&store, "api"));
    let _ = Arc::clone(&store);
}

fn text(toml: &str) -> ConfigSource {
    ConfigSource::Text {
        name: "test.toml".to_owned(),
        toml: toml.to_owned(),
    }
}

#[test]
fn settings_parse_levels_and_cadences() {
    let settings = load_with_env(
        &text(
            "[incidents]\nfreeze_automation_at = \"none\"\nrelated_window = \"10m\"\n[incidents.cadence]\nsev2 = \"none\"\nsev3 = \"1h\"\n",
        ),
        Some(HashMap::new()),
    )
    .unwrap();
    let incidents = settings.incidents;
    assert_eq!(incidents.freeze_automation_at, None);
    assert_eq!(incidents.related_window, Duration::from_secs(600));
    assert_eq!(incidents.cadence.sev2, None);
    assert_eq!(incidents.cadence.sev3, Some(Duration::from_secs(3600)));
    assert_eq!(incidents.cadence.sev0, Some(Duration::from_secs(900)));

    let defaults = IncidentSettings::default();
    assert_eq!(defaults.freeze_automation_at, Some(Sev::Sev1));
    assert_eq!(defaults.resolve_after_healthy_cycles, 3);
    assert_eq!(defaults.evidence_rows, 200);
    let env = HashMap::from([(
        "WARDEN__INCIDENTS__FREEZE_AUTOMATION_AT".to_owned(),
        "SEV0".to_owned(),
    )]);
    let settings = load_with_env(&text(""), Some(env)).unwrap();
    assert_eq!(settings.incidents.freeze_automation_at, Some(Sev::Sev0));
}

#[test]
fn settings_problems_name_their_keys() {
    let error = load_with_env(
        &text(
            "[incidents]\nresolve_after_healthy_cycles = 0\nrelated_window = \"0s\"\nevidence_rows = 0\n[incidents.cadence]\nsev1 = \"0s\"\n",
        ),
        Some(HashMap::new()),
    )
    .unwrap_err();
    let joined = error.lines().join("\n");
    for needle in [
        "incidents.resolve_after_healthy_cycles: must be at least 1",
        "incidents.related_window: must be greater than zero",
        "incidents.evidence_rows: must be between 1 and 100000",
        "incidents.cadence.sev1: must be at least 1s",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in {joined}");
    }
    let error = load_with_env(
        &text("[wake]\nhistory = 2\n[incidents]\nresolve_after_healthy_cycles = 3\n"),
        Some(HashMap::new()),
    )
    .unwrap_err();
    assert!(
        error
            .lines()
            .join("\n")
            .contains("incidents.resolve_after_healthy_cycles: must be at most wake.history (2)")
    );
    let error = load_with_env(
        &text("[incidents]\nfreeze_automation_at = \"SEV7\"\n"),
        Some(HashMap::new()),
    )
    .unwrap_err();
    assert!(error.to_string().contains("SEV7") || error.lines().join(" ").contains("SEV7"));
}
