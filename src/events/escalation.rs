//! The escalation seams: what a component's coordinator (and, for
//! `escalation.action_started`, a managed process's restart ladder) writes
//! while it climbs its ladder. Every one names its `component`.
//!
//! Fields that only some steps have are optional and left out when absent.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Event;
use crate::metrics::Metrics;

fn skip<T>(value: &Option<T>) -> bool {
    value.is_none()
}

/// A step was held (paused, frozen) or an action could not start:
/// `escalation.step_skipped`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSkipped {
    /// The component.
    pub component: String,
    /// Why.
    pub reason: String,
    /// True: the cycle waits on the same rung; false: the action was dropped.
    #[serde(default)]
    pub waiting: bool,
    /// The action that did not start (`patch`).
    #[serde(default, skip_serializing_if = "skip")]
    pub action: Option<String>,
    /// The tier it came from.
    #[serde(default, skip_serializing_if = "skip")]
    pub tier: Option<String>,
}

impl Event for StepSkipped {
    const SEAMS: &'static [&'static str] = &["escalation.step_skipped"];
}

/// An action is about to run; written (under the audit queue's lock) only
/// if nothing holds automation: `escalation.action_started`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionStarted {
    /// The component.
    pub component: String,
    /// `fix`, `tier`, `patch`, `rollback` or `restart`.
    pub action: String,
    /// Who started it: `managed` for a restart ladder; absent for the coordinator.
    #[serde(default, skip_serializing_if = "skip")]
    pub source: Option<String>,
    /// The attempt on the rung.
    #[serde(default, skip_serializing_if = "skip")]
    pub attempt: Option<u32>,
    /// The fix action's or the tier's kind.
    #[serde(default, skip_serializing_if = "skip")]
    pub kind: Option<String>,
    /// The tier.
    #[serde(default, skip_serializing_if = "skip")]
    pub tier: Option<String>,
    /// Rollback and restart: whether a managed process is restarted.
    #[serde(default, skip_serializing_if = "skip")]
    pub managed_restart: Option<bool>,
}

impl Event for ActionStarted {
    const SEAMS: &'static [&'static str] = &["escalation.action_started"];
}

/// The cycle is over: `escalation.cycle_ended`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CycleEnded {
    /// The component.
    pub component: String,
    /// `healed`, `resolved`, ...
    pub outcome: String,
    /// The rung that healed it.
    #[serde(default)]
    pub healed_by: Option<String>,
    /// Steps taken.
    #[serde(default)]
    pub attempts: u32,
}

impl Event for CycleEnded {
    const SEAMS: &'static [&'static str] = &["escalation.cycle_ended"];
}

/// The fix envelope's step: `escalation.fix_attempted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixAttempted {
    /// The component.
    pub component: String,
    /// The attempt on the rung.
    pub attempt: u32,
    /// The action's kind (`restart`, `command`, `http`).
    #[serde(default)]
    pub action: Option<String>,
    /// `skipped`, `succeeded` or `failed`.
    pub outcome: String,
    /// Why it was skipped.
    #[serde(default, skip_serializing_if = "skip")]
    pub reason: Option<String>,
    /// Seq of its `escalation.action_started` row.
    #[serde(default, skip_serializing_if = "skip")]
    pub started_seq: Option<u64>,
    /// How long it ran.
    #[serde(default, skip_serializing_if = "skip")]
    pub duration_ms: Option<u64>,
    /// The start of its output.
    #[serde(default, skip_serializing_if = "skip")]
    pub output_excerpt: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "skip")]
    pub error: Option<String>,
}

impl Event for FixAttempted {
    const SEAMS: &'static [&'static str] = &["escalation.fix_attempted"];

    fn count(&self, metrics: &Metrics) {
        metrics.escalation(&self.component, "fix", &self.outcome);
    }
}

/// After a fix or a tier that claimed success, were the probes healthy:
/// `escalation.verified`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verified {
    /// The component.
    pub component: String,
    /// `fix` or the tier's name.
    pub after: String,
    /// The attempt on the rung.
    pub attempt: u32,
    /// Whether every probe was healthy within the verification window.
    pub healthy: bool,
    /// What the tier claimed (`fixed`, `in_progress`).
    #[serde(default, skip_serializing_if = "skip")]
    pub claimed: Option<String>,
}

impl Event for Verified {
    const SEAMS: &'static [&'static str] = &["escalation.verified"];
}

/// A tier was called, paged through, or skipped: `escalation.tier_called`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierCalled {
    /// The component.
    pub component: String,
    /// The tier.
    pub tier: String,
    /// `webhook` or `notifier`; absent when skipped.
    #[serde(default, skip_serializing_if = "skip")]
    pub kind: Option<String>,
    /// The notifier a `notifier` tier pages through.
    #[serde(default, skip_serializing_if = "skip")]
    pub notifier: Option<String>,
    /// The attempt on the rung.
    pub attempt: u32,
    /// `skipped`, `paging`, or the webhook's answer (`fixed`, `rejected`,
    /// `in_progress`, `failed`).
    pub outcome: String,
    /// Why it was skipped.
    #[serde(default, skip_serializing_if = "skip")]
    pub reason: Option<String>,
    /// Seq of its `escalation.action_started` row.
    #[serde(default, skip_serializing_if = "skip")]
    pub started_seq: Option<u64>,
    /// The webhook's notes.
    #[serde(default, skip_serializing_if = "skip")]
    pub notes: Option<String>,
    /// The webhook's HTTP status.
    #[serde(default, skip_serializing_if = "skip")]
    pub http_status: Option<u16>,
    /// Why the call failed.
    #[serde(default, skip_serializing_if = "skip")]
    pub error: Option<String>,
    /// How long the call took.
    #[serde(default, skip_serializing_if = "skip")]
    pub duration_ms: Option<u64>,
    /// History entries forwarded to the tier.
    #[serde(default, skip_serializing_if = "skip")]
    pub context_entries: Option<usize>,
}

impl Event for TierCalled {
    const SEAMS: &'static [&'static str] = &["escalation.tier_called"];

    fn count(&self, metrics: &Metrics) {
        metrics.escalation(&self.component, &self.tier, &self.outcome);
    }
}

/// A tier's patch was written (or writing it failed part-way):
/// `escalation.patch_applied`. Paths, sizes and digests; never content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchApplied {
    /// The component.
    pub component: String,
    /// The tier that sent it.
    pub tier: String,
    /// Whether every file was written.
    pub applied: bool,
    /// Seq of its `escalation.action_started` row.
    pub started_seq: u64,
    /// The patch history entry (for revert), when applied.
    #[serde(default, skip_serializing_if = "skip")]
    pub entry: Option<u64>,
    /// sha256 of the patch.
    pub digest: String,
    /// Per file: path, and size and digest before and after.
    pub files: Value,
    /// Why writing failed.
    #[serde(default, skip_serializing_if = "skip")]
    pub error: Option<String>,
}

impl Event for PatchApplied {
    const SEAMS: &'static [&'static str] = &["escalation.patch_applied"];
}

/// A tier's patch was refused before anything was written:
/// `escalation.patch_rejected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchRejected {
    /// The component.
    pub component: String,
    /// The tier that sent it.
    pub tier: String,
    /// Seq of its `escalation.action_started` row.
    pub started_seq: u64,
    /// sha256 of the patch.
    pub digest: String,
    /// Per file: path and size (what was asked for).
    pub files: Value,
    /// Why (outside `patch.paths`, through a symlink, too large, applied already).
    pub reason: String,
}

impl Event for PatchRejected {
    const SEAMS: &'static [&'static str] = &["escalation.patch_rejected"];
}

/// The operator is warned that the ladder is climbing:
/// `escalation.warning`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// The component.
    pub component: String,
    /// Steps so far.
    pub attempts: u32,
    /// `warning_threshold`.
    pub threshold: u32,
}

impl Event for Warning {
    const SEAMS: &'static [&'static str] = &["escalation.warning"];
}

/// The ladder was exhausted twice in a row: `escalation.automation_stopped`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutomationStopped {
    /// The component.
    pub component: String,
    /// Exhaustions in a row.
    pub exhaustions_in_row: u32,
    /// The escalation history (what was tried).
    pub history: Value,
}

impl Event for AutomationStopped {
    const SEAMS: &'static [&'static str] = &["escalation.automation_stopped"];

    fn count(&self, metrics: &Metrics) {
        metrics.escalation(&self.component, "rollback", "automation_stopped");
    }
}

/// The ladder was exhausted and the snapshot restored:
/// `escalation.rolled_back`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolledBack {
    /// The component.
    pub component: String,
    /// `restored`, `missing`, `taken_at`, or `error`.
    pub restored: Value,
    /// The managed restart's outcome, if there is a managed process.
    #[serde(default)]
    pub restarted: Option<String>,
    /// Seq of its `escalation.action_started` row.
    #[serde(default)]
    pub started_seq: Option<u64>,
    /// The escalation history.
    pub history: Value,
}

impl Event for RolledBack {
    const SEAMS: &'static [&'static str] = &["escalation.rolled_back"];

    fn count(&self, metrics: &Metrics) {
        metrics.escalation(&self.component, "rollback", "rolled_back");
    }
}

/// The ladder was exhausted with nothing snapshotted: `escalation.exhausted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exhausted {
    /// The component.
    pub component: String,
    /// Always false: nothing was restored.
    pub rolled_back: bool,
    /// Why not.
    pub reason: String,
    /// The managed restart's outcome, if there is a managed process.
    #[serde(default)]
    pub restarted: Option<String>,
    /// Seq of the restart's `escalation.action_started` row.
    #[serde(default)]
    pub started_seq: Option<u64>,
    /// The escalation history.
    pub history: Value,
}

impl Event for Exhausted {
    const SEAMS: &'static [&'static str] = &["escalation.exhausted"];

    fn count(&self, metrics: &Metrics) {
        metrics.escalation(&self.component, "rollback", "nothing_to_roll_back");
    }
}
