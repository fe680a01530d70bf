//! The scenario file: Warden settings, a load, a seeded fault schedule and the
//! expectations to check. One file per scenario under `chaos/scenarios/`, with
//! a header comment giving the rationale.

use std::path::Path;

use serde::Deserialize;

use crate::ChaosError;
use crate::faults::Fault;

/// One chaos scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in messages.
    pub name: String,
    /// Seed of the fault schedule; the same seed injects the same faults in the same order.
    pub seed: u64,
    /// Concurrent tasks appending to the audit log for the whole run.
    #[serde(default = "default_appenders")]
    pub appenders: usize,
    /// How many faults must land (a fault that finds its target between
    /// instances is drawn again, up to ten draws per step).
    pub steps: u32,
    /// Longest pause between two faults, in milliseconds (each pause is drawn from 0..=this).
    #[serde(default = "default_gap")]
    pub max_gap_ms: u64,
    /// Wait for the tree to be whole again before each fault (false: hit it while it heals).
    #[serde(default = "default_true")]
    pub wait_for_recovery: bool,
    /// Faults to draw from, uniformly.
    pub faults: Vec<Fault>,
    /// Warden configuration for the run (the `[warden]` table; state_dir and
    /// api_listen are always set by the harness).
    #[serde(default)]
    pub warden: toml::Table,
    /// What must hold at the end.
    #[serde(default)]
    pub expect: Expect,
}

/// Expectations beyond the invariants every scenario checks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Exact number of root meltdowns (`service.meltdown` rows), when given.
    pub meltdowns: Option<usize>,
    /// Expected operational state at the end (`RUNNING`, `PAUSED`), when given.
    pub final_state: Option<String>,
    /// Fewest acknowledged appends the run must have produced (load really ran).
    #[serde(default)]
    pub min_acked: usize,
}

fn default_appenders() -> usize {
    4
}

fn default_gap() -> u64 {
    50
}

fn default_true() -> bool {
    true
}

impl Scenario {
    /// Parses a scenario file.
    pub fn from_file(path: &Path) -> Result<Self, ChaosError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ChaosError::Scenario {
            name: name.clone(),
            reason: error.to_string(),
        })?;
        let scenario: Scenario = toml::from_str(&text).map_err(|error| ChaosError::Scenario {
            name: name.clone(),
            reason: error.to_string(),
        })?;
        if scenario.faults.is_empty() {
            return Err(ChaosError::Scenario {
                name,
                reason: "lists no faults".to_owned(),
            });
        }
        Ok(scenario)
    }
}
