//! The debouncer: turns a stream of observations into issues, one per
//! (probe, category), with thresholds, suppression windows, reminders,
//! flapping detection, dependency suppression and maintenance windows.
//!
//! # Layout
//! - `state.rs`: the pure state machine, property-tested without actors.
//! - `maintenance.rs`: whether a maintenance window is active at an instant.
//! - `queue.rs`: the observation queue that outlives debouncer instances.
//! - `actor.rs`: the `Debouncer` actor: applies observations, writes effects
//!   to the audit log, publishes issue events.
//! - `rows.rs`: the audit row (and metric labels) of each effect.
//! - `restore.rs`: rebuilds open issues from the audit log at boot.

mod actor;
pub mod maintenance;
mod queue;
mod restore;
mod rows;
pub mod state;

pub use actor::{
    DebounceConfig, DebounceEntry, DebounceStore, Debouncer, DebouncerArgs, DebouncerMsg,
    LatestObservations, ObservationHistory, OpenIssueView, PendingEffect, ProbeRules, new_entry,
    restore_entry,
};
pub use queue::{ObservationQueue, QUEUE_CAPACITY};
pub use restore::{OpenAtBoot, open_issues};
