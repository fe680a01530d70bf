//! `[dr]`: where Warden keeps the DR epoch it last saw, outside the state
//! directory, so restoring the state directory from a backup is detected.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Disaster-recovery settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrSettings {
    /// File holding `{epoch, audit_high_water}` as last seen by this Warden.
    /// Must not be inside `service.state_dir`. Default:
    /// `<state_dir>/../warden-dr/known_epoch`.
    pub known_epoch_path: Option<PathBuf>,
}

impl DrSettings {
    /// The known-epoch file for `state_dir`.
    pub fn known_epoch_path(&self, state_dir: &Path) -> PathBuf {
        match &self.known_epoch_path {
            Some(path) => path.clone(),
            None => state_dir.join("..").join("warden-dr").join("known_epoch"),
        }
    }
}

/// `path` made absolute against the working directory, with `.` and `..`
/// resolved lexically (the files may not exist yet, so no canonicalize).
pub(crate) fn lexical(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
