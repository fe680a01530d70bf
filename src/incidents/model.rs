//! The incident record, its timeline entries and what opened it. These are
//! serde types: `incident.json` and `timeline.jsonl` on disk are exactly them.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::Sev;

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    /// Impact is ongoing (or not known to have stopped).
    Open,
    /// Every issue that joined it has resolved; waiting for the probes to
    /// stay healthy before it is declared over. Automation is unfrozen.
    Mitigated,
    /// Over; the postmortem is written.
    Resolved,
}

impl IncidentStatus {
    /// `open`, `mitigated` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Mitigated => "mitigated",
            IncidentStatus::Resolved => "resolved",
        }
    }
}

/// What opened an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpenTrigger {
    /// An issue the debouncer published (`probe.wake_requested`).
    Issue {
        /// The issue's story id.
        caller_session_id: Option<String>,
        /// The probe.
        probe: String,
        /// Its component.
        component: String,
        /// The issue category.
        category: String,
        /// The issue's severity.
        severity: crate::settings::Severity,
        /// The seq of the issue row.
        seq: u64,
    },
    /// The escalation ladder of a component ran out of rungs.
    LadderExhausted {
        /// The component.
        component: String,
        /// What was tried, as the coordinator recorded it.
        history: serde_json::Value,
        /// The story the ladder ran for (the issue's caller session), so the
        /// incident joins that issue's conversation with each notifier.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
    },
    /// Warden's own supervision tree melted down.
    Meltdown {
        /// What the root supervisor saw.
        detail: String,
    },
    /// An operator opened it by hand.
    Operator {
        /// One line.
        title: String,
        /// The severity chosen (SEV3 when not given).
        severity: Option<Sev>,
        /// Components affected, if known.
        components: Vec<String>,
    },
    /// Something under Warden (disk, state dir, DR epoch) is wrong.
    Substrate {
        /// What is wrong.
        detail: String,
    },
}

/// One severity change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeverityChange {
    /// When, RFC 3339 UTC.
    pub at: String,
    /// Before (`None` for the first rating).
    pub from: Option<Sev>,
    /// After.
    pub to: Sev,
    /// Why: the rule that fired, or the operator's reason.
    pub reason: String,
}

impl OpenTrigger {
    /// The components, probes and issue sessions an incident opened by
    /// this trigger starts with.
    pub fn scope(&self) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
        let mut components = BTreeSet::new();
        let mut probes = BTreeSet::new();
        let mut sessions = BTreeSet::new();
        match self {
            OpenTrigger::Issue {
                caller_session_id,
                probe,
                component,
                ..
            } => {
                components.insert(component.clone());
                probes.insert(probe.clone());
                sessions.extend(caller_session_id.iter().cloned());
            }
            OpenTrigger::LadderExhausted { component, .. } => {
                components.insert(component.clone());
            }
            OpenTrigger::Operator {
                components: named, ..
            } => components.extend(named.iter().cloned()),
            OpenTrigger::Meltdown { .. } | OpenTrigger::Substrate { .. } => {}
        }
        (components, probes, sessions)
    }
}

/// One incident, as `incident.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// `INC-YYYYMMDD-NNN` (UTC date of opening, then a counter for that day).
    pub id: String,
    /// Current severity.
    pub severity: Sev,
    /// Open, mitigated or resolved.
    pub status: IncidentStatus,
    /// One line for lists and notices.
    pub title: String,
    /// Affected components.
    pub components: BTreeSet<String>,
    /// Affected probes.
    pub probes: BTreeSet<String>,
    /// `caller_session_id`s of the issues that joined.
    pub sessions: BTreeSet<String>,
    /// Sessions whose issue has resolved (`probe.resolved`).
    #[serde(default)]
    pub resolved_sessions: BTreeSet<String>,
    /// RFC 3339 UTC.
    pub opened_at: String,
    /// RFC 3339 UTC of the last change.
    pub updated_at: String,
    /// RFC 3339 UTC, once resolved.
    pub resolved_at: Option<String>,
    /// What opened it.
    pub trigger: OpenTrigger,
    /// RFC 3339 UTC of the last update notice (the opening counts as one).
    pub last_update_at: String,
    /// Every rating, oldest first.
    pub severity_history: Vec<SeverityChange>,
    /// Evidence files written, relative to the incident's directory.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Seq of the `incident.opened` row (0 until written).
    #[serde(default)]
    pub opened_seq: u64,
    /// Notices delivered about it (opening, updates, resolution), one per
    /// notifier that took one, as the log's delivery rows say.
    #[serde(default)]
    pub notices_sent: u32,
    /// Notices requested about it; numbers each notice's idempotency key.
    #[serde(default)]
    pub notices_requested: u32,
    /// Seq of the last delivery row taken in (replays are recognised by it).
    #[serde(default)]
    pub deliveries_read: u64,
    /// Tokio-clock time of the last update notice, for the cadence; not
    /// persisted (a reloaded incident counts from its reload).
    #[serde(skip)]
    pub last_update_tick: Option<Instant>,
    /// Tokio-clock time of the opening, for `related_window`; rebuilt from
    /// `opened_at` on reload.
    #[serde(skip)]
    pub opened_tick: Option<Instant>,
}

impl Incident {
    /// Whether it is still open or mitigated (not resolved).
    pub fn is_active(&self) -> bool {
        self.status != IncidentStatus::Resolved
    }
}

/// One line of `timeline.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// RFC 3339 UTC.
    pub at: String,
    /// `opened`, `wake`, `joined`, `notification`, `severity`, `note`,
    /// `freeze`, `unfreeze`, `issue_resolved`, `mitigated`, `update`,
    /// `resolved`, and from other parts of Warden `fix`, `tier`, `rollback`.
    pub kind: String,
    /// One line for people.
    pub text: String,
    /// Anything else.
    #[serde(default)]
    pub details: serde_json::Value,
}

impl TimelineEntry {
    /// An entry stamped now.
    pub fn now(
        kind: impl Into<String>,
        text: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        Self {
            at: now_rfc3339(),
            kind: kind.into(),
            text: text.into(),
            details,
        }
    }
}

/// The wall time now, RFC 3339 UTC with milliseconds (as audit rows).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
