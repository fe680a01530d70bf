//! Boot-time rebuild of open issues from the audit log: an outage that
//! continues across a restart of Warden is not woken a second time, and its
//! recovery still writes `probe.resolved` under the same story.

use std::collections::HashMap;
use std::path::Path;

use super::state::RestoredIssue;
use crate::audit::{AuditError, AuditReader};
use crate::settings::Severity;

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
        let Some(probe) = row.details["probe"].as_str().map(str::to_owned) else {
            continue;
        };
        let kind = row.details["kind"].as_str().unwrap_or("fired");
        let category = row.details["category"]
            .as_str()
            .unwrap_or("service_unhealthy")
            .to_owned();
        let severity: Severity =
            serde_json::from_value(row.details["severity"].clone()).unwrap_or_default();
        let stage = row.details["stage"].as_str().map(str::to_owned);
        match row.seam.as_str() {
            "probe.wake_requested" => {
                let previous_stage = open.get(&probe).and_then(|o| o.issue.stage.clone());
                open.insert(
                    probe,
                    OpenAtBoot {
                        issue: RestoredIssue {
                            category,
                            severity,
                            stage: stage.or(previous_stage),
                            woken: true,
                        },
                        session: row.caller_session_id.clone(),
                        trace: row.details["traceparent"].as_str().map(str::to_owned),
                    },
                );
            }
            "probe.wake_suppressed" if kind == "fired" || !open.contains_key(&probe) => {
                open.insert(
                    probe,
                    OpenAtBoot {
                        issue: RestoredIssue {
                            category,
                            severity,
                            stage,
                            woken: false,
                        },
                        session: row.caller_session_id.clone(),
                        trace: row.details["traceparent"].as_str().map(str::to_owned),
                    },
                );
            }
            "probe.resolved" => {
                open.remove(&probe);
            }
            _ => {}
        }
    }
    Ok(open)
}
