//! [`Check`]: one probe's settings turned into a runnable, bounded check.
//!
//! `build` resolves defaults and parses everything that can be parsed once
//! (URL, method, headers, fixed expiry), so `run` only does I/O. `run` never
//! panics and never returns an error: every failure is an unhealthy
//! [`CheckOutcome`] with an operator-facing reason.

use std::time::Duration;

use tokio::time::Instant;

use super::command::CommandCheck;
use super::credential_expiry::CredentialExpiryCheck;
use super::facts::{CheckOutcome, Facts};
use super::heartbeat::{HeartbeatCheck, Heartbeats};
use super::http::HttpCheck;
use super::tcp::TcpCheck;
use crate::messages::Health;
use crate::settings::{ProbeDefaults, ProbeKind, ProbeSettings};

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
    /// The shared HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// A runnable check: the kind-specific part plus the timeout.
pub struct Check {
    timeout: Duration,
    kind: Kind,
}

enum Kind {
    Http(HttpCheck),
    Tcp(TcpCheck),
    Command(CommandCheck),
    Heartbeat(HeartbeatCheck),
    CredentialExpiry(CredentialExpiryCheck),
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
        let kind = match probe.kind {
            None => {
                return Err(ProbeError::NoKind {
                    probe: probe.name.clone(),
                });
            }
            Some(ProbeKind::Http) => Kind::Http(HttpCheck::build(probe, ctx.http.clone())?),
            Some(ProbeKind::Tcp) => Kind::Tcp(TcpCheck::build(probe)?),
            Some(ProbeKind::Command) => Kind::Command(CommandCheck::build(probe)?),
            Some(ProbeKind::Heartbeat) => {
                Kind::Heartbeat(HeartbeatCheck::build(probe, ctx.heartbeats.clone())?)
            }
            Some(ProbeKind::CredentialExpiry) => {
                Kind::CredentialExpiry(CredentialExpiryCheck::build(probe)?)
            }
        };
        Ok(Check { timeout, kind })
    }

    /// The longest one run may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs the check once, bounded by [`Check::timeout`]. `facts.latency` is
    /// the wall time of the whole run.
    pub async fn run(&self) -> CheckOutcome {
        let started = Instant::now();
        let mut outcome = match &self.kind {
            // The command kind enforces the timeout itself: it must kill and reap.
            Kind::Command(check) => check.run(self.timeout).await,
            other => match tokio::time::timeout(self.timeout, other.run()).await {
                Ok(outcome) => outcome,
                Err(_) => other.timed_out(self.timeout),
            },
        };
        outcome.facts.latency = started.elapsed();
        outcome
    }
}

impl Kind {
    async fn run(&self) -> CheckOutcome {
        match self {
            Kind::Http(check) => check.run().await,
            Kind::Tcp(check) => check.run().await,
            Kind::Heartbeat(check) => check.run(),
            Kind::CredentialExpiry(check) => check.run().await,
            Kind::Command(_) => CheckOutcome::failed(
                Facts::default(),
                "internal: command checks run with their own timeout",
            ),
        }
    }

    fn timed_out(&self, timeout: Duration) -> CheckOutcome {
        let facts = Facts {
            connected: matches!(self, Kind::Tcp(_)).then_some(false),
            ..Facts::default()
        };
        CheckOutcome::failed(facts, timed_out(timeout))
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
