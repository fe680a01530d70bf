//! What one check measured. Every kind fills the fields that make sense for
//! it and leaves the rest `None`; conditions read them by name
//! (`status`, `latency`, `body`, `exit_code`, `cert_expires_in`, ...).
//!
//! A fact only one kind measures does not get a field here: the kind
//! declares it as a [`FactSpec`] and reports it in [`Facts::kind_facts`], so
//! a new kind adds condition fields without touching this file or the
//! condition language.

use std::time::Duration;

use super::escape::{escape_line, escape_output};
use crate::messages::Health;

/// Measurements of one check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Wall time of the check.
    pub latency: Duration,
    /// `http`: the response status code.
    pub status: Option<u16>,
    /// `http`: the response body (up to the cap); `command`: stdout (bounded).
    pub body: Option<String>,
    /// True when `body` was cut at the cap.
    pub body_truncated: bool,
    /// `command`: the exit code (None when killed by a signal or on timeout).
    pub exit_code: Option<i32>,
    /// `command`: stderr (bounded).
    pub stderr: Option<String>,
    /// `tcp`: whether the connection was established.
    pub connected: Option<bool>,
    /// `http` over TLS: the peer certificate; `credential_expiry`: the
    /// credential. Seconds until expiry, negative once expired.
    pub cert_expires_in: Option<i64>,
    /// `heartbeat`: time since the last heartbeat (None if none ever arrived).
    pub since_last_heartbeat: Option<Duration>,
    /// The check could not complete: timeout, refused, reset, DNS, invalid
    /// response. A clear, operator-facing sentence.
    pub error: Option<String>,
    /// Facts only the probe's kind measures, by the names its
    /// [`FactSpec`]s declare (e.g. `dns`: `rcode`).
    pub kind_facts: Vec<(&'static str, FactValue)>,
}

/// The value of a kind's own fact.
#[derive(Debug, Clone, PartialEq)]
pub enum FactValue {
    /// A whole number, compared with `==`, `<`, ...
    Integer(i64),
    /// A duration, compared to literals such as `300ms`.
    Duration(Duration),
    /// `true` or `false`.
    Bool(bool),
    /// Text, compared with `==`, `contains`, `matches`, ...
    Text(String),
}

/// The type of a kind's own fact, which decides what a condition on it may
/// compare with; checked when the settings load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactType {
    /// See [`FactValue::Integer`].
    Integer,
    /// See [`FactValue::Duration`].
    Duration,
    /// See [`FactValue::Bool`].
    Bool,
    /// See [`FactValue::Text`].
    Text,
}

/// A condition field that only one kind measures.
#[derive(Debug, PartialEq, Eq)]
pub struct FactSpec {
    /// The name conditions use, e.g. `rcode`.
    pub name: &'static str,
    /// Its type.
    pub ty: FactType,
    /// A value of that type as it would be written, for type errors.
    pub example: &'static str,
    /// Why a check may lack it, e.g. `only dns probes have one`.
    pub absent: &'static str,
}

impl Facts {
    /// The value of a kind's own fact, if this check measured it.
    pub fn kind_fact(&self, name: &str) -> Option<&FactValue> {
        self.kind_facts
            .iter()
            .find(|(fact, _)| *fact == name)
            .map(|(_, value)| value)
    }
}

/// Longest excerpt of a body or stderr kept in an observation's details.
const EXCERPT_CHARS: usize = 512;

/// The first [`EXCERPT_CHARS`] of `text`, escaped for display: the
/// target wrote it, so it may hold terminal escapes.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", escape_output(&text[..end])),
        None => escape_output(text).into_owned(),
    }
}

impl Facts {
    /// The facts as an observation's `details`: what was measured, with
    /// bodies cut to an excerpt so observations stay small.
    pub fn to_details(&self) -> serde_json::Value {
        let mut details = serde_json::Map::new();
        details.insert(
            "latency_ms".into(),
            (self.latency.as_millis() as u64).into(),
        );
        if let Some(status) = self.status {
            details.insert("status".into(), status.into());
        }
        if let Some(body) = &self.body {
            details.insert("body_excerpt".into(), excerpt(body).into());
            details.insert("body_truncated".into(), self.body_truncated.into());
        }
        if let Some(code) = self.exit_code {
            details.insert("exit_code".into(), code.into());
        }
        if let Some(stderr) = &self.stderr {
            details.insert("stderr_excerpt".into(), excerpt(stderr).into());
        }
        if let Some(connected) = self.connected {
            details.insert("connected".into(), connected.into());
        }
        if let Some(seconds) = self.cert_expires_in {
            details.insert("expires_in_s".into(), seconds.into());
        }
        if let Some(silence) = self.since_last_heartbeat {
            details.insert(
                "since_last_heartbeat_ms".into(),
                (silence.as_millis() as u64).into(),
            );
        }
        if let Some(error) = &self.error {
            details.insert("error".into(), escape_line(error).into_owned().into());
        }
        for (name, value) in &self.kind_facts {
            let (key, value) = match value {
                FactValue::Integer(number) => ((*name).to_owned(), (*number).into()),
                // Suffixed like `latency_ms`, so the unit is in the key.
                FactValue::Duration(duration) => {
                    (format!("{name}_ms"), (duration.as_millis() as u64).into())
                }
                FactValue::Bool(flag) => ((*name).to_owned(), (*flag).into()),
                // The target wrote it (e.g. a TXT record), like a body.
                FactValue::Text(text) => ((*name).to_owned(), excerpt(text).into()),
            };
            details.insert(key, value);
        }
        serde_json::Value::Object(details)
    }
}

/// A check's result before conditions apply: the facts and the kind's own
/// verdict (e.g. `http` without `expect_status` calls a non-2xx unhealthy).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcome {
    /// What was measured.
    pub facts: Facts,
    /// The kind's verdict.
    pub verdict: Health,
    /// Why the verdict is not healthy (empty when healthy).
    pub reasons: Vec<String>,
    /// The stage, for kinds that have stages (see `Observation::stage`).
    pub stage: Option<String>,
}

impl CheckOutcome {
    /// A healthy outcome.
    pub fn healthy(facts: Facts) -> Self {
        Self {
            facts,
            verdict: Health::Healthy,
            reasons: Vec::new(),
            stage: None,
        }
    }

    /// An outcome with a verdict and one reason.
    pub fn with(facts: Facts, verdict: Health, reason: impl Into<String>) -> Self {
        Self {
            facts,
            verdict,
            reasons: vec![reason.into()],
            stage: None,
        }
    }
}
