//! Warden's typed events: one Rust type per audit seam, the only place that
//! knows how a row's `details` are shaped. A writer builds the type and
//! turns it into a row with [`row`]; a reader turns a row back with
//! [`parse`] (or [`decode`] when it does not know the seam in advance).
//!
//! Every row written through here carries `"v": SCHEMA` in its details.
//! Readers are lenient the other way round: unknown fields are ignored and
//! an unknown seam decodes to [`Decoded::Other`], so a row written by a
//! newer Warden never stops an older one from reading the log.
//!
//! The JSON of every typed seam is pinned by golden files
//! (`src/events/golden/`), and `docs/events.md` lists every seam and field;
//! a test keeps each in step with these types.
//!
//! Every seam Warden writes has its type here: an issue's story
//! (`probe.wake_requested`, `probe.flapping`, `probe.wake_suppressed`,
//! `probe.resolved`, `probe.flapping_settled`, `issue.acknowledged`), the
//! wake consumer's record of it (`probe.investigation_completed`), every
//! request for a notice (`notice.requested`) and every delivery
//! (`notification.sent` / `failed` / `folded`) in this file; the escalation
//! ladder in [`escalation`]; the incident commander's rows in [`incident`];
//! and Warden's own (service, DR, audit, retention, operators, chaos,
//! managed processes, supervision) in [`service`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Declares (for the submodules) a flat event type: its seam, doc and fields.
macro_rules! event {
    ($(#[$doc:meta])* $name:ident = $seam:literal { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty,)*
        }

        impl $crate::events::Event for $name {
            const SEAMS: &'static [&'static str] = &[$seam];
        }
    };
}

pub mod escalation;
pub mod incident;
pub mod service;

use crate::audit::{NewRow, RowView};
use crate::messages::{IssueEvent, Observation, WakeKind};
use crate::settings::Severity;

/// Schema version written into every typed row's details as `v`.
pub const SCHEMA: u32 = 1;

/// Why a row could not be read as the event asked for.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The row is another seam.
    #[error("row {seq} is a {seam} row, not one of {expected:?}")]
    WrongSeam {
        /// The row's seq.
        seq: u64,
        /// Its seam.
        seam: String,
        /// The seams the type reads.
        expected: &'static [&'static str],
    },
    /// The details do not have the shape of the seam.
    #[error("row {seq} ({seam}): {source}")]
    Shape {
        /// The row's seq.
        seq: u64,
        /// Its seam.
        seam: String,
        /// What serde said.
        source: serde_json::Error,
    },
}

/// One seam's details.
pub trait Event: Serialize + DeserializeOwned {
    /// Every seam this type is written under; the first is the usual one.
    const SEAMS: &'static [&'static str];

    /// The seam this value is written under.
    fn seam(&self) -> &'static str {
        Self::SEAMS[0]
    }

    /// Counts the event in its metric, if it has one. A writer's `emit`
    /// calls it with the row, so the metric and the log cannot disagree
    /// (the model is Vector's `internal_events`: one event, one place that
    /// says how it is logged, counted and traced).
    fn count(&self, _metrics: &crate::metrics::Metrics) {}
}

/// The row for `event` (details with `v`); add session, component and
/// trace with the [`NewRow`] builders.
pub fn row<E: Event>(event: &E) -> NewRow {
    /// The event's fields and then the schema version, in one object.
    #[derive(Serialize)]
    struct Versioned<'a, E> {
        #[serde(flatten)]
        event: &'a E,
        v: u32,
    }
    // Encoded straight from the type, never through a `Value`: the row is
    // built once here and the writer only copies its bytes.
    let details =
        serde_json::value::to_raw_value(&Versioned { event, v: SCHEMA }).or_else(|error| {
            // Only a map with non-string keys can fail here, and no event has one.
            serde_json::value::to_raw_value(
                &serde_json::json!({ "encode_error": error.to_string() }),
            )
        });
    match details {
        Ok(details) => NewRow::encoded(event.seam(), details),
        Err(_) => NewRow::new(event.seam(), serde_json::Value::Null),
    }
}

/// Reads `row` as `E`.
pub fn parse<E: Event>(row: &(impl RowView + ?Sized)) -> Result<E, EventError> {
    if !E::SEAMS.contains(&row.seam()) {
        return Err(EventError::WrongSeam {
            seq: row.seq(),
            seam: row.seam().to_owned(),
            expected: E::SEAMS,
        });
    }
    row.details_as::<E>().map_err(|source| EventError::Shape {
        seq: row.seq(),
        seam: row.seam().to_owned(),
        source,
    })
}

/// `details` of a row of `seam` as `E`, if `seam` is one of `E`'s; for a
/// reader that already holds the parts of a row rather than the row.
pub fn parse_details<E: Event>(seam: &str, details: &serde_json::Value) -> Option<E> {
    if !E::SEAMS.contains(&seam) {
        return None;
    }
    E::deserialize(details).ok()
}

/// A row read without knowing its seam in advance.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// `probe.wake_requested` or `probe.flapping`.
    Wake(Wake),
    /// `probe.wake_suppressed`.
    Suppressed(Suppressed),
    /// `probe.resolved`.
    Resolved(Resolved),
    /// `probe.flapping_settled`.
    FlappingSettled(FlappingSettled),
    /// `issue.acknowledged`.
    Acknowledged(Acknowledged),
    /// `probe.investigation_completed`.
    InvestigationCompleted(Box<InvestigationCompleted>),
    /// `notification.sent`, `notification.failed` or `notification.folded`.
    Delivered(Delivered),
    /// `notice.requested`.
    NoticeRequested(Box<NoticeRequested>),
    /// A seam not typed here (yet, or written by a newer version), or a
    /// typed seam whose details did not parse; the row is left as it is.
    Other,
}

/// The issue event an issue row carries (`probe.wake_requested`,
/// `probe.flapping`, `probe.wake_suppressed`, `probe.resolved`), for the
/// consumers that follow issues; `None` for any other row or shape.
pub fn issue_event(row: &(impl RowView + ?Sized)) -> Option<IssueEvent> {
    let (probe, component, category, severity, traceparent) = match decode(row) {
        Decoded::Wake(e) => (e.probe, e.component, e.category, e.severity, e.traceparent),
        Decoded::Suppressed(e) => (e.probe, e.component, e.category, e.severity, e.traceparent),
        Decoded::Resolved(e) => (e.probe, e.component, e.category, e.severity, e.traceparent),
        _ => return None,
    };
    Some(IssueEvent {
        seq: row.seq(),
        seam: row.seam().to_owned(),
        caller_session_id: row.caller_session_id().map(str::to_owned),
        probe,
        component,
        category,
        severity,
        traceparent,
    })
}

/// Fields rows use for prose, most telling first.
const SUMMARY_KEYS: [&str; 12] = [
    "summary",
    "title",
    "text",
    "detail",
    "description",
    "reason",
    "outcome",
    "error",
    "step",
    "action",
    "tier",
    "kind",
];

/// One line for any row (the dashboard's story view): the first prose
/// field of its details, after the attempt number for escalation steps.
/// Generic on purpose: it also reads seams a newer Warden wrote.
pub fn summary_line(details: &serde_json::Value) -> String {
    let text = SUMMARY_KEYS
        .iter()
        .find_map(|key| details[*key].as_str().filter(|t| !t.is_empty()))
        .unwrap_or_default();
    match details["attempt"].as_u64() {
        Some(attempt) if text.is_empty() => format!("attempt {attempt}"),
        Some(attempt) => format!("attempt {attempt}: {text}"),
        None => text.to_owned(),
    }
}

/// Decodes any row; never fails (see [`Decoded::Other`]).
pub fn decode(row: &(impl RowView + ?Sized)) -> Decoded {
    fn typed<E: Event>(row: &(impl RowView + ?Sized), wrap: impl FnOnce(E) -> Decoded) -> Decoded {
        match parse::<E>(row) {
            Ok(event) => wrap(event),
            Err(error) => {
                tracing::warn!(error = %error, "An audit row does not have its seam's shape; it is skipped.");
                Decoded::Other
            }
        }
    }
    match row.seam() {
        seam if Wake::SEAMS.contains(&seam) => typed(row, Decoded::Wake),
        seam if Suppressed::SEAMS.contains(&seam) => typed(row, Decoded::Suppressed),
        seam if Resolved::SEAMS.contains(&seam) => typed(row, Decoded::Resolved),
        seam if FlappingSettled::SEAMS.contains(&seam) => typed(row, Decoded::FlappingSettled),
        seam if Acknowledged::SEAMS.contains(&seam) => typed(row, Decoded::Acknowledged),
        seam if InvestigationCompleted::SEAMS.contains(&seam) => {
            typed(row, |e| Decoded::InvestigationCompleted(Box::new(e)))
        }
        seam if Delivered::SEAMS.contains(&seam) => typed(row, Decoded::Delivered),
        seam if NoticeRequested::SEAMS.contains(&seam) => {
            typed(row, |e| Decoded::NoticeRequested(Box::new(e)))
        }
        _ => Decoded::Other,
    }
}

fn absent() -> String {
    "absent".to_owned()
}

/// A count written as `null` (by hand, or by an older writer) reads as 0:
/// `#[serde(default)]` alone covers only a missing key.
fn count<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// An issue woke (or should wake) the operator: `probe.wake_requested`, or
/// `probe.flapping` when `kind` is `flapping`. Written by the debouncer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wake {
    /// The probe.
    pub probe: String,
    /// Its component.
    pub component: String,
    /// The issue's severity.
    pub severity: Severity,
    /// The issue's category, e.g. `service_unhealthy`.
    pub category: String,
    /// Why it wakes.
    pub kind: WakeKind,
    /// One line for people.
    pub title: String,
    /// The failing observation's reasons, `; `-joined.
    #[serde(default)]
    pub detail: String,
    /// The observation at the time.
    #[serde(default)]
    pub observation: Option<Observation>,
    /// Consecutive failing observations.
    #[serde(default, deserialize_with = "count")]
    pub consecutive_failures: u32,
    /// The issue's stage (credential expiry), if any.
    #[serde(default)]
    pub stage: Option<String>,
    /// Reminder number for `reminder`; 0 otherwise.
    #[serde(default, deserialize_with = "count")]
    pub reminder: u32,
    /// The component's fix envelope: `enabled`, `disabled` or `absent`.
    #[serde(default = "absent")]
    pub envelope_status: String,
    /// What the fix would do (program name or URL origin only).
    #[serde(default)]
    pub envelope_fix: Option<String>,
    /// The component's other open issues when the row was written, at most
    /// [`OPEN_ISSUES_IN_ROW`]: what the investigator is told, as of the
    /// wake and not as of whenever the row is read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_issues: Vec<OpenIssue>,
    /// W3C `traceparent` of the issue's span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// Most other open issues a wake row lists: enough to tell the
/// investigator the component is failing more widely, without a burst of
/// `n` issues writing `n²` entries.
pub const OPEN_ISSUES_IN_ROW: usize = 8;

/// Another open issue of the same component, as a wake row lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenIssue {
    /// The probe.
    pub probe: String,
    /// The issue's category.
    pub category: String,
    /// The issue's severity.
    pub severity: Severity,
    /// Whether anyone was woken for it.
    #[serde(default)]
    pub woken: bool,
    /// Its story.
    #[serde(default)]
    pub caller_session_id: Option<String>,
}

impl Event for Wake {
    const SEAMS: &'static [&'static str] = &["probe.wake_requested", "probe.flapping"];

    fn seam(&self) -> &'static str {
        if self.kind == WakeKind::Flapping {
            "probe.flapping"
        } else {
            "probe.wake_requested"
        }
    }
}

/// Why nobody was woken for an issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppression {
    /// `window`, `dependency`, `maintenance` or `flapping`.
    pub reason: String,
    /// The dependency or maintenance window that held it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<String>,
}

/// An issue was recorded but nobody woken: `probe.wake_suppressed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppressed {
    /// The probe.
    pub probe: String,
    /// Its component.
    pub component: String,
    /// The issue's severity.
    pub severity: Severity,
    /// The issue's category.
    pub category: String,
    /// The wake that was held back.
    pub kind: WakeKind,
    /// One line for people.
    pub title: String,
    /// The failing observation's reasons.
    #[serde(default)]
    pub detail: String,
    /// The observation at the time.
    #[serde(default)]
    pub observation: Option<Observation>,
    /// Why it was held back.
    pub suppression: Suppression,
    /// Wakes suppressed for this issue so far.
    #[serde(default, deserialize_with = "count")]
    pub suppressed_count: u64,
    /// W3C `traceparent` of the issue's span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Event for Suppressed {
    const SEAMS: &'static [&'static str] = &["probe.wake_suppressed"];
}

/// An open issue recovered: `probe.resolved`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    /// The probe.
    pub probe: String,
    /// Its component.
    pub component: String,
    /// The issue's severity.
    pub severity: Severity,
    /// The issue's category.
    pub category: String,
    /// One line for people.
    pub title: String,
    /// How long the issue was open.
    #[serde(default, deserialize_with = "count")]
    pub open_for_ms: u64,
    /// Whether anyone was woken for it (a recovery nobody heard of is not news).
    #[serde(default = "yes")]
    pub woken: bool,
    /// The healthy observation.
    #[serde(default)]
    pub observation: Option<Observation>,
    /// W3C `traceparent` of the issue's span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

fn yes() -> bool {
    true
}

impl Event for Resolved {
    const SEAMS: &'static [&'static str] = &["probe.resolved"];
}

/// A probe stopped flapping: `probe.flapping_settled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlappingSettled {
    /// The probe.
    pub probe: String,
    /// Its component.
    pub component: String,
    /// The category it flapped in.
    pub category: String,
    /// W3C `traceparent` of the issue's span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Event for FlappingSettled {
    const SEAMS: &'static [&'static str] = &["probe.flapping_settled"];
}

/// An operator acknowledged an open issue: `issue.acknowledged`. Carries
/// what the wake consumer needs to tell the notifiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledged {
    /// The probe.
    pub probe: String,
    /// Its component.
    pub component: String,
    /// The issue's severity.
    pub severity: Severity,
    /// The issue's category.
    pub category: String,
    /// Whether anyone was woken for the issue.
    #[serde(default)]
    pub woken: bool,
    /// The operator's note.
    #[serde(default)]
    pub note: Option<String>,
    /// Who acknowledged.
    #[serde(default)]
    pub author: Option<String>,
    /// Whether the issue was already acknowledged.
    #[serde(default)]
    pub again: bool,
}

impl Event for Acknowledged {
    const SEAMS: &'static [&'static str] = &["issue.acknowledged"];
}

/// One notifier's handling of one notice: `notification.sent`,
/// `notification.failed` or `notification.folded` (by `outcome`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivered {
    /// Seq of the row the notice is about.
    pub source_seq: u64,
    /// The notifier.
    pub notifier: String,
    /// The notice's idempotency key.
    pub idempotency_key: String,
    /// `incident`, `escalation` or the issue's category.
    pub category: String,
    /// The notice's kind (`fired`, `incident_opened`, `exhausted`, ...).
    pub kind: String,
    /// The notice's severity.
    pub severity: Severity,
    /// `firing` or `resolved`.
    pub status: crate::notify::NoticeStatus,
    /// Attempts made.
    pub attempts: u32,
    /// HTTP status of the last answer.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Wall time of the delivery, retries included.
    pub duration_ms: u64,
    /// The seq of the row the wake consumer delivered from (a wake row or
    /// a `notice.requested` row): its ledger key, and how a requester finds
    /// the outcome of its request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_seq: Option<u64>,
    /// The conversation the notice belongs to (PagerDuty's `dedup_key`);
    /// read back at start so a restart does not post a fact again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    /// The wake consumer's notices: offered again after a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redelivered: Option<bool>,
    /// How it ended; decides the seam and is not written in the details.
    #[serde(skip, default = "sent")]
    pub outcome: crate::notify::DeliveryOutcome,
}

fn sent() -> crate::notify::DeliveryOutcome {
    crate::notify::DeliveryOutcome::Sent
}

impl Event for Delivered {
    const SEAMS: &'static [&'static str] = &[
        "notification.sent",
        "notification.failed",
        "notification.folded",
    ];

    fn seam(&self) -> &'static str {
        use crate::notify::DeliveryOutcome;
        match self.outcome {
            DeliveryOutcome::Sent => "notification.sent",
            DeliveryOutcome::Failed => "notification.failed",
            DeliveryOutcome::Folded => "notification.folded",
        }
    }
}

impl Delivered {
    /// Reads a delivery row, taking the outcome from its seam.
    pub fn from_row(row: &(impl RowView + ?Sized)) -> Result<Self, EventError> {
        use crate::notify::DeliveryOutcome;
        let mut delivered: Delivered = parse(row)?;
        delivered.outcome = match row.seam() {
            "notification.failed" => DeliveryOutcome::Failed,
            "notification.folded" => DeliveryOutcome::Folded,
            _ => DeliveryOutcome::Sent,
        };
        Ok(delivered)
    }
}

/// A notice someone decided a person should get: `notice.requested`.
/// Written by the incident commander and the escalation coordinators, and
/// delivered from the log by the wake consumer like an issue's own notice:
/// routed, retried until every notifier took it (also across restarts),
/// recorded and counted. Writing the request is the requester's whole
/// part, so a crash after the row is durable loses no notice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoticeRequested {
    /// The notice, as the notifiers get it.
    pub notice: crate::notify::Notice,
    /// Only this notifier (an escalation tier that pages through it), still
    /// subject to its `min_severity` and matchers; every notifier that
    /// wants the notice when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<String>,
}

impl Event for NoticeRequested {
    const SEAMS: &'static [&'static str] = &["notice.requested"];
}

/// The wake consumer finished an event: `probe.investigation_completed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvestigationCompleted {
    /// Seq of the wake row.
    pub wake_seq: u64,
    /// Its seam.
    pub wake_seam: String,
    /// The probe.
    pub probe: String,
    /// Its component.
    pub component: String,
    /// The issue's category.
    pub category: String,
    /// The notice's severity.
    pub severity: Severity,
    /// The notice's kind.
    pub kind: String,
    /// `none`, `webhook` or `openai`.
    pub engine: String,
    /// The model, if the engine names one.
    #[serde(default)]
    pub model: Option<String>,
    /// Tokens sent.
    #[serde(default)]
    pub tokens_in: u64,
    /// Tokens received.
    #[serde(default)]
    pub tokens_out: u64,
    /// What the investigation cost.
    #[serde(default)]
    pub cost_usd: f64,
    /// How long it took.
    #[serde(default)]
    pub duration_ms: u64,
    /// The summary an operator reads.
    #[serde(default)]
    pub summary: String,
    /// Suggested next steps.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Why the built-in summary was used instead, if it was.
    #[serde(default)]
    pub fallback: Option<String>,
    /// Did the operator get it: `sent`, `failed_send`, `no_notifier`, ...
    pub dm_status: String,
    /// Whether a fix ran in this story by then.
    #[serde(default)]
    pub autofix_attempted: bool,
    /// The component's fix envelope: `enabled`, `disabled` or `absent`.
    #[serde(default = "absent")]
    pub envelope_status: String,
    /// What the fix would do.
    #[serde(default)]
    pub envelope_fix: Option<String>,
    /// The first delivery pass, one entry per notifier.
    #[serde(default)]
    pub deliveries: Vec<crate::notify::Delivery>,
    /// The notice, as sent (a replay sends the same one again).
    pub notice: crate::notify::Notice,
}

impl Event for InvestigationCompleted {
    const SEAMS: &'static [&'static str] = &["probe.investigation_completed"];
}

#[cfg(test)]
mod tests;
