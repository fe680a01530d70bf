//! The postmortem packet written when an incident resolves: the UTC
//! timeline, impact scope, what the automation did and whether it worked,
//! and the sections only people can write (root cause, corrective actions),
//! left as placeholders with an owner and a deadline to fill in.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::model::{Incident, TimelineEntry};
use super::{IncidentError, disk};

/// What a placeholder says.
pub const TO_FILL: &str = "_to be filled in_";

/// Timeline kinds that record automation (fix attempts, tier calls,
/// patches, rollbacks).
const AUTOMATION_KINDS: [&str; 4] = ["fix", "tier", "patch", "rollback"];

/// Seconds from `opened_at` to `resolved_at`, if both parse.
pub(crate) fn duration_s(incident: &Incident) -> Option<u64> {
    let opened = humantime::parse_rfc3339(&incident.opened_at).ok()?;
    let resolved = humantime::parse_rfc3339(incident.resolved_at.as_deref()?).ok()?;
    resolved.duration_since(opened).ok().map(|d| d.as_secs())
}

/// One automation step: what it was and whether it worked. A timeline
/// entry's `details.outcome` decides (escalation writes `verified_healthy`,
/// `not_healed`, `failed`, `skipped`, `rolled_back`, ... once the step's
/// result is known), else `details.ok` (bool); `unknown` only for entries
/// that carry neither (written by something other than escalation).
fn outcome(entry: &TimelineEntry) -> String {
    if let Some(outcome) = entry.details.get("outcome").and_then(Value::as_str) {
        return outcome.to_owned();
    }
    match entry.details.get("ok").and_then(Value::as_bool) {
        Some(true) => "worked".to_owned(),
        Some(false) => "did not work".to_owned(),
        None => "unknown".to_owned(),
    }
}

/// The postmortem as Markdown and as JSON (same facts).
pub(crate) fn build(incident: &Incident, timeline: &[TimelineEntry]) -> (String, Value) {
    let automation: Vec<&TimelineEntry> = timeline
        .iter()
        .filter(|e| AUTOMATION_KINDS.contains(&e.kind.as_str()))
        .collect();
    let duration = duration_s(incident);
    let list = |set: &std::collections::BTreeSet<String>| {
        if set.is_empty() {
            "none".to_owned()
        } else {
            set.iter().cloned().collect::<Vec<_>>().join(", ")
        }
    };

    let mut md = String::new();
    let _ = writeln!(md, "# Postmortem {}: {}\n", incident.id, incident.title);
    let _ = writeln!(
        md,
        "Severity {} (first rated {}). Opened {}, resolved {}.\n",
        incident.severity,
        incident
            .severity_history
            .first()
            .map_or(incident.severity, |c| c.to),
        incident.opened_at,
        incident.resolved_at.as_deref().unwrap_or("not yet"),
    );
    let _ = writeln!(md, "## Timeline (UTC)\n");
    for entry in timeline {
        let _ = writeln!(md, "- {} `{}` {}", entry.at, entry.kind, entry.text);
    }
    let _ = writeln!(md, "\n## Impact\n");
    let _ = writeln!(md, "- Components: {}", list(&incident.components));
    let _ = writeln!(md, "- Probes: {}", list(&incident.probes));
    let _ = writeln!(
        md,
        "- Duration: {}",
        duration.map_or_else(
            || "unknown".to_owned(),
            |s| humantime::format_duration(std::time::Duration::from_secs(s)).to_string()
        )
    );
    let _ = writeln!(md, "- Notices sent: {}", incident.notices_sent);
    let _ = writeln!(md, "\n## What the automation did\n");
    if automation.is_empty() {
        let _ = writeln!(
            md,
            "Nothing: no fix attempt, tier call or rollback was recorded."
        );
    }
    for entry in &automation {
        let _ = writeln!(
            md,
            "- {} `{}` {} (outcome: {})",
            entry.at,
            entry.kind,
            entry.text,
            outcome(entry).replace('_', " ")
        );
    }
    let _ = writeln!(md, "\n## Root cause\n\n{TO_FILL}\n");
    let _ = writeln!(md, "## What worked, what did not\n\n{TO_FILL}\n");
    let _ = writeln!(md, "## Corrective actions\n");
    let _ = writeln!(md, "| action | owner | deadline |\n| --- | --- | --- |");
    let _ = writeln!(md, "| {TO_FILL} | {TO_FILL} | {TO_FILL} |");

    let json = json!({
        "id": incident.id,
        "title": incident.title,
        "severity": incident.severity,
        "severity_history": incident.severity_history,
        "opened_at": incident.opened_at,
        "resolved_at": incident.resolved_at,
        "timeline": timeline,
        "impact": {
            "components": incident.components,
            "probes": incident.probes,
            "sessions": incident.sessions,
            "duration_s": duration,
            "notices_sent": incident.notices_sent,
        },
        "automation": automation.iter().map(|e| json!({
            "at": e.at, "kind": e.kind, "text": e.text, "outcome": outcome(e), "details": e.details,
        })).collect::<Vec<_>>(),
        "root_cause": TO_FILL,
        "corrective_actions": [{ "action": TO_FILL, "owner": TO_FILL, "deadline": TO_FILL }],
    });
    (md, json)
}

/// Writes the postmortem packet (markdown and JSON) of `incident` from its
/// timeline on disk under `root`.
pub(crate) fn write(root: &std::path::Path, incident: &Incident) -> Result<(), IncidentError> {
    let entries = disk::read_timeline(root, &incident.id)?;
    let (markdown, json) = build(incident, &entries);
    disk::write_postmortem(root, &incident.id, &markdown, &json)
}
