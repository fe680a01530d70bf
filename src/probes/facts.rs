//! What one check measured. Every kind fills the fields that make sense for
//! it and leaves the rest `None`; conditions read them by name
//! (`status`, `latency`, `body`, `exit_code`, `cert_expires_in`, ...).

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
