//! Escalation: the pure building blocks a component's coordinator is made of.
//!
//! - [`ladder`]: the escalation ladder state machine (fix → tiers → final
//!   tier → exhausted), count-driven per cycle.
//! - [`fix`]: runs a fix action (`restart`, `command`, `http`) with a bound
//!   on time and output.
//! - [`tier`]: calls a `webhook` tier and parses its answer.
//! - [`history`]: the record of one incident's escalation cycle, carried by
//!   every tier call.
//! - [`patches`]: checks a tier's file patch against the component's
//!   allow-list, applies it atomically, records it in `patch_history.jsonl`
//!   (digests only; old content in a private store), and reverts the last one.
//! - [`snapshot`]: the boot-time last-known-good copies restored when the
//!   ladder is exhausted.
//!
//! - `intake.rs`: the `EscalationIntake` actor, the subtree's one reader of
//!   the log (its cursor), handing each coordinator its component's issue rows;
//! - `coordinator.rs` / `cycle.rs`: the `EscalationCoordinator` actor per
//!   component and the cycle task it owns, which call the blocks above;
//! - `saved.rs`: what a coordinator saves under `<state_dir>/escalation/`.
//!
//! None of the building blocks holds an actor or a timer of its own: the coordinator
//! decides when to call them and records their outcomes in the audit log.

mod coordinator;
mod cycle;
pub mod fix;
pub mod history;
mod intake;
pub use intake::CURSOR_NAME;
pub mod ladder;
pub mod patches;
mod saved;
pub mod snapshot;
pub mod tier;

pub use coordinator::{CoordinatorArgs, CoordinatorMsg, EscalationCoordinator};
pub use cycle::{CycleContext, CycleRecord, CycleStore, Signal, Trigger, hold_reason};
pub use fix::{FixOutcome, RestartFailed, RestartHook, run_fix};
pub use history::{EscalationHistory, HistoryEntry, HistoryKind};
pub use intake::{EscalationIntake, IntakeArgs, IntakeMsg, Route};
pub use ladder::{EscalationLadder, Step};
pub use patches::{
    ContentRef, FileChange, PatchEntry, PatchError, PatchHistory, PatchPolicy, RevertReport,
};
pub use saved::{IssueView, SavedFile};
pub use snapshot::{RestoreReport, SnapshotError, SnapshotReport, Snapshots};
pub use tier::{TierAnswer, TierCall, TierStatus, call_webhook};

/// Milliseconds in `elapsed`, saturating.
fn millis(elapsed: std::time::Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

use crate::text::excerpt;

/// Hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
