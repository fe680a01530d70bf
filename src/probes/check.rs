//! [`Check`]: one probe's settings turned into a runnable, bounded check.
//!
//! `build` resolves the shared settings (the timeout) and hands the rest to
//! the probe's kind, which parses everything that can be parsed once (URL,
//! method, headers, fixed expiry), so `run` only does I/O. `run` never
//! panics and never returns an error: every failure is an unhealthy
//! [`CheckOutcome`] with an operator-facing reason.

use std::time::Duration;

use tokio::time::Instant;

use super::facts::{CheckOutcome, Facts};
use super::heartbeat::Heartbeats;
use super::kind::Runner;
use crate::messages::Health;
use crate::settings::{ProbeDefaults, ProbeSettings};

/// What every check shares: one HTTP client (one connection pool, one TLS
/// config) and the heartbeat registry the API writes to.
#[derive(Clone)]
pub struct CheckContext {
    /// The shared client from [`http_client`](super::http_client).
    pub http: reqwest::Client,
    /// Where pushed heartbeats land.
    pub heartbeats: Heartbeats,
}

/// A probe's settings that cannot become a check.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The probe has no `kind`.
    #[error("probe {probe}: no kind set")]
    NoKind {
        /// The probe's name.
        probe: String,
    },
    /// A field the kind needs is missing.
    #[error("probe {probe}: {field} is required for kind {kind}")]
    MissingField {
        /// The probe's name.
        probe: String,
        /// The kind.
        kind: &'static str,
        /// The missing key.
        field: &'static str,
    },
    /// `url` does not parse or is not http(s).
    #[error("probe {probe}: bad url {url:?}: {reason}")]
    BadUrl {
        /// The probe's name.
        probe: String,
        /// The URL as written.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// `method` is not an HTTP method token.
    #[error("probe {probe}: bad method {method:?}")]
    BadMethod {
        /// The probe's name.
        probe: String,
        /// The method as written.
        method: String,
    },
    /// A header name is not a valid token.
    #[error("probe {probe}: bad header name {name:?}")]
    BadHeaderName {
        /// The probe's name.
        probe: String,
        /// The header name as written.
        name: String,
    },
    /// A header value has forbidden bytes (the value is not echoed: it may be a secret).
    #[error(
        "probe {probe}: bad value for header {name:?} (control characters or non-visible bytes)"
    )]
    BadHeaderValue {
        /// The probe's name.
        probe: String,
        /// The header name.
        name: String,
    },
    /// `expires_at` is not an RFC 3339 timestamp.
    #[error(
        "probe {probe}: expires_at {value:?} is not an RFC 3339 time such as 2026-12-18T00:00:00Z"
    )]
    BadExpiry {
        /// The probe's name.
        probe: String,
        /// The value as written.
        value: String,
    },
    /// A kind's own key has a value the kind cannot use.
    #[error("probe {probe}: {key} {reason}")]
    Invalid {
        /// The probe's name.
        probe: String,
        /// The key, e.g. `server`.
        key: &'static str,
        /// What is wrong with it, e.g. `"x" is not ip:port`.
        reason: String,
    },
    /// The shared HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// A runnable check: the kind-specific part plus the timeout.
pub struct Check {
    timeout: Duration,
    runner: Box<dyn Runner>,
}

impl Check {
    /// Turns a probe's settings into a check. Settings are expected to be
    /// validated already; anything still wrong is a [`ProbeError`].
    pub fn build(
        probe: &ProbeSettings,
        defaults: &ProbeDefaults,
        ctx: &CheckContext,
    ) -> Result<Check, ProbeError> {
        let timeout = probe.timeout.unwrap_or(defaults.timeout);
        let Some(kind) = probe.kind else {
            return Err(ProbeError::NoKind {
                probe: probe.name.clone(),
            });
        };
        let runner = super::spec(kind).build(probe, timeout, ctx)?;
        Ok(Check { timeout, runner })
    }

    /// The longest one run may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs the check once, bounded by [`Check::timeout`]. `facts.latency` is
    /// the wall time of the whole run.
    pub async fn run(&self) -> CheckOutcome {
        let started = Instant::now();
        let run = self.runner.run(self.timeout);
        let mut outcome = if self.runner.bounds_itself() {
            run.await
        } else {
            match tokio::time::timeout(self.timeout, run).await {
                Ok(outcome) => outcome,
                Err(_) => self.runner.timed_out(self.timeout),
            }
        };
        outcome.facts.latency = started.elapsed();
        outcome
    }
}

/// `timed out after 80ms`.
pub(crate) fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", humantime::format_duration(timeout))
}

/// A coarse, human duration: the two largest units, `1h 2m`, `6d 23h`,
/// `45s`, `300ms`. For measured gaps, where `1h 2m 3s 456ms` is noise.
pub(crate) fn coarse(duration: Duration) -> String {
    const UNITS: [(&str, u128); 5] = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let total = duration.as_millis();
    let Some(first) = UNITS.iter().position(|(_, size)| total >= *size) else {
        return "0s".to_owned();
    };
    let mut out = String::new();
    if let Some((unit, size)) = UNITS.get(first) {
        out = format!("{}{unit}", total / size);
        let rest = total % size;
        if let Some((unit, size)) = UNITS.get(first + 1)
            && rest / size > 0
        {
            out = format!("{out} {}{unit}", rest / size);
        }
    }
    out
}

impl CheckOutcome {
    /// An unhealthy outcome for a check that could not complete: the reason
    /// also becomes `facts.error`.
    pub fn failed(mut facts: Facts, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        facts.error = Some(reason.clone());
        Self::with(facts, Health::Unhealthy, reason)
    }
}

#[cfg(test)]
mod tests;
