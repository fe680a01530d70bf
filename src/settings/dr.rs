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
    /// `<parent of state_dir>/warden-dr/<state_dir's name>/known_epoch`.
    pub known_epoch_path: Option<PathBuf>,
}

impl DrSettings {
    /// The known-epoch file for `state_dir`.
    ///
    /// The default is named after the state dir, so two instances whose state
    /// dirs are siblings (`/srv/a`, `/srv/b`) keep separate known epochs: a
    /// shared file would make each one's first boot look like a restore of
    /// the other's.
    pub fn known_epoch_path(&self, state_dir: &Path) -> PathBuf {
        match &self.known_epoch_path {
            Some(path) => path.clone(),
            None => {
                let state_dir = lexical(state_dir);
                let name = state_dir
                    .file_name()
                    .map_or_else(|| "root".into(), |name| name.to_os_string());
                let parent = state_dir.parent().unwrap_or(Path::new("/"));
                parent.join("warden-dr").join(name).join("known_epoch")
            }
        }
    }

    /// Where releases before the per-state-dir default kept the known epoch
    /// (`<state_dir>/../warden-dr/known_epoch`), when the default is in use.
    /// Boot adopts it once if the new file is missing, so an upgrade is not
    /// mistaken for a restore.
    pub fn legacy_known_epoch_path(&self, state_dir: &Path) -> Option<PathBuf> {
        self.known_epoch_path
            .is_none()
            .then(|| lexical(&state_dir.join("..").join("warden-dr").join("known_epoch")))
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
