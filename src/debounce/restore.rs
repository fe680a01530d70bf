//! Boot-time rebuild of open issues from the audit log: an outage that
//! continues across a restart of Warden is not woken a second time, and its
//! recovery still writes `probe.resolved` under the same story.

use std::collections::HashMap;
use std::path::Path;

use super::state::RestoredIssue;
use crate::audit::{AuditError, AuditReader};
use crate::events::{self, Decoded};
use crate::messages::WakeKind;

/// An issue that was open when the log ends.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAtBoot {
    /// What the state machine needs.
    pub issue: RestoredIssue,
    /// The issue's `caller_session_id`.
    pub session: Option<String>,
    /// The issue's `traceparent`, so its recovery continues the same trace.
    pub trace: Option<String>,
}

/// Walks every `probe.*` row and returns, per probe, the issue still open at
/// the end of the log. Cost is one pass over the log at boot.
pub fn open_issues(audit_dir: &Path) -> Result<HashMap<String, OpenAtBoot>, AuditError> {
    let mut open: HashMap<String, OpenAtBoot> = HashMap::new();
    if !audit_dir.exists() {
        return Ok(open);
    }
    let reader = AuditReader::open(audit_dir)?;
    for row in reader.rows_from(1, Some("probe.*")) {
        let row = match row {
            Ok(row) => row,
            // A corrupt row was reported at recovery; skip it rather than refuse to boot.
            Err(AuditError::CorruptRow { .. }) => continue,
            Err(other) => return Err(other),
        };
        match events::decode(&row) {
            Decoded::Wake(wake) if row.seam == "probe.wake_requested" => {
                let previous_stage = open.get(&wake.probe).and_then(|o| o.issue.stage.clone());
                open.insert(
                    wake.probe,
                    OpenAtBoot {
                        issue: RestoredIssue {
                            category: wake.category,
                            severity: wake.severity,
                            stage: wake.stage.or(previous_stage),
                            woken: true,
                        },
                        session: row.caller_session_id.clone(),
                        trace: wake.traceparent,
                    },
                );
            }
            Decoded::Suppressed(held)
                if held.kind == WakeKind::Fired || !open.contains_key(&held.probe) =>
            {
                open.insert(
                    held.probe,
                    OpenAtBoot {
                        issue: RestoredIssue {
                            category: held.category,
                            severity: held.severity,
                            stage: None,
                            woken: false,
                        },
                        session: row.caller_session_id.clone(),
                        trace: held.traceparent,
                    },
                );
            }
            Decoded::Resolved(resolved) => {
                open.remove(&resolved.probe);
            }
            _ => {}
        }
    }
    Ok(open)
}
