//! The incident commander's seams (`incident.*`). Every row names the
//! incident (`id`) and is filed under its first component.

use crate::incidents::OpenTrigger;
use crate::messages::Sev;

event!(
    /// An incident was opened: `incident.opened`.
    Opened = "incident.opened" {
        /// The incident.
        id: String,
        /// Its first rating.
        severity: Sev,
        /// Its title.
        title: String,
        /// Why it was opened at that severity.
        reason: String,
        /// Evidence files written before anyone was told.
        #[serde(default)]
        evidence: Vec<String>,
        /// What opened it.
        trigger: OpenTrigger,
    }
);

event!(
    /// An issue joined an open incident: `incident.joined` (the row carries
    /// the issue's session).
    Joined = "incident.joined" {
        /// The incident.
        id: String,
        /// The probe whose issue joined.
        probe: String,
        /// Seq of the issue row.
        issue_seq: u64,
        /// Its seam.
        seam: String,
    }
);

event!(
    /// The rating changed: `incident.severity_changed`.
    SeverityChanged = "incident.severity_changed" {
        /// The incident.
        id: String,
        /// The rating before.
        from: Sev,
        /// The rating now.
        to: Sev,
        /// Why.
        reason: String,
    }
);

event!(
    /// An operator's note: `incident.note`.
    Note = "incident.note" {
        /// The incident.
        id: String,
        /// The note.
        text: String,
        /// Who wrote it.
        #[serde(default)]
        author: Option<String>,
    }
);

event!(
    /// Every probe of the incident is healthy again, before its resolution:
    /// `incident.mitigated`.
    Mitigated = "incident.mitigated" {
        /// The incident.
        id: String,
    }
);

event!(
    /// A scheduled update was requested: `incident.update_sent`.
    UpdateSent = "incident.update_sent" {
        /// The incident.
        id: String,
        /// Its rating.
        severity: Sev,
        /// Timeline entries since the last update.
        changes: usize,
        /// Failing probes (`probe (status)`).
        #[serde(default)]
        unhealthy: Vec<String>,
        /// Seq of the update's `notice.requested` row; absent when no notifier
        /// takes it.
        #[serde(default)]
        notice_seq: Option<u64>,
    }
);

event!(
    /// The incident is over: `incident.resolved`.
    Resolved = "incident.resolved" {
        /// The incident.
        id: String,
        /// Its final rating.
        severity: Sev,
        /// The resolution note.
        note: String,
        /// Resolved although impact had not stopped.
        force: bool,
        /// `operator` or `warden` (impact stopped).
        by: String,
        /// From opening to resolution.
        #[serde(default)]
        duration_s: Option<u64>,
    }
);

event!(
    /// Automation on some components was frozen by the incident (its rating
    /// reached `freeze_automation_at`): `incident.automation_frozen`.
    AutomationFrozen = "incident.automation_frozen" {
        /// The incident.
        id: String,
        /// The components newly frozen.
        components: Vec<String>,
    }
);

event!(
    /// The incident no longer freezes these components:
    /// `incident.automation_unfrozen`.
    AutomationUnfrozen = "incident.automation_unfrozen" {
        /// The incident.
        id: String,
        /// The components released.
        components: Vec<String>,
    }
);
