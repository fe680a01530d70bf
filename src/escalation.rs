//! Escalation: the pure building blocks a component's coordinator is made of.
//!
//! - [`ladder`]: the escalation ladder state machine (fix → tiers → final
//!   tier → exhausted), count-driven per cycle.
//! - [`fix`]: runs a fix action (`restart`, `command`, `http`) with a bound
//!   on time and output.
//! - [`tier`]: calls a `webhook` tier and parses its answer.
//! - [`history`]: the record of one incident's escalation cycle, carried by
//!   every tier call.
//! - [`patches`]: applies a tier's file patch atomically, records it in
//!   `patch_history.jsonl`, and reverts the last one.
//! - [`snapshot`]: the boot-time last-known-good copies restored when the
//!   ladder is exhausted.
//!
//! - `coordinator.rs` / `cycle.rs`: the `EscalationCoordinator` actor per
//!   component and the cycle task it owns, which call the blocks above.
//!
//! None of the building blocks holds an actor or a timer of its own: the coordinator
//! decides when to call them and records their outcomes in the audit log.

mod coordinator;
mod cycle;
pub mod fix;
pub mod history;
pub mod ladder;
pub mod patches;
pub mod snapshot;
pub mod tier;

pub use coordinator::{CoordinatorArgs, CoordinatorMsg, EscalationCoordinator};
pub use cycle::{CycleContext, CycleRecord, CycleStore, Signal, Trigger};
pub use fix::{FixOutcome, RestartHook, run_fix};
pub use history::{EscalationHistory, HistoryEntry, HistoryKind};
pub use ladder::{EscalationLadder, Step};
pub use patches::{FileChange, PatchEntry, PatchError, PatchHistory, RevertReport};
pub use snapshot::{RestoreReport, SnapshotError, SnapshotReport, Snapshots};
pub use tier::{TierAnswer, TierCall, TierStatus, call_webhook};

/// Milliseconds in `elapsed`, saturating.
fn millis(elapsed: std::time::Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// `text` cut to at most `max` bytes on a character boundary.
fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().to_owned()
}

/// Hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory (keeping the old file's permissions), fsync, rename, then fsync
/// of the directory so the rename survives a crash.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.warden-tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(dir) = std::fs::File::open(dir) {
            // Not every filesystem can fsync a directory; the rename is done.
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
