//! `[audit]`: durability and rotation of the audit log.

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::audit::FsyncPolicy;

/// Audit log settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// `always`, `batch` (group commit; default) or `never`. An append is
    /// acknowledged only once durable under this policy.
    pub fsync: FsyncPolicy,
    /// Most rows one group commit may carry. Default 512.
    pub batch_max: usize,
    /// Start a new log file once the current one passes this size. Default `64MiB`.
    pub rotate_bytes: ByteSize,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::Batch,
            batch_max: 512,
            rotate_bytes: ByteSize::mib(64),
        }
    }
}
