//! The row types: [`NewRow`] (what a caller appends) and [`AuditRow`] (one stored
//! line), their encoding, and seam filters.

use std::borrow::Cow;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A row to append; the writer adds `seq` and `ts`.
///
/// The details are encoded when the row is built, by the writer of the
/// event, so the one writer thread only copies bytes: it neither holds nor
/// serialises nor frees a `serde_json::Value` tree per row.
#[derive(Debug, Clone)]
pub struct NewRow {
    /// What happened, dotted (`probe.wake_requested`).
    pub seam: String,
    /// Joins the rows of one issue's story (`probe:<probe>:<category>:<seq>`).
    pub caller_session_id: Option<String>,
    /// The trace of that story.
    pub trace_id: Option<String>,
    /// The component concerned.
    pub component: Option<String>,
    /// Seam-specific payload, encoded: always a JSON object.
    details: Box<RawValue>,
    /// The id a replicated log stores this row under, given at its first
    /// publish and kept when the row is retried (even by a later writer
    /// instance), so a retry is recognised as the same row.
    pub(crate) publish_id: Option<u64>,
}

impl PartialEq for NewRow {
    fn eq(&self, other: &Self) -> bool {
        self.seam == other.seam
            && self.caller_session_id == other.caller_session_id
            && self.trace_id == other.trace_id
            && self.component == other.component
            && self.details.get() == other.details.get()
    }
}

impl NewRow {
    /// A row for `seam` with `details`. `null` becomes `{}` and any other
    /// non-object is wrapped as `{"value": …}`, so `details` is always an object.
    pub fn new(seam: impl Into<String>, details: serde_json::Value) -> Self {
        let details = match details {
            serde_json::Value::Object(_) => details,
            serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
            other => serde_json::json!({ "value": other }),
        };
        // A `Value` has only string keys, so encoding it cannot fail.
        let details = serde_json::value::to_raw_value(&details).unwrap_or_else(|_| empty_object());
        Self::encoded(seam, details)
    }

    /// A row for `seam` whose details are already encoded; the caller
    /// guarantees they are a JSON object.
    pub(crate) fn encoded(seam: impl Into<String>, details: Box<RawValue>) -> Self {
        Self {
            seam: seam.into(),
            caller_session_id: None,
            trace_id: None,
            component: None,
            details,
            publish_id: None,
        }
    }

    /// The details as encoded.
    pub fn details_json(&self) -> &str {
        self.details.get()
    }

    /// The details, decoded (for tests and tools; the writer never decodes them).
    pub fn details(&self) -> serde_json::Value {
        serde_json::from_str(self.details.get()).unwrap_or_default()
    }

    /// Sets `caller_session_id`.
    #[must_use]
    pub fn session(mut self, id: impl Into<String>) -> Self {
        self.caller_session_id = Some(id.into());
        self
    }

    /// Sets `trace_id`.
    #[must_use]
    pub fn trace(mut self, id: impl Into<String>) -> Self {
        self.trace_id = Some(id.into());
        self
    }

    /// Sets `component`.
    #[must_use]
    pub fn component(mut self, name: impl Into<String>) -> Self {
        self.component = Some(name.into());
        self
    }

    /// The stored row for this append, stamped with `seq` and the time now.
    #[cfg(test)]
    pub(crate) fn stamp(&self, seq: u64, now: SystemTime) -> AuditRow {
        let mut line = Vec::new();
        self.encode_stamped(seq, &stamp_time(now), &mut line);
        match serde_json::from_slice(&line) {
            Ok(row) => row,
            Err(error) => panic!("a stamped row reads back: {error}"),
        }
    }

    /// Appends the stored line of this row (JSON + `\n`) to `buf`, with
    /// `seq` and `ts` (from [`stamp_time`], once per batch).
    pub(crate) fn encode_stamped(&self, seq: u64, ts: &str, buf: &mut Vec<u8>) {
        let stamped = Stamped {
            seq,
            ts,
            seam: &self.seam,
            caller_session_id: self
                .caller_session_id
                .as_deref()
                .map(|id| with_seq(Cow::Borrowed(id), seq)),
            trace_id: self.trace_id.as_deref(),
            component: self.component.as_deref(),
            details: &self.details,
        };
        // Strings, integers and already-encoded JSON into a Vec: cannot fail.
        if serde_json::to_writer(&mut *buf, &stamped).is_err() {
            let fallback = serde_json::json!({
                "seq": seq, "ts": ts, "seam": self.seam,
                "caller_session_id": null, "trace_id": null, "component": null,
                "details": {"encode_error": true},
            });
            buf.extend_from_slice(fallback.to_string().as_bytes());
        }
        buf.push(b'\n');
    }
}

impl NewRow {
    /// Appends this row as published to a replicated log: every field of
    /// the stored line but `seq`, which the log assigns. A `{seq}` in the
    /// session id stays, for [`restamp`] to fill in.
    pub(crate) fn encode_unsequenced(&self, ts: &str, buf: &mut Vec<u8>) {
        let unsequenced = Unsequenced {
            ts: Cow::Borrowed(ts),
            seam: Cow::Borrowed(&self.seam),
            caller_session_id: self.caller_session_id.as_deref().map(Cow::Borrowed),
            trace_id: self.trace_id.as_deref().map(Cow::Borrowed),
            component: self.component.as_deref().map(Cow::Borrowed),
            details: &self.details,
        };
        // Strings and already-encoded JSON into a Vec: cannot fail.
        if serde_json::to_writer(&mut *buf, &unsequenced).is_err() {
            buf.extend_from_slice(b"{}");
        }
    }
}

/// Appends the stored line (JSON + `\n`) of a row published by
/// [`NewRow::encode_unsequenced`] that the log stored as `seq`.
pub(crate) fn restamp(
    payload: &[u8],
    seq: u64,
    buf: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    let row: Unsequenced<'_> = serde_json::from_slice(payload)?;
    let stamped = Stamped {
        seq,
        ts: &row.ts,
        seam: &row.seam,
        caller_session_id: row.caller_session_id.map(|id| with_seq(id, seq)),
        trace_id: row.trace_id.as_deref(),
        component: row.component.as_deref(),
        details: row.details,
    };
    serde_json::to_writer(&mut *buf, &stamped)?;
    buf.push(b'\n');
    Ok(())
}

/// A row as a replicated log holds it: no `seq` (the log's own sequence is it).
#[derive(Serialize, Deserialize)]
struct Unsequenced<'a> {
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow)]
    seam: Cow<'a, str>,
    #[serde(borrow)]
    caller_session_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    trace_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    component: Option<Cow<'a, str>>,
    #[serde(borrow)]
    details: &'a RawValue,
}

/// A story that starts with a row is named after the row's own seq, which
/// exists only when the row is written: `{seq}` in the id is filled in then.
fn with_seq(id: Cow<'_, str>, seq: u64) -> Cow<'_, str> {
    if id.contains(SEQ_PLACEHOLDER) {
        Cow::Owned(id.replace(SEQ_PLACEHOLDER, &seq.to_string()))
    } else {
        id
    }
}

/// The `ts` of rows written at `now`: RFC 3339 UTC with milliseconds.
pub(crate) fn stamp_time(now: SystemTime) -> String {
    humantime::format_rfc3339_millis(now).to_string()
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned())
        .unwrap_or_else(|_| unreachable!("an empty object is JSON"))
}

/// A [`NewRow`] as stored, borrowed: the same fields in the same order as
/// [`AuditRow`].
#[derive(Serialize)]
struct Stamped<'a> {
    seq: u64,
    ts: &'a str,
    seam: &'a str,
    caller_session_id: Option<Cow<'a, str>>,
    trace_id: Option<&'a str>,
    component: Option<&'a str>,
    details: &'a RawValue,
}

/// Written in a `caller_session_id`, replaced by the row's seq when the row is
/// written, e.g. `probe:api:service_unhealthy:{seq}` → `...:42`.
pub const SEQ_PLACEHOLDER: &str = "{seq}";

/// One stored row: one line of the log. Field order is the on-disk order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Gap-free, monotonic sequence number, starting at 1.
    pub seq: u64,
    /// When the row was written: RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// What happened, dotted.
    pub seam: String,
    /// Joins the rows of one issue's story.
    pub caller_session_id: Option<String>,
    /// The trace of that story.
    pub trace_id: Option<String>,
    /// The component concerned.
    pub component: Option<String>,
    /// Seam-specific payload (a JSON object).
    pub details: serde_json::Value,
}

impl AuditRow {
    /// Appends this row's line (JSON + `\n`) to `buf`, for tests that write
    /// log files by hand (the writer encodes with [`NewRow::encode_stamped`]).
    #[cfg(test)]
    pub(crate) fn encode_into(&self, buf: &mut Vec<u8>) {
        // Strings, integers and a `Value` into a string: cannot fail.
        buf.extend_from_slice(serde_json::to_string(self).unwrap_or_default().as_bytes());
        buf.push(b'\n');
    }
}

/// One stored row borrowed from its line: the details stay encoded, so a
/// reader that wants one typed event from them decodes it straight from the
/// bytes, never building a `serde_json::Value` tree (see
/// [`RowIter::next_head`](super::RowIter::next_head)).
#[derive(Debug, Deserialize)]
pub struct RowRef<'a> {
    /// See [`AuditRow::seq`].
    pub seq: u64,
    /// See [`AuditRow::ts`].
    #[serde(borrow)]
    pub ts: Cow<'a, str>,
    /// See [`AuditRow::seam`].
    #[serde(borrow)]
    pub seam: Cow<'a, str>,
    /// See [`AuditRow::caller_session_id`].
    #[serde(borrow)]
    pub caller_session_id: Option<Cow<'a, str>>,
    /// See [`AuditRow::trace_id`].
    #[serde(borrow)]
    pub trace_id: Option<Cow<'a, str>>,
    /// See [`AuditRow::component`].
    #[serde(borrow)]
    pub component: Option<Cow<'a, str>>,
    /// The details as written.
    #[serde(borrow)]
    pub details: &'a RawValue,
}

impl RowRef<'_> {
    /// The row without its details, owned.
    pub fn head(&self) -> RowHead {
        RowHead {
            seq: self.seq,
            ts: self.ts.clone().into_owned(),
            seam: self.seam.clone().into_owned(),
            caller_session_id: self.caller_session_id.as_deref().map(str::to_owned),
            trace_id: self.trace_id.as_deref().map(str::to_owned),
            component: self.component.as_deref().map(str::to_owned),
        }
    }
}

/// A stored row without its details: what a consumer keeps of a row whose
/// details it already decoded into its own types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowHead {
    /// See [`AuditRow::seq`].
    pub seq: u64,
    /// See [`AuditRow::ts`].
    pub ts: String,
    /// See [`AuditRow::seam`].
    pub seam: String,
    /// See [`AuditRow::caller_session_id`].
    pub caller_session_id: Option<String>,
    /// See [`AuditRow::trace_id`].
    pub trace_id: Option<String>,
    /// See [`AuditRow::component`].
    pub component: Option<String>,
}

/// What the typed-event readers need of a row, owned ([`AuditRow`]) or
/// borrowed from its line ([`RowRef`]).
pub trait RowView {
    /// The row's seq.
    fn seq(&self) -> u64;
    /// The row's seam.
    fn seam(&self) -> &str;
    /// The row's story.
    fn caller_session_id(&self) -> Option<&str>;
    /// The details read as `T`.
    fn details_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error>;
}

impl RowView for AuditRow {
    fn seq(&self) -> u64 {
        self.seq
    }
    fn seam(&self) -> &str {
        &self.seam
    }
    fn caller_session_id(&self) -> Option<&str> {
        self.caller_session_id.as_deref()
    }
    fn details_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.details)
    }
}

impl RowView for RowRef<'_> {
    fn seq(&self) -> u64 {
        self.seq
    }
    fn seam(&self) -> &str {
        &self.seam
    }
    fn caller_session_id(&self) -> Option<&str> {
        self.caller_session_id.as_deref()
    }
    fn details_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.details.get())
    }
}

/// Whether `seam` passes `filter`: equal, or `filter` ends in `*` and `seam`
/// starts with the part before it (`supervision.*`, or `*` for everything).
pub fn seam_matches(filter: &str, seam: &str) -> bool {
    match filter.strip_suffix('*') {
        Some(prefix) => seam.starts_with(prefix),
        None => filter == seam,
    }
}

#[cfg(test)]
mod tests;
