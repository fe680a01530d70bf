//! The incident commander's seams (`incident.*`). Every row names the
//! incident (`id`) and is filed under its first component.

use serde::{Deserialize, Serialize};

use super::Event;
use crate::incidents::OpenTrigger;
use crate::messages::Sev;

/// An incident was opened: `incident.opened`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opened {
    /// The incident.
    pub id: String,
    /// Its first rating.
    pub severity: Sev,
    /// Its title.
    pub title: String,
    /// Why it was opened at that severity.
    pub reason: String,
    /// Evidence files written before anyone was told.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// What opened it.
    pub trigger: OpenTrigger,
}

impl Event for Opened {
    const SEAMS: &'static [&'static str] = &["incident.opened"];
}

/// An issue joined an open incident: `incident.joined` (the row carries
/// the issue's session).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Joined {
    /// The incident.
    pub id: String,
    /// The probe whose issue joined.
    pub probe: String,
    /// Seq of the issue row.
    pub issue_seq: u64,
    /// Its seam.
    pub seam: String,
}

impl Event for Joined {
    const SEAMS: &'static [&'static str] = &["incident.joined"];
}

/// The rating changed: `incident.severity_changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeverityChanged {
    /// The incident.
    pub id: String,
    /// The rating before.
    pub from: Sev,
    /// The rating now.
    pub to: Sev,
    /// Why.
    pub reason: String,
}

impl Event for SeverityChanged {
    const SEAMS: &'static [&'static str] = &["incident.severity_changed"];
}

/// An operator's note: `incident.note`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// The incident.
    pub id: String,
    /// The note.
    pub text: String,
    /// Who wrote it.
    #[serde(default)]
    pub author: Option<String>,
}

impl Event for Note {
    const SEAMS: &'static [&'static str] = &["incident.note"];
}

/// Every probe of the incident is healthy again, before its resolution:
/// `incident.mitigated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mitigated {
    /// The incident.
    pub id: String,
}

impl Event for Mitigated {
    const SEAMS: &'static [&'static str] = &["incident.mitigated"];
}

/// A scheduled update was requested: `incident.update_sent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateSent {
    /// The incident.
    pub id: String,
    /// Its rating.
    pub severity: Sev,
    /// Timeline entries since the last update.
    pub changes: usize,
    /// Failing probes (`probe (status)`).
    #[serde(default)]
    pub unhealthy: Vec<String>,
    /// Seq of the update's `notice.requested` row; absent when no notifier
    /// takes it.
    #[serde(default)]
    pub notice_seq: Option<u64>,
}

impl Event for UpdateSent {
    const SEAMS: &'static [&'static str] = &["incident.update_sent"];
}

/// The incident is over: `incident.resolved`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    /// The incident.
    pub id: String,
    /// Its final rating.
    pub severity: Sev,
    /// The resolution note.
    pub note: String,
    /// Resolved although impact had not stopped.
    pub force: bool,
    /// `operator` or `warden` (impact stopped).
    pub by: String,
    /// From opening to resolution.
    #[serde(default)]
    pub duration_s: Option<u64>,
}

impl Event for Resolved {
    const SEAMS: &'static [&'static str] = &["incident.resolved"];
}

/// Automation on some components was frozen by the incident (its rating
/// reached `freeze_automation_at`): `incident.automation_frozen`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutomationFrozen {
    /// The incident.
    pub id: String,
    /// The components newly frozen.
    pub components: Vec<String>,
}

impl Event for AutomationFrozen {
    const SEAMS: &'static [&'static str] = &["incident.automation_frozen"];
}

/// The incident no longer freezes these components:
/// `incident.automation_unfrozen`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutomationUnfrozen {
    /// The incident.
    pub id: String,
    /// The components released.
    pub components: Vec<String>,
}

impl Event for AutomationUnfrozen {
    const SEAMS: &'static [&'static str] = &["incident.automation_unfrozen"];
}
