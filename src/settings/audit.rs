//! `[audit]`: durability and rotation of the audit log.

use std::time::Duration;

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
    /// Log files whose newest row is older than this are deleted, unless a
    /// consumer cursor has not read them yet; the file being written is
    /// always kept. Default `none`: kept forever.
    #[serde(with = "super::incidents::optional_duration")]
    pub retain_for: Option<Duration>,
    /// Oldest log files are deleted while the log is larger than this (with
    /// the same exceptions). At least `audit.rotate_bytes`. Default `none`:
    /// no size limit.
    #[serde(with = "optional_bytes")]
    pub retain_bytes: Option<ByteSize>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::Batch,
            batch_max: 512,
            rotate_bytes: ByteSize::mib(64),
            retain_for: None,
            retain_bytes: None,
        }
    }
}

/// `none` (or `off`) for no limit, else a size (`"1GiB"` or a byte count).
mod optional_bytes {
    use bytesize::ByteSize;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<ByteSize>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(size) => serializer.serialize_str(&size.to_string()),
            None => serializer.serialize_str("none"),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<ByteSize>, D::Error> {
        match Raw::deserialize(deserializer)? {
            Raw::Bytes(bytes) => Ok(Some(ByteSize::b(bytes))),
            Raw::Text(text) => match text.trim() {
                "none" | "off" => Ok(None),
                other => other
                    .parse::<ByteSize>()
                    .map(Some)
                    .map_err(|error| serde::de::Error::custom(format!("{other:?}: {error}"))),
            },
        }
    }
}
