//! `heartbeat`: a dead-man switch. The watched service pushes beats (through
//! the API) into [`Heartbeats`]; the check only measures the silence.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

use super::check::{CheckContext, ProbeError, coarse};
use super::facts::{CheckOutcome, Facts};
use super::kind::{OwnKey, ProbeKindSpec, RunFuture, Runner, required};
use crate::messages::Health;
use crate::settings::{ProbeKind, ProbeSettings, Problems};

/// The `heartbeat` kind.
pub(crate) struct Heartbeat;

impl ProbeKindSpec for Heartbeat {
    fn keys(&self) -> &'static [OwnKey] {
        &[("max_silence", |p| p.max_silence.is_some())]
    }

    fn validate(&self, probe: &ProbeSettings, at: &str, problems: &mut Problems) {
        match probe.max_silence {
            None => required(problems, at, "max_silence", ProbeKind::Heartbeat.as_str()),
            Some(silence) if silence.is_zero() => {
                problems.push(format!("{at}.max_silence"), "must be greater than zero")
            }
            Some(_) => {}
        }
    }

    fn build(
        &self,
        probe: &ProbeSettings,
        _timeout: Duration,
        ctx: &CheckContext,
    ) -> Result<Box<dyn Runner>, ProbeError> {
        Ok(Box::new(HeartbeatCheck::build(
            probe,
            ctx.heartbeats.clone(),
        )?))
    }
}

/// The last heartbeat of each probe, shared by the API (writer) and the
/// heartbeat checks (readers). Made once in `app.rs` so it survives probe
/// restarts.
#[derive(Clone, Default)]
pub struct Heartbeats(Arc<DashMap<String, Instant>>);

impl Heartbeats {
    /// Records a heartbeat for `probe` now.
    pub fn beat(&self, probe: &str) {
        self.0.insert(probe.to_owned(), Instant::now());
    }

    /// The last heartbeat (or registration) of `probe`.
    pub fn last(&self, probe: &str) -> Option<Instant> {
        self.0.get(probe).map(|at| *at)
    }

    /// Records now for `probe` if nothing is recorded yet, so `max_silence`
    /// counts from the probe's start rather than reporting silence forever.
    pub fn register(&self, probe: &str) {
        self.register_new(probe);
    }

    /// Like [`Heartbeats::register`]; true when nothing was recorded before.
    fn register_new(&self, probe: &str) -> bool {
        let mut fresh = false;
        self.0.entry(probe.to_owned()).or_insert_with(|| {
            fresh = true;
            Instant::now()
        });
        fresh
    }
}

pub(crate) struct HeartbeatCheck {
    name: String,
    max_silence: Duration,
    heartbeats: Heartbeats,
    /// The instant this check registered the probe, when it was the first to.
    /// While `last()` still equals it, no heartbeat has ever arrived.
    registered_at: Option<Instant>,
}

impl HeartbeatCheck {
    pub(crate) fn build(probe: &ProbeSettings, heartbeats: Heartbeats) -> Result<Self, ProbeError> {
        let max_silence = probe.max_silence.ok_or_else(|| ProbeError::MissingField {
            probe: probe.name.clone(),
            kind: ProbeKind::Heartbeat.as_str(),
            field: "max_silence",
        })?;
        let registered_at = if heartbeats.register_new(&probe.name) {
            heartbeats.last(&probe.name)
        } else {
            None
        };
        Ok(Self {
            name: probe.name.clone(),
            max_silence,
            heartbeats,
            registered_at,
        })
    }

    pub(crate) fn run(&self) -> CheckOutcome {
        let now = Instant::now();
        // A registry entry can only disappear if someone else cleared it;
        // treat that like a fresh start rather than as silence forever.
        let last = self.heartbeats.last(&self.name).unwrap_or_else(|| {
            self.heartbeats.register(&self.name);
            now
        });
        let silence = now.saturating_duration_since(last);
        let never = self.registered_at == Some(last);
        let facts = Facts {
            since_last_heartbeat: Some(silence),
            ..Facts::default()
        };
        if silence <= self.max_silence {
            return CheckOutcome::healthy(facts);
        }
        let limit = humantime::format_duration(self.max_silence);
        let reason = if never {
            format!(
                "no heartbeat for {} (max_silence {limit}): none received since the probe started",
                coarse(silence)
            )
        } else {
            format!(
                "no heartbeat for {} (max_silence {limit}): the last one arrived {} ago",
                coarse(silence),
                coarse(silence)
            )
        };
        CheckOutcome::with(facts, Health::Unhealthy, reason)
    }
}

impl Runner for HeartbeatCheck {
    fn run(&self, _timeout: Duration) -> RunFuture<'_> {
        Box::pin(async move { HeartbeatCheck::run(self) })
    }
}

#[cfg(test)]
mod tests;
