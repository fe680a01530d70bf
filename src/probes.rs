//! Probes: one supervised actor per configured probe, each running cheap,
//! bounded checks on its own cadence (no LLM, no heavy work), classifying the
//! result and publishing an [`Observation`](crate::messages::Observation).
//!
//! # Layout
//! - `actor.rs`: [`ProbeActor`], the schedule and the hand-off to the debouncer.
//! - `check.rs`: [`Check`], one probe's settings built into a bounded check.
//! - `kind.rs`: the `ProbeKindSpec` trait, everything a kind provides.
//! - one file per kind: `http.rs`, `tcp.rs`, `command.rs`, `heartbeat.rs`,
//!   `credential_expiry.rs`, `dns.rs`; each owns its keys, their validation, its build
//!   and its run, and is registered in `spec` below (plus its variant and
//!   keys in `settings/probes.rs`).
//! - `facts.rs`: [`Facts`] and [`CheckOutcome`], what a check measured; the
//!   contract between the kinds and the condition language.
//! - `escape.rs`: [`escape_output`] and [`escape_line`], applied to what a
//!   target said before an observation carries it anywhere.
//! - `classify.rs`: the condition language (`status == 200`, `latency < 300ms`,
//!   `body.status == "ok"`) and the final verdict.

mod actor;
mod check;
mod escape;
mod facts;
mod kind;

mod command;
mod credential_expiry;
mod dns;
mod heartbeat;
mod http;
mod tcp;

pub use actor::{ProbeActor, ProbeActorArgs, ProbeMsg, ProbeStartError};
pub use check::{Check, CheckContext, ProbeError};
pub use escape::{escape_line, escape_output};
pub use facts::{CheckOutcome, FactSpec, FactType, FactValue, Facts};
pub use heartbeat::Heartbeats;
pub use http::http_client;
pub mod classify;

use crate::settings::ProbeKind;
use kind::ProbeKindSpec;

/// The implementation of `kind`: the one place a kind is registered.
pub(crate) fn spec(kind: ProbeKind) -> &'static dyn ProbeKindSpec {
    match kind {
        ProbeKind::Http => &http::Http,
        ProbeKind::Tcp => &tcp::Tcp,
        ProbeKind::Command => &command::Command,
        ProbeKind::Heartbeat => &heartbeat::Heartbeat,
        ProbeKind::CredentialExpiry => &credential_expiry::CredentialExpiry,
        ProbeKind::Dns => &dns::Dns,
    }
}

/// The condition fields the kinds declare, in kind order.
pub(crate) fn kind_facts() -> impl Iterator<Item = &'static FactSpec> {
    ProbeKind::ALL
        .iter()
        .flat_map(|kind| spec(*kind).facts().iter())
}

/// Checks the keys of a probe of `kind` at `at`: a key another kind owns is
/// not used here; the kind checks its own. For settings validation.
pub(crate) fn validate_kind_keys(
    kind: ProbeKind,
    probe: &crate::settings::ProbeSettings,
    at: &str,
    problems: &mut crate::settings::Problems,
) {
    for other in ProbeKind::ALL.iter().filter(|other| **other != kind) {
        for (key, given) in spec(*other).keys() {
            if given(probe) {
                problems.push(
                    format!("{at}.{key}"),
                    format!("is not used by kind {}", kind.as_str()),
                );
            }
        }
    }
    spec(kind).validate(probe, at, problems);
}

/// The default issue categories of a probe of `kind`: (unhealthy, degraded).
pub(crate) fn default_categories(kind: Option<ProbeKind>) -> (&'static str, &'static str) {
    kind.map_or(kind::DEFAULT_CATEGORIES, |kind| {
        spec(kind).default_categories()
    })
}
