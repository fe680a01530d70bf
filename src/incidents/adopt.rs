//! Incidents the log knows and this node's disk does not: adopted at start.
//!
//! The commander saves an incident before it writes `incident.opened`, so
//! on one node every opened row after the cursor has its file, and a crash
//! replay finds the incident and joins its issue to it again. In cluster
//! mode the files come from another node, copied at most half a second
//! late; an incident that node opened in its last moments is only in the
//! log. Replaying its issue row would open it a second time (same id, a
//! second opening notice). So before the replay, every such incident is
//! rebuilt from its `incident.opened` row (with its resolution and the
//! count of its notices, when the log has them), and the replay then joins
//! it like any other.

use std::collections::BTreeMap;
use std::path::Path;

use super::model::{Incident, IncidentStatus, SeverityChange};
use crate::audit::{AuditReader, RowView};
use crate::events::{self, incident as ev};

/// Seams the adoption reads.
const SEAMS: [&str; 3] = ["incident.opened", "incident.resolved", "notice.requested"];

/// The incidents opened after `after` (the commander's cursor) that
/// `known` does not hold, rebuilt from the log.
pub(super) fn from_log(
    audit_dir: &Path,
    after: u64,
    known: impl Fn(&str) -> bool,
) -> Vec<Incident> {
    let Ok(reader) = AuditReader::open(audit_dir) else {
        return Vec::new();
    };
    let mut adopted: BTreeMap<String, Incident> = BTreeMap::new();
    for row in reader.rows_from(after + 1, None).filter_map(Result::ok) {
        if !SEAMS.contains(&row.seam()) {
            continue;
        }
        if let Ok(opened) = events::parse::<ev::Opened>(&row) {
            if !known(&opened.id) && !adopted.contains_key(&opened.id) {
                let incident = rebuilt(opened, row.seq, &row.ts);
                adopted.insert(incident.id.clone(), incident);
            }
        } else if let Ok(resolved) = events::parse::<ev::Resolved>(&row) {
            if let Some(incident) = adopted.get_mut(&resolved.id) {
                incident.status = IncidentStatus::Resolved;
                incident.severity = resolved.severity;
                incident.resolved_at = Some(row.ts.clone());
                incident.updated_at = row.ts.clone();
            }
        } else if row.seam() == "notice.requested"
            && let Some(incident) = row
                .caller_session_id
                .as_deref()
                .and_then(|id| adopted.get_mut(id))
        {
            // Numbers the next notice's idempotency key past the ones sent.
            incident.notices_requested += 1;
        }
    }
    adopted.into_values().collect()
}

fn rebuilt(opened: ev::Opened, seq: u64, ts: &str) -> Incident {
    let (components, probes, sessions) = opened.trigger.scope();
    Incident {
        id: opened.id,
        severity: opened.severity,
        status: IncidentStatus::Open,
        title: opened.title,
        components,
        probes,
        sessions,
        resolved_sessions: Default::default(),
        opened_at: ts.to_owned(),
        updated_at: ts.to_owned(),
        resolved_at: None,
        trigger: opened.trigger,
        last_update_at: ts.to_owned(),
        severity_history: vec![SeverityChange {
            at: ts.to_owned(),
            from: None,
            to: opened.severity,
            reason: opened.reason,
        }],
        evidence: opened.evidence,
        opened_seq: seq,
        notices_sent: 0,
        notices_requested: 0,
        deliveries_read: 0,
        last_update_tick: None,
        opened_tick: None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::audit::{NewRow, file_name};
    use crate::incidents::{OpenTrigger, Sev};
    use crate::settings::Severity;

    fn opened(id: &str, session: &str) -> NewRow {
        events::row(&ev::Opened {
            id: id.to_owned(),
            severity: Sev::Sev2,
            title: format!("{id} title"),
            reason: "a critical issue".to_owned(),
            evidence: vec!["evidence/01-issue-observations.json".to_owned()],
            trigger: OpenTrigger::Issue {
                caller_session_id: Some(session.to_owned()),
                probe: "api".to_owned(),
                component: "web".to_owned(),
                category: "service_unhealthy".to_owned(),
                severity: Severity::Critical,
                seq: 1,
            },
        })
        .session(session)
    }

    #[test]
    fn incidents_only_the_log_knows_are_rebuilt_with_their_resolution_and_notices() {
        let dir = tempfile::tempdir().unwrap();
        let resolved = events::row(&ev::Resolved {
            id: "INC-B".to_owned(),
            severity: Sev::Sev3,
            note: "impact stopped".to_owned(),
            force: false,
            by: "warden".to_owned(),
            duration_s: Some(4),
        });
        let rows = [
            NewRow::new("probe.wake_requested", serde_json::json!({})),
            opened("INC-A", "s1"),
            NewRow::new("notice.requested", serde_json::json!({})).session("INC-A"),
            opened("INC-B", "s2"),
            resolved,
            opened("INC-K", "s3"),
        ];
        let mut bytes = Vec::new();
        for (seq, row) in (1..).zip(rows) {
            row.stamp(seq, SystemTime::now()).encode_into(&mut bytes);
        }
        std::fs::write(dir.path().join(file_name(1)), bytes).unwrap();

        let adopted = from_log(dir.path(), 0, |id| id == "INC-K");
        let ids: Vec<&str> = adopted.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["INC-A", "INC-B"], "the known one is left alone");
        let (a, b) = (&adopted[0], &adopted[1]);
        assert_eq!(a.status, IncidentStatus::Open);
        assert_eq!(a.opened_seq, 2);
        assert_eq!(
            a.notices_requested, 1,
            "the next notice is numbered past it"
        );
        assert!(a.sessions.contains("s1") && a.components.contains("web"));
        assert_eq!(b.status, IncidentStatus::Resolved);
        assert_eq!(b.severity, Sev::Sev3);
        // From a later cursor only what comes after it is in view: B's
        // resolution alone adopts nothing.
        let later: Vec<String> = from_log(dir.path(), 4, |_| false)
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(later, ["INC-K"]);
        assert!(from_log(dir.path(), 6, |_| false).is_empty());
    }
}
