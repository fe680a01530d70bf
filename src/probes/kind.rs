//! The contract between Warden and a probe kind.
//!
//! A kind's own file owns everything about it: the [`ProbeSettings`] keys it
//! reads and their checks ([`ProbeKindSpec::validate`]), its build from
//! settings ([`ProbeKindSpec::build`]), its run ([`Runner`]) and any
//! condition fields only it measures ([`ProbeKindSpec::facts`]). The rest of
//! Warden reaches a kind only through this trait, looked up by
//! [`spec`](super::spec), the one place a kind is registered.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::check::{CheckContext, ProbeError, timed_out};
use super::facts::{CheckOutcome, FactSpec, Facts};
use crate::settings::{ProbeSettings, Problems};

/// One run of a check, boxed so that every kind fits behind one [`Runner`].
pub(crate) type RunFuture<'a> = Pin<Box<dyn Future<Output = CheckOutcome> + Send + 'a>>;

/// The issue categories of a probe whose kind says nothing else.
pub(crate) const DEFAULT_CATEGORIES: (&str, &str) = ("service_unhealthy", "service_degraded");

/// A [`ProbeSettings`] key only one kind reads, and how to tell whether a
/// probe sets it.
pub(crate) type OwnKey = (&'static str, fn(&ProbeSettings) -> bool);

/// What a probe kind provides. Implemented by a unit struct in the kind's
/// file and registered in [`spec`](super::spec).
pub(crate) trait ProbeKindSpec: Sync {
    /// The keys only this kind reads. A probe of another kind that sets one
    /// is told the key is not used by its kind.
    fn keys(&self) -> &'static [OwnKey];

    /// Checks this kind's keys of `probe` (found at `at`, e.g. `probes[2]`),
    /// pushing every problem. Settings validation runs it before any build.
    fn validate(&self, probe: &ProbeSettings, at: &str, problems: &mut Problems);

    /// Turns validated settings into a runnable check whose runs are cut
    /// off at `timeout` (the probe's, or the default), for kinds whose client
    /// has a timeout of its own. Anything still wrong is a [`ProbeError`],
    /// never a panic.
    fn build(
        &self,
        probe: &ProbeSettings,
        timeout: Duration,
        ctx: &CheckContext,
    ) -> Result<Box<dyn Runner>, ProbeError>;

    /// Condition fields only this kind measures, beyond the shared ones of
    /// [`Facts`] (`status`, `latency`, `body`, ...).
    fn facts(&self) -> &'static [FactSpec] {
        &[]
    }

    /// The default issue categories of its probes: (unhealthy, degraded).
    fn default_categories(&self) -> (&'static str, &'static str) {
        DEFAULT_CATEGORIES
    }
}

/// A built check of one kind.
pub(crate) trait Runner: Send + Sync {
    /// Runs once. Unless [`Runner::bounds_itself`], the caller cuts the run
    /// off at `timeout`; `facts.latency` is set by the caller.
    fn run(&self, timeout: Duration) -> RunFuture<'_>;

    /// True when the run enforces `timeout` itself, because cutting it off
    /// from outside would leave something behind (a command's process).
    fn bounds_itself(&self) -> bool {
        false
    }

    /// The outcome of a run the caller cut off at `timeout`.
    fn timed_out(&self, timeout: Duration) -> CheckOutcome {
        CheckOutcome::failed(Facts::default(), timed_out(timeout))
    }
}

/// The `"is required for kind …"` problem, worded the same by every kind.
pub(crate) fn required(problems: &mut Problems, at: &str, key: &str, kind: &str) {
    problems.push(
        format!("{at}.{key}"),
        format!("is required for kind {kind}"),
    );
}

#[cfg(test)]
mod tests;
