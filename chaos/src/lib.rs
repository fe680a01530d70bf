//! Chaos testing for Warden: boot the real supervision tree in-process, run a
//! seeded schedule of faults against it while load is applied, then check the
//! invariants that must hold whatever happened.
//!
//! # Layout
//! - [`scenario`]: the scenario file format (`chaos/scenarios/*.toml`).
//! - [`faults`]: the faults that can be injected.
//! - [`harness`]: boots Warden, drives load and faults, collects what happened.
//! - [`invariants`]: the properties checked at the end.
//! - [`subject`]: Warden in-process or as the binary, behind one interface.
//! - [`world`]: simulated targets, webhook receiver and fix endpoint.
//!
//! A scenario is data, so a new failure mode is a new TOML file, and a seed
//! reproduces a run exactly (the same faults in the same order).

pub mod faults;
pub mod harness;
pub mod invariants;
pub mod scenario;
pub mod subject;
pub mod world;

pub use harness::{Outcome, run_scenario};
pub use scenario::Scenario;

/// Why a scenario could not run or failed its checks.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// The scenario file is unreadable or malformed.
    #[error("scenario {name}: {reason}")]
    Scenario {
        /// The scenario's file or name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Warden itself failed to start.
    #[error("warden did not start: {0}")]
    Start(String),
    /// A fault could not be injected.
    #[error("fault {fault} could not be injected: {reason}")]
    Fault {
        /// The fault.
        fault: String,
        /// Why.
        reason: String,
    },
    /// One or more invariants were violated.
    #[error("invariants violated:\n{}", .0.join("\n"))]
    Violated(Vec<String>),
}
