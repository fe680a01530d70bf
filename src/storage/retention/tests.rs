use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use super::*;
use crate::incidents::{Incident, IncidentStatus, OpenTrigger, Sev};

const HOUR: Duration = Duration::from_secs(3600);

/// Writes segments starting at `firsts` (each `size` bytes), the oldest
/// modified `ages[i]` ago.
fn segments(state: &Path, firsts: &[u64], ages: &[Duration], size: usize, now: SystemTime) {
    let dir = crate::app::audit_dir(state);
    std::fs::create_dir_all(&dir).unwrap();
    for (first, age) in firsts.iter().zip(ages) {
        let path = dir.join(crate::audit::file_name(*first));
        std::fs::write(&path, vec![b'x'; size]).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(now - *age).unwrap();
    }
}

fn remaining(state: &Path) -> Vec<u64> {
    crate::audit::list_segments(&crate::app::audit_dir(state))
        .unwrap()
        .into_iter()
        .map(|(first, _)| first)
        .collect()
}

fn cursor(state: &Path, seq: u64) {
    crate::audit::Cursor::new(&state.join("cursors"), "wake-consumer")
        .unwrap()
        .store(seq)
        .unwrap();
}

#[test]
fn old_segments_go_but_never_the_newest_nor_one_a_cursor_has_not_read() {
    let state = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let old = 48 * HOUR;
    segments(
        state.path(),
        &[1, 11, 21, 31],
        &[old, old, old, old],
        10,
        now,
    );
    // The consumer has handled up to seq 15: segment 1 (rows 1..=10) is
    // read, segment 11 (rows 11..=20) is not.
    cursor(state.path(), 15);
    let policy = RetentionPolicy {
        audit_retain_for: Some(24 * HOUR),
        ..RetentionPolicy::default()
    };
    let report = run_retention(state.path(), &policy, now);
    assert_eq!(remaining(state.path()), vec![11, 21, 31], "{report:?}");
    assert_eq!(report.audit_held_for_cursor, 1);
    assert_eq!(report.audit_bytes, 10);

    // Once the cursor moves past everything, all but the newest go.
    cursor(state.path(), 40);
    let report = run_retention(state.path(), &policy, now);
    assert_eq!(remaining(state.path()), vec![31], "{report:?}");
    assert_eq!(report.audit_held_for_cursor, 0);
}

#[test]
fn young_segments_stay_under_an_age_limit() {
    let state = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    segments(
        state.path(),
        &[1, 11, 21],
        &[48 * HOUR, HOUR, HOUR],
        10,
        now,
    );
    let policy = RetentionPolicy {
        audit_retain_for: Some(24 * HOUR),
        ..RetentionPolicy::default()
    };
    run_retention(state.path(), &policy, now);
    assert_eq!(remaining(state.path()), vec![11, 21]);
}

#[test]
fn the_log_is_trimmed_oldest_first_to_its_size_limit() {
    let state = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let young = Duration::from_secs(1);
    segments(state.path(), &[1, 11, 21, 31, 41], &[young; 5], 100, now);
    cursor(state.path(), 50);
    let policy = RetentionPolicy {
        audit_retain_bytes: Some(250),
        ..RetentionPolicy::default()
    };
    let report = run_retention(state.path(), &policy, now);
    assert_eq!(remaining(state.path()), vec![31, 41], "{report:?}");
    assert_eq!(report.audit_bytes, 300);
}

#[test]
fn an_unreadable_cursor_keeps_the_whole_log() {
    let state = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    segments(state.path(), &[1, 11], &[48 * HOUR, 48 * HOUR], 10, now);
    std::fs::create_dir_all(state.path().join("cursors")).unwrap();
    std::fs::write(state.path().join("cursors/wake-consumer"), "garbage").unwrap();
    let policy = RetentionPolicy {
        audit_retain_for: Some(HOUR),
        ..RetentionPolicy::default()
    };
    let report = run_retention(state.path(), &policy, now);
    assert_eq!(remaining(state.path()), vec![1, 11]);
    assert!(!report.errors.is_empty());
}

#[test]
fn an_off_policy_removes_nothing() {
    let state = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    segments(state.path(), &[1, 11], &[480 * HOUR, 480 * HOUR], 10, now);
    let report = run_retention(state.path(), &RetentionPolicy::default(), now);
    assert!(RetentionPolicy::default().is_off());
    assert!(!report.removed_anything());
    assert_eq!(remaining(state.path()), vec![1, 11]);
}

fn incident(id: &str, status: IncidentStatus, resolved_at: Option<jiff::Timestamp>) -> Incident {
    let at = "2025-01-01T10:00:00.000Z".to_owned();
    Incident {
        id: id.to_owned(),
        severity: Sev::Sev2,
        status,
        title: "api: service_unhealthy".to_owned(),
        components: BTreeSet::new(),
        probes: BTreeSet::new(),
        sessions: BTreeSet::new(),
        resolved_sessions: BTreeSet::new(),
        opened_at: at.clone(),
        updated_at: at.clone(),
        resolved_at: resolved_at.map(|t| t.to_string()),
        trigger: OpenTrigger::Meltdown {
            detail: "test".to_owned(),
        },
        last_update_at: at,
        severity_history: Vec::new(),
        evidence: Vec::new(),
        opened_seq: 1,
        notices_sent: 0,
        notices_requested: 0,
        deliveries_read: 0,
        last_update_tick: None,
        opened_tick: None,
    }
}

fn save(state: &Path, incident: &Incident) {
    let dir = crate::incidents::incidents_root(state).join(&incident.id);
    std::fs::create_dir_all(dir.join("evidence")).unwrap();
    std::fs::write(dir.join("evidence/01-x.json"), "{}").unwrap();
    std::fs::write(
        dir.join("incident.json"),
        serde_json::to_vec(incident).unwrap(),
    )
    .unwrap();
}

#[test]
fn only_resolved_incidents_older_than_the_limit_are_removed() {
    let state = tempfile::tempdir().unwrap();
    let now = jiff::Timestamp::now();
    let days_ago = |d: i64| Some(now - jiff::SignedDuration::from_hours(24 * d));
    let old_resolved = incident("INC-20250101-001", IncidentStatus::Resolved, days_ago(10));
    let new_resolved = incident("INC-20250101-002", IncidentStatus::Resolved, days_ago(1));
    let old_open = incident("INC-20250101-003", IncidentStatus::Open, None);
    let old_mitigated = incident("INC-20250101-004", IncidentStatus::Mitigated, days_ago(10));
    for i in [&old_resolved, &new_resolved, &old_open, &old_mitigated] {
        save(state.path(), i);
    }
    let policy = RetentionPolicy {
        incidents_retain_for: Some(7 * 24 * HOUR),
        ..RetentionPolicy::default()
    };
    let report = run_retention(state.path(), &policy, SystemTime::from(now));
    assert_eq!(report.incidents, vec!["INC-20250101-001".to_owned()]);
    let root = crate::incidents::incidents_root(state.path());
    assert!(!root.join("INC-20250101-001").exists());
    for kept in ["INC-20250101-002", "INC-20250101-003", "INC-20250101-004"] {
        assert!(root.join(kept).join("incident.json").exists(), "{kept}");
    }
}
