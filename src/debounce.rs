//! The debouncer: turns a stream of observations into issues, one per
//! (probe, category), with thresholds, suppression windows, reminders,
//! flapping detection, dependency suppression and maintenance windows.
//!
//! # Layout
//! - `state.rs`: the pure state machine, property-tested without actors.
//! - `maintenance.rs`: whether a maintenance window is active at an instant.
//! - `actor.rs`: the `Debouncer` actor: applies observations, writes effects
//!   to the audit log (every consumer reads them there).
//!
//! What the probes observe (the latest observation, the recent history, the
//! queue to the debouncer) is in [`crate::observations`]; it is re-exported
//! here for the code that reads it with the debounce state.
//! - `rows.rs`: the audit row (and metric labels) of each effect.
//! - `restore.rs`: rebuilds open issues from the audit log at boot.

mod actor;
pub mod maintenance;
mod restore;
mod rows;
pub mod state;

pub use crate::observations::{
    LatestObservations, ObservationHistory, ObservationQueue, QUEUE_CAPACITY,
};
pub use actor::{
    DebounceConfig, DebounceEntry, DebounceStore, Debouncer, DebouncerArgs, DebouncerMsg,
    OpenIssueView, PendingEffect, ProbeRules, Reassigned, new_entry, restore_entry,
};
pub use restore::{OpenAtBoot, open_issues};
