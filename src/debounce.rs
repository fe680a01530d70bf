//! The debouncer: turns a stream of observations into issues, one per
//! (probe, category), with thresholds, suppression windows, reminders,
//! flapping detection, dependency suppression and maintenance windows.
//!
//! # Layout
//! - `state.rs`: the pure state machine, property-tested without actors.
//! - `maintenance.rs`: whether a maintenance window is active at an instant.

pub mod maintenance;
pub mod state;
