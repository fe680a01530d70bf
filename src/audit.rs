//! The audit log: Warden's append-only source of truth (being built).

use serde::{Deserialize, Serialize};

/// When an appended row counts as durable, and therefore when the append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// `fsync` after every row, one at a time.
    Always,
    /// Group commit: one write + `fsync` covers every row queued while the previous sync ran.
    #[default]
    Batch,
    /// Never `fsync`; acknowledged once the row reached the OS page cache.
    Never,
}
