//! Incidents: the [`IncidentCommander`] opens an incident when an issue is
//! bad enough (or an operator, the escalation ladder or the root supervisor
//! asks), snapshots the evidence before anything else may act, keeps a UTC
//! timeline, sends updates on a per-severity cadence, freezes automation on
//! the affected components while the incident is severe, and writes a
//! postmortem when impact has stopped.
//!
//! # Layout
//! - `severity.rs`: [`Sev`] and the severity rules ([`rate`]).
//! - `model.rs`: [`Incident`], [`TimelineEntry`], [`OpenTrigger`].
//! - `state.rs`: pure rules (joining, resolution, cadence).
//! - `core.rs`: the commander's pure core: every decision, as
//!   `step(input, now) -> effects`, with property tests.
//! - `disk.rs`: `<state_dir>/incidents/<id>/` (record, timeline, evidence, postmortem).
//! - `evidence.rs`: gathering and writing evidence files.
//! - `postmortem.rs`: the postmortem packet.
//! - `clock.rs`: the time the core is given (wall time on the tokio clock).
//! - `commander.rs`: the commander's arguments and messages.
//! - `actor.rs`: the commander actor, which executes the core's effects.
//! - `client.rs`: the `warden incidents` CLI, a client of the HTTP API.
//!
//! # Guarantees
//! - Evidence first: an incident enters the shared [`IncidentStore`] (where
//!   the API and escalation see it) only after its evidence files are
//!   written, and `incident.opened` is appended only after that; see
//!   [`evidence_ready`].
//! - The store and the disk outlive the actor: a restarted commander reloads
//!   every incident from disk and keeps what the store already held.

mod actor;
mod adopt;
pub mod client;
mod clock;
mod commander;
pub mod core;
mod disk;
mod evidence;
pub mod intake;
mod model;
mod postmortem;
mod severity;
mod state;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use actor::{CommanderState, IncidentCommander};
pub use commander::{CommanderArgs, IncidentMsg};
pub use disk::{incidents_root, load_all, read_timeline};
pub use evidence::EffectiveConfig;
pub use model::{
    Incident, IncidentStatus, OpenTrigger, SeverityChange, TimelineEntry, now_rfc3339,
};
pub use postmortem::TO_FILL;
pub use severity::{Sev, SeverityFacts, freezes, is_integrity_category, rate};
pub use state::{ImpactOngoing, cadence_due, impact_stopped, joins, related_components};

/// Every incident by id (open and resolved), made once in `app.rs` and shared
/// with the API, so reads need no call and the map survives a restart.
pub type IncidentStore = Arc<dashmap::DashMap<String, Incident>>;

/// Components whose automation is frozen, with the incident that froze each.
pub type FreezeSet = Arc<dashmap::DashMap<String, String>>;

/// What went wrong in the incident files.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    /// A file or directory operation failed.
    #[error("incident i/o failed on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A record could not be encoded.
    #[error("cannot encode an incident record: {0}")]
    Encode(#[source] serde_json::Error),
    /// Every id of the day is taken (more than four billion incidents).
    #[error("no incident id left for today")]
    Exhausted,
}

/// Why the commander refused or failed an operator's change (note,
/// severity, resolution). The API answers each with its own status.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No incident has this id.
    #[error("no incident {0}")]
    Unknown(String),
    /// The incident is resolved; the change no longer applies.
    #[error("{id} is {}resolved", if *.already { "already " } else { "" })]
    Resolved {
        /// The incident.
        id: String,
        /// Worded "already resolved" (a second resolution).
        already: bool,
    },
    /// Resolution refused: impact has not stopped.
    #[error(transparent)]
    ImpactOngoing(#[from] ImpactOngoing),
    /// The incident files could not be written; retrying may help, the
    /// operator's request itself was fine.
    #[error(transparent)]
    Files(#[from] IncidentError),
}

/// Whether an open incident covers `component` and its evidence is written.
///
/// Escalation calls this before a fix attempt, tier call or rollback on a
/// component with a critical issue: `false` means either no incident covers
/// the component yet (the commander may still be handling the same issue
/// event) or its evidence is not written, so an action that destroys state
/// should wait (bounded) and check again.
pub fn evidence_ready(store: &IncidentStore, component: &str) -> bool {
    store.iter().any(|incident| {
        incident.is_active()
            && incident.components.contains(component)
            && !incident.evidence.is_empty()
    })
}

/// Whether automation on `component` is frozen, and by which incident.
pub fn frozen_by(freeze: &FreezeSet, component: &str) -> Option<String> {
    freeze.get(component).map(|entry| entry.value().clone())
}

/// Appends a timeline entry to incident `id` under `state_dir` directly (for
/// tools and tests; running code should send [`IncidentMsg::Timeline`] so
/// the commander also updates the record).
pub fn record(state_dir: &Path, id: &str, entry: &TimelineEntry) -> Result<(), IncidentError> {
    disk::append_timeline(&incidents_root(state_dir), id, entry)
}
