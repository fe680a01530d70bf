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
    /// How long to keep running after the last fault before the world heals
    /// (time for what Warden does, or must not do, after the faults).
    #[serde(default)]
    pub hold_ms: u64,
    /// Faults to draw from, uniformly.
    pub faults: Vec<Fault>,
    /// Run Warden in this process (`in_process`, the default) or as the real
    /// binary (`process`, needed for `kill_process`).
    #[serde(default)]
    pub mode: Mode,
    /// The simulated targets and webhook receiver, if the scenario has them.
    #[serde(default)]
    pub world: Option<WorldSpec>,
    /// Warden configuration for the run (the `[warden]` table; state_dir and
    /// api_listen are always set by the harness).
    #[serde(default)]
    pub warden: toml::Table,
    /// What must hold at the end.
    #[serde(default = "Expect::none")]
    pub expect: Expect,
}

/// Where Warden runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `warden::app::start` inside the harness.
    #[default]
    InProcess,
    /// The `warden` binary as a child process.
    Process,
}

/// The simulated world: `targets` HTTP probes `t0..tN` against switchable
/// targets, grouped in one component `world`, and one webhook notifier
/// `chaos` to a receiver that counts notices by idempotency key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldSpec {
    /// How many targets (and probes).
    pub targets: usize,
    /// Probe interval, in milliseconds.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// Probe timeout, in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Consecutive failures that make an issue.
    #[serde(default = "default_threshold")]
    pub failure_threshold: u32,
    /// Whether the component's fix envelope is enabled (an HTTP call the
    /// world records). Off by default, as in Warden.
    #[serde(default)]
    pub fix: bool,
    /// The first `start_down` targets answer 503 from the start until the
    /// world heals at the end of the faults.
    #[serde(default)]
    pub start_down: usize,
    /// Use the world's investigator webhook (`investigator.kind = "webhook"`)
    /// instead of the built-in one.
    #[serde(default)]
    pub investigator: bool,
    /// Give the `world` component one escalation tier, a webhook to the world.
    #[serde(default)]
    pub tier: bool,
}

fn default_interval() -> u64 {
    200
}

fn default_timeout() -> u64 {
    150
}

fn default_threshold() -> u32 {
    2
}

/// Expectations beyond the invariants every scenario checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Exact number of root meltdowns (`service.meltdown` rows), when given.
    pub meltdowns: Option<usize>,
    /// Expected operational state at the end (`RUNNING`, `PAUSED`), when given.
    pub final_state: Option<String>,
    /// Fewest acknowledged appends the run must have produced (load really ran).
    #[serde(default)]
    pub min_acked: usize,
    /// Fewest calls the fix endpoint must have received (shows the fix
    /// envelope really runs when allowed).
    #[serde(default)]
    pub min_fixes: usize,
    /// Fewest calls the escalation tier must have received.
    #[serde(default)]
    pub min_tier_calls: usize,
    /// Every story reaches its decisions whatever was killed in its middle:
    /// each wake of the world's component is taken up by its escalation
    /// coordinator, and no story opens two incidents.
    #[serde(default)]
    pub stories_decided: bool,
    /// Highest resident memory allowed during the run, in MiB.
    #[serde(default = "default_rss")]
    pub max_rss_mib: u64,
    /// Highest audit queue depth and wake backlog allowed during the run.
    #[serde(default = "default_backlog")]
    pub max_backlog: u64,
}

impl Expect {
    fn none() -> Self {
        Self {
            meltdowns: None,
            final_state: None,
            min_acked: 0,
            min_fixes: 0,
            min_tier_calls: 0,
            stories_decided: false,
            max_rss_mib: default_rss(),
            max_backlog: default_backlog(),
        }
    }
}

fn default_rss() -> u64 {
    512
}

fn default_backlog() -> u64 {
    10_000
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
        for fault in &scenario.faults {
            let problem = match fault {
                Fault::KillProcess if scenario.mode != Mode::Process => {
                    Some("kill_process needs mode = \"process\"")
                }
                Fault::Target { .. } | Fault::Notifier { .. } if scenario.world.is_none() => {
                    Some("target and notifier faults need a [world]")
                }
                Fault::Investigator { .. }
                    if !scenario.world.as_ref().is_some_and(|w| w.investigator) =>
                {
                    Some("investigator faults need world.investigator = true")
                }
                Fault::Tier { .. } if !scenario.world.as_ref().is_some_and(|w| w.tier) => {
                    Some("tier faults need world.tier = true")
                }
                Fault::KillActor { target } | Fault::StopActor { target }
                    if target == "probe.*" && scenario.world.is_none() =>
                {
                    Some("probe.* needs a [world]")
                }
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(ChaosError::Scenario {
                    name,
                    reason: format!("{fault}: {problem}"),
                });
            }
        }
        if scenario.world.as_ref().is_some_and(|w| w.targets == 0) {
            return Err(ChaosError::Scenario {
                name,
                reason: "world.targets must be at least 1".to_owned(),
            });
        }
        Ok(scenario)
    }
}
