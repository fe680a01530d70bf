//! The payloads that cross actors, and the words they are made of (an
//! issue's [`Severity`], an incident's [`Sev`], a check's [`Health`]), so
//! that `settings` and every domain module share one vocabulary without
//! importing each other. They are serde types so they can be written to the
//! audit log, served by the API, and one day sent between nodes unchanged
//! (DESIGN §7).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a wake happens (the `kind` of a `probe.wake_requested` row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WakeKind {
    /// A new issue.
    Fired,
    /// An open issue is still failing.
    Reminder,
    /// An open issue got worse, or reached a new stage.
    Escalated,
    /// An issue whose first wake was suppressed is woken now that nothing holds it.
    Resumed,
    /// The probe keeps changing between healthy and failing.
    Flapping,
}

impl WakeKind {
    /// The name used in rows and notices (`fired`, `reminder`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            WakeKind::Fired => "fired",
            WakeKind::Reminder => "reminder",
            WakeKind::Escalated => "escalated",
            WakeKind::Resumed => "resumed",
            WakeKind::Flapping => "flapping",
        }
    }
}

/// How a probe found its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Working as expected.
    Healthy,
    /// Working, but outside what is acceptable (slow, partial).
    Degraded,
    /// Not working.
    Unhealthy,
}

impl Health {
    /// The status as serialised (its serde name), for text and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Unhealthy => "unhealthy",
        }
    }

    /// Whether this counts as a failure for debouncing.
    pub fn is_failing(self) -> bool {
        self != Health::Healthy
    }
}

/// One check's result, as the probe actor publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The probe's name.
    pub probe: String,
    /// The component the probe reports under.
    pub component: String,
    /// The verdict after the probe kind's own rules and the configured conditions.
    pub status: Health,
    /// How long the check took, in milliseconds.
    pub latency_ms: u64,
    /// Why the observation is not healthy (empty when healthy), e.g.
    /// `status 503 (expected 2xx)` or `condition "latency < 300ms" failed (latency 812ms)`.
    pub reasons: Vec<String>,
    /// How far into trouble the target is, when the kind has stages: for
    /// `credential_expiry` the alert threshold crossed (`30d`, `14d`, `7d`,
    /// `1d`) or `expired`. A new stage on an open issue wakes the operator
    /// again, so each threshold alerts once rather than once per cycle.
    pub stage: Option<String>,
    /// Kind-specific facts (status code, exit code, body excerpt, expiry), for operators.
    pub details: serde_json::Value,
    /// When the check finished, RFC 3339 UTC with milliseconds.
    pub at: String,
}

/// An issue row as the incident commander and the escalation coordinators
/// take it in, decoded from the log after their cursors
/// ([`crate::events::issue_event`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueEvent {
    /// The audit row's seq (the idempotency key of everything it causes).
    pub seq: u64,
    /// The row's seam: `probe.wake_requested`, `probe.wake_suppressed`,
    /// `probe.flapping`, `probe.resolved` or `probe.flapping_settled`.
    pub seam: String,
    /// `probe:<probe>:<category>:<seq of the issue's first row>`.
    pub caller_session_id: Option<String>,
    /// The probe.
    pub probe: String,
    /// Its component.
    pub component: String,
    /// The issue category, e.g. `service_unhealthy`.
    pub category: String,
    /// `critical`, `warning` or `info`.
    pub severity: crate::settings::Severity,
    /// W3C `traceparent` of the issue's trace (None when tracing is off), so
    /// every consumer continues the same trace.
    #[serde(default)]
    pub traceparent: Option<String>,
}

/// How serious an issue raised by a probe is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Info,
    /// Needs attention soon.
    Warning,
    /// Needs attention now (default).
    #[default]
    Critical,
}

impl Severity {
    /// The severity as written in the configuration (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// How bad an incident is. `SEV0` is the worst; the derived order sorts it
/// first, so `a < b` means "a is more severe than b".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Sev {
    /// Integrity or security is at risk (a failed signature, an expired credential).
    #[serde(rename = "SEV0")]
    Sev0,
    /// A critical component is down for good, or several important ones at once.
    #[serde(rename = "SEV1")]
    Sev1,
    /// One component has a critical issue.
    #[serde(rename = "SEV2")]
    Sev2,
    /// A warning: degraded, a workaround exists.
    #[serde(rename = "SEV3")]
    Sev3,
    /// Informational.
    #[serde(rename = "SEV4")]
    Sev4,
}

impl Sev {
    /// Every severity, worst first.
    pub const ALL: [Sev; 5] = [Sev::Sev0, Sev::Sev1, Sev::Sev2, Sev::Sev3, Sev::Sev4];

    /// `SEV0`..`SEV4`.
    pub fn as_str(self) -> &'static str {
        match self {
            Sev::Sev0 => "SEV0",
            Sev::Sev1 => "SEV1",
            Sev::Sev2 => "SEV2",
            Sev::Sev3 => "SEV3",
            Sev::Sev4 => "SEV4",
        }
    }

    /// The notice severity used for this incident's notices: SEV0 to SEV2
    /// are critical, SEV3 a warning, SEV4 info.
    pub fn notice_severity(self) -> Severity {
        match self {
            Sev::Sev0 | Sev::Sev1 | Sev::Sev2 => Severity::Critical,
            Sev::Sev3 => Severity::Warning,
            Sev::Sev4 => Severity::Info,
        }
    }
}

impl fmt::Display for Sev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Sev {
    type Err = ();

    /// `SEV0`..`SEV4`, case-insensitive.
    fn from_str(text: &str) -> Result<Self, ()> {
        Sev::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or(())
    }
}
