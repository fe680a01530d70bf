//! The payloads that cross actors. They are serde types so they can be
//! written to the audit log, served by the API, and one day sent between
//! nodes unchanged (DESIGN §7).

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
