//! The row types: [`NewRow`] (what a caller appends) and [`AuditRow`] (one stored
//! line), their encoding, and seam filters.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// A row to append; the writer adds `seq` and `ts`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRow {
    /// What happened, dotted (`probe.wake_requested`).
    pub seam: String,
    /// Joins the rows of one issue's story (`probe:<probe>:<category>:<seq>`).
    pub caller_session_id: Option<String>,
    /// The trace of that story.
    pub trace_id: Option<String>,
    /// The component concerned.
    pub component: Option<String>,
    /// Seam-specific payload; should be a JSON object (see [`NewRow::new`]).
    pub details: serde_json::Value,
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
        Self {
            seam: seam.into(),
            caller_session_id: None,
            trace_id: None,
            component: None,
            details,
        }
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
    pub(crate) fn stamp(&self, seq: u64, now: SystemTime) -> AuditRow {
        AuditRow {
            seq,
            ts: humantime::format_rfc3339_millis(now).to_string(),
            seam: self.seam.clone(),
            // A story that starts with this row is named after the row's own
            // seq, which only exists now; `{seq}` in the id is filled in here.
            caller_session_id: self
                .caller_session_id
                .as_ref()
                .map(|id| id.replace(SEQ_PLACEHOLDER, &seq.to_string())),
            trace_id: self.trace_id.clone(),
            component: self.component.clone(),
            details: self.details.clone(),
        }
    }
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
    /// Appends this row's line (JSON + `\n`) to `buf`.
    pub(crate) fn encode_into(&self, buf: &mut Vec<u8>) {
        // Serialising a struct of strings, integers and a `Value` into a Vec cannot
        // fail (no non-string map keys, no I/O); fall back to a valid row anyway.
        if serde_json::to_writer(&mut *buf, self).is_err() {
            let fallback = serde_json::json!({
                "seq": self.seq, "ts": self.ts, "seam": self.seam,
                "caller_session_id": null, "trace_id": null, "component": null,
                "details": {"encode_error": true},
            });
            buf.extend_from_slice(fallback.to_string().as_bytes());
        }
        buf.push(b'\n');
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
