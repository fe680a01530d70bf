//! `credential_expiry`: how long until a credential expires. The expiry is
//! read on every run (a rotated file or env var is seen at the next check);
//! the verdict is the pure [`evaluate`], so the clock is injectable.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use tokio::io::AsyncReadExt;

use super::check::{CheckContext, ProbeError, coarse};
use super::facts::{CheckOutcome, Facts};
use super::kind::{OwnKey, ProbeKindSpec, RunFuture, Runner};
use crate::messages::Health;
use crate::settings::{ProbeKind, ProbeSettings, Problems};

/// Most of an `expires_at_file` read; a timestamp is ~30 bytes.
const MAX_FILE_BYTES: u64 = 4096;

/// Alert thresholds in days when `alert_days` is not set.
const DEFAULT_ALERT_DAYS: [u32; 4] = [30, 14, 7, 1];

/// The `credential_expiry` kind.
pub(crate) struct CredentialExpiry;

impl ProbeKindSpec for CredentialExpiry {
    fn keys(&self) -> &'static [OwnKey] {
        &[
            ("expires_at", |p| p.expires_at.is_some()),
            ("expires_at_file", |p| p.expires_at_file.is_some()),
            ("expires_at_env", |p| p.expires_at_env.is_some()),
            ("alert_days", |p| p.alert_days.is_some()),
        ]
    }

    fn validate(&self, probe: &ProbeSettings, at: &str, problems: &mut Problems) {
        let sources = [
            probe.expires_at.is_some(),
            probe.expires_at_file.is_some(),
            probe.expires_at_env.is_some(),
        ];
        match sources.iter().filter(|given| **given).count() {
            0 => problems.push(
                format!("{at}.expires_at"),
                "kind credential_expiry needs one of expires_at, expires_at_file or expires_at_env",
            ),
            1 => {}
            _ => problems.push(
                format!("{at}.expires_at"),
                "set only one of expires_at, expires_at_file and expires_at_env",
            ),
        }
        if let Some(when) = probe.expires_at.as_deref()
            && when.parse::<jiff::Timestamp>().is_err()
        {
            problems.push(
                format!("{at}.expires_at"),
                format!("\"{when}\" is not an RFC 3339 time such as 2026-12-18T00:00:00Z"),
            );
        }
        if probe.alert_days.as_ref().is_some_and(Vec::is_empty) {
            problems.push(format!("{at}.alert_days"), "must list at least one day");
        }
    }

    fn build(
        &self,
        probe: &ProbeSettings,
        _timeout: Duration,
        _ctx: &CheckContext,
    ) -> Result<Box<dyn Runner>, ProbeError> {
        Ok(Box::new(CredentialExpiryCheck::build(probe)?))
    }

    // Inside the alert window a credential is expiring (a warning); once
    // expired it is an integrity problem for the incident rules.
    fn default_categories(&self) -> (&'static str, &'static str) {
        ("credential_expired", "credential_expiring")
    }
}

/// Where the expiry comes from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    /// `expires_at`, parsed once at build.
    Fixed(Timestamp),
    /// `expires_at_file`: the trimmed content.
    File(PathBuf),
    /// `expires_at_env`: the variable's value.
    Env(String),
}

pub(crate) struct CredentialExpiryCheck {
    source: Source,
    alert_days: Vec<u32>,
}

impl CredentialExpiryCheck {
    pub(crate) fn build(probe: &ProbeSettings) -> Result<Self, ProbeError> {
        let source = if let Some(value) = &probe.expires_at {
            Source::Fixed(value.trim().parse().map_err(|_| ProbeError::BadExpiry {
                probe: probe.name.clone(),
                value: value.clone(),
            })?)
        } else if let Some(path) = &probe.expires_at_file {
            Source::File(path.clone())
        } else if let Some(var) = &probe.expires_at_env {
            Source::Env(var.clone())
        } else {
            return Err(ProbeError::MissingField {
                probe: probe.name.clone(),
                kind: ProbeKind::CredentialExpiry.as_str(),
                field: "expires_at (or expires_at_file, expires_at_env)",
            });
        };
        let alert_days = match &probe.alert_days {
            Some(days) if !days.is_empty() => days.clone(),
            _ => DEFAULT_ALERT_DAYS.to_vec(),
        };
        Ok(Self { source, alert_days })
    }

    pub(crate) async fn run(&self) -> CheckOutcome {
        match read_expiry(&self.source, |var| std::env::var_os(var)).await {
            Ok(expiry) => evaluate(expiry, Timestamp::now(), &self.alert_days),
            Err(reason) => CheckOutcome::failed(Facts::default(), reason),
        }
    }
}

impl Runner for CredentialExpiryCheck {
    fn run(&self, _timeout: Duration) -> RunFuture<'_> {
        Box::pin(CredentialExpiryCheck::run(self))
    }
}

/// Reads and parses the expiry; the error is an operator-facing sentence.
/// The content of a file or variable is never echoed: a misconfigured path
/// could point at the credential itself.
async fn read_expiry(
    source: &Source,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Timestamp, String> {
    let (text, from) = match source {
        Source::Fixed(at) => return Ok(*at),
        Source::File(path) => {
            let from = format!("expires_at_file {}", path.display());
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|err| format!("cannot read {from}: {}", super::tcp::io_cause(&err)))?;
            let mut bytes = Vec::new();
            file.take(MAX_FILE_BYTES + 1)
                .read_to_end(&mut bytes)
                .await
                .map_err(|err| format!("cannot read {from}: {}", super::tcp::io_cause(&err)))?;
            if bytes.len() as u64 > MAX_FILE_BYTES {
                return Err(format!(
                    "{from} is larger than 4 KiB; it should hold one RFC 3339 time"
                ));
            }
            let text =
                String::from_utf8(bytes).map_err(|_| format!("{from} is not valid UTF-8 text"))?;
            (text, from)
        }
        Source::Env(var) => {
            let from = format!("expires_at_env {var}");
            let value = env(var).ok_or_else(|| format!("{from}: the variable is not set"))?;
            let text = value
                .into_string()
                .map_err(|_| format!("{from}: the value is not valid UTF-8"))?;
            (text, from)
        }
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{from} is empty; it should hold an RFC 3339 time"));
    }
    text.parse()
        .map_err(|_| format!("{from} does not hold an RFC 3339 time such as 2026-12-18T00:00:00Z"))
}

/// The verdict for a credential expiring at `expiry`, seen at `now`.
///
/// Expired (`now >= expiry`): unhealthy, stage `expired`. Within an alert
/// window: degraded, stage = the smallest threshold `d` with
/// `remaining <= d days`, e.g. `7d`. Otherwise healthy.
fn evaluate(expiry: Timestamp, now: Timestamp, alert_days: &[u32]) -> CheckOutcome {
    let remaining = expiry.duration_since(now);
    let facts = Facts {
        cert_expires_in: Some(remaining.as_secs()),
        ..Facts::default()
    };
    if !remaining.is_positive() {
        let ago = coarse(Duration::try_from(remaining.abs()).unwrap_or_default());
        let mut outcome = CheckOutcome::with(
            facts,
            Health::Unhealthy,
            format!("credential expired {ago} ago ({expiry})"),
        );
        outcome.stage = Some("expired".to_owned());
        return outcome;
    }
    let left = Duration::try_from(remaining).unwrap_or_default();
    let threshold = alert_days
        .iter()
        .copied()
        .filter(|days| left <= Duration::from_secs(u64::from(*days) * 86_400))
        .min();
    match threshold {
        None => CheckOutcome::healthy(facts),
        Some(days) => {
            let mut outcome = CheckOutcome::with(
                facts,
                Health::Degraded,
                format!(
                    "credential expires in {} ({expiry}), within the {days}d alert",
                    coarse(left)
                ),
            );
            outcome.stage = Some(format!("{days}d"));
            outcome
        }
    }
}

#[cfg(test)]
mod tests;
