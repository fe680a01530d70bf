//! Last-known-good snapshots, restored when the ladder is exhausted.
//!
//! [`Snapshots::take`] copies a component's `rollback.snapshot` files into
//! `state_dir/snapshots/<component>/` (0700, copies 0600) with a
//! `manifest.json` (original path, size, sha256; a file missing at boot is
//! recorded as missing, not an error). A path that is, or goes through, a
//! symbolic link is not followed: it is recorded as refused and never copied,
//! so a link planted in a watched directory cannot pull another file (a
//! root-only secret) into the snapshot. Take it **at boot only**, before any fix or tier has run: it is
//! the last-known-*good* state, so it must never capture a broken one. Each
//! Warden process takes it at most once per component (the manifest carries
//! the process's boot id; a second call in the same boot is a no-op), and a
//! new boot overwrites the previous boot's copy. The new copy is built in a
//! temporary directory and swapped in, so a crash mid-take keeps the old one.
//!
//! [`Snapshots::restore`] verifies each copy's sha256, refuses to restore
//! through a path that has become a symbolic link, writes each copy back
//! byte for byte ([`crate::files::write_atomic`]) and verifies the result.
//! Files that were missing or refused at boot are left alone (Warden does not delete files it
//! never saw). [`snapshot_config`] and [`restore_config`] keep Warden's own
//! configuration in `state_dir/snapshots/_warden/config.toml`. A rollback of
//! it never touches the operator's `--config` file: [`record_rollback`] keeps
//! the rejected text and its digest next to the known-good copy, and a boot
//! whose `--config` still holds that text boots from the copy instead
//! ([`rolled_back_from`]). The calls block on file I/O: run them from
//! `spawn_blocking` in async code.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::sha256_hex;
use crate::files::{create_private_dir_all, read_nofollow, refuse_symlinks, write_atomic};

/// Directory under the state directory holding every snapshot.
pub const DIR_NAME: &str = "snapshots";

/// Reserved directory for Warden's own configuration.
pub const WARDEN_DIR: &str = "_warden";

/// File name of a snapshot's manifest.
pub const MANIFEST: &str = "manifest.json";

/// Why a snapshot could not be taken or restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The component name cannot name a directory safely.
    #[error("component name \"{0}\" cannot be used for a snapshot")]
    BadComponent(String),
    /// There is no snapshot to restore.
    #[error("no snapshot for {0}")]
    Missing(String),
    /// A copy does not match its manifest (the state dir is damaged).
    #[error("snapshot copy of {0} does not match its sha256")]
    Corrupt(PathBuf),
    /// The manifest cannot be read or written.
    #[error("snapshot manifest {path}: {source}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// The error.
        source: serde_json::Error,
    },
    /// A path to restore goes through a symbolic link.
    #[error("will not restore through a symbolic link: {0}")]
    Symlink(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One file in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Where the file lives.
    pub original: PathBuf,
    /// The copy's name inside the snapshot directory; `None` if missing at boot.
    pub copy: Option<String>,
    /// Size in bytes (0 when missing).
    pub size: u64,
    /// sha256 (hex); `None` when missing.
    pub sha256: Option<String>,
    /// Why the file was not copied although it exists (a symbolic link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The component.
    pub component: String,
    /// The Warden process that took it.
    pub boot_id: String,
    /// When, RFC 3339.
    pub taken_at: String,
    /// The files, in the configured order.
    pub files: Vec<ManifestFile>,
}

/// What [`Snapshots::take`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotReport {
    /// The snapshot directory.
    pub dir: PathBuf,
    /// Files copied.
    pub copied: Vec<PathBuf>,
    /// Files missing at boot, recorded as missing.
    pub missing: Vec<PathBuf>,
    /// Files not copied because the path is or goes through a symbolic link.
    pub refused: Vec<PathBuf>,
    /// True when this boot had already taken it: nothing was copied again.
    pub already_taken: bool,
}

/// What [`Snapshots::restore`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Files written back and verified.
    pub restored: Vec<PathBuf>,
    /// Files missing at boot, left alone.
    pub missing: Vec<PathBuf>,
    /// When the snapshot was taken.
    pub taken_at: String,
}

/// Snapshot operations over a state directory.
#[derive(Debug, Clone, Copy)]
pub struct Snapshots;

/// This process's boot id: a snapshot is taken once per boot.
fn boot_id() -> &'static str {
    static BOOT: OnceLock<String> = OnceLock::new();
    BOOT.get_or_init(|| format!("{}-{}", std::process::id(), jiff::Timestamp::now()))
}

fn component_dir(state_dir: &Path, component: &str) -> Result<PathBuf, SnapshotError> {
    let safe = !component.is_empty()
        && component != "."
        && component != ".."
        && component != WARDEN_DIR
        && !component.starts_with('.')
        && !component.contains(['/', '\\', '\0']);
    if !safe {
        return Err(SnapshotError::BadComponent(component.to_owned()));
    }
    Ok(state_dir.join(DIR_NAME).join(component))
}

fn read_manifest(dir: &Path) -> Result<Option<Manifest>, SnapshotError> {
    let path = dir.join(MANIFEST);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| SnapshotError::Manifest { path, source }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io(&path)(error)),
    }
}

impl Snapshots {
    /// Copies `paths` into `state_dir/snapshots/<component>/`, once per boot.
    pub fn take(
        state_dir: &Path,
        component: &str,
        paths: &[PathBuf],
    ) -> Result<SnapshotReport, SnapshotError> {
        let dir = component_dir(state_dir, component)?;
        if let Ok(Some(manifest)) = read_manifest(&dir)
            && manifest.boot_id == boot_id()
        {
            let originals = |keep: &dyn Fn(&ManifestFile) -> bool| -> Vec<PathBuf> {
                manifest
                    .files
                    .iter()
                    .filter(|f| keep(f))
                    .map(|f| f.original.clone())
                    .collect()
            };
            return Ok(SnapshotReport {
                copied: originals(&|f| f.copy.is_some()),
                missing: originals(&|f| f.copy.is_none() && f.refused.is_none()),
                refused: originals(&|f| f.refused.is_some()),
                dir,
                already_taken: true,
            });
        }
        let root = state_dir.join(DIR_NAME);
        let tmp = root.join(format!(".{component}.tmp"));
        let old = root.join(format!(".{component}.old"));
        for stale in [&tmp, &old] {
            match std::fs::remove_dir_all(stale) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(io(stale)(error)),
            }
        }
        create_private_dir_all(&tmp).map_err(io(&tmp))?;
        let mut files = Vec::new();
        let mut report = SnapshotReport {
            dir: dir.clone(),
            copied: Vec::new(),
            missing: Vec::new(),
            refused: Vec::new(),
            already_taken: false,
        };
        for (index, original) in paths.iter().enumerate() {
            let not_copied = |refused: Option<String>| ManifestFile {
                original: original.clone(),
                copy: None,
                size: 0,
                sha256: None,
                refused,
            };
            let bytes = match read_nofollow(original) {
                Ok(bytes) => bytes,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    files.push(not_copied(None));
                    report.missing.push(original.clone());
                    continue;
                }
                Err(error) if refuse_symlinks(original).is_err() => {
                    tracing::warn!(path = %original.display(), error = %error, "A rollback.snapshot path goes through a symbolic link; it is not copied.");
                    files.push(not_copied(Some(error.to_string())));
                    report.refused.push(original.clone());
                    continue;
                }
                Err(error) => return Err(io(original)(error)),
            };
            let base = original
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file".to_owned());
            let copy = format!("{index}-{base}");
            let target = tmp.join(&copy);
            write_atomic(&target, &bytes).map_err(io(&target))?;
            files.push(ManifestFile {
                original: original.clone(),
                copy: Some(copy),
                size: bytes.len() as u64,
                sha256: Some(sha256_hex(&bytes)),
                refused: None,
            });
            report.copied.push(original.clone());
        }
        let manifest = Manifest {
            component: component.to_owned(),
            boot_id: boot_id().to_owned(),
            taken_at: jiff::Timestamp::now().to_string(),
            files,
        };
        let manifest_path = tmp.join(MANIFEST);
        let text =
            serde_json::to_vec_pretty(&manifest).map_err(|source| SnapshotError::Manifest {
                path: manifest_path.clone(),
                source,
            })?;
        write_atomic(&manifest_path, &text).map_err(io(&manifest_path))?;
        // Swap: the previous snapshot stays whole until the new one is in place.
        if dir.exists() {
            std::fs::rename(&dir, &old).map_err(io(&dir))?;
        }
        std::fs::rename(&tmp, &dir).map_err(io(&dir))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(report)
    }

    /// Writes every copied file back to its original path, byte for byte.
    pub fn restore(state_dir: &Path, component: &str) -> Result<RestoreReport, SnapshotError> {
        let dir = component_dir(state_dir, component)?;
        let manifest =
            read_manifest(&dir)?.ok_or_else(|| SnapshotError::Missing(component.to_owned()))?;
        // Verify every copy first, so a damaged snapshot restores nothing.
        let mut plan = Vec::new();
        let mut missing = Vec::new();
        for file in &manifest.files {
            let (Some(copy), Some(sha)) = (&file.copy, &file.sha256) else {
                missing.push(file.original.clone());
                continue;
            };
            let path = dir.join(copy);
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            if &sha256_hex(&bytes) != sha {
                return Err(SnapshotError::Corrupt(file.original.clone()));
            }
            refuse_symlinks(&file.original)
                .map_err(|error| SnapshotError::Symlink(error.to_string()))?;
            plan.push((file.original.clone(), bytes, sha));
        }
        let mut restored = Vec::new();
        for (original, bytes, sha) in plan {
            if let Some(parent) = original.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            write_atomic(&original, &bytes).map_err(io(&original))?;
            let written = std::fs::read(&original).map_err(io(&original))?;
            if &sha256_hex(&written) != sha {
                return Err(SnapshotError::Corrupt(original));
            }
            restored.push(original);
        }
        Ok(RestoreReport {
            restored,
            missing,
            taken_at: manifest.taken_at,
        })
    }
}

/// Path of Warden's own configuration snapshot.
pub fn config_snapshot_path(state_dir: &Path) -> PathBuf {
    state_dir
        .join(DIR_NAME)
        .join(WARDEN_DIR)
        .join("config.toml")
}

/// Keeps `config_text` (a configuration that passed validation) as the
/// last-known-good one, its inline secrets redacted
/// ([`seal_config_text`](crate::settings::seal_config_text); a rollback
/// takes them from the configuration it replaces). Returns where it was written.
pub fn snapshot_config(state_dir: &Path, config_text: &str) -> Result<PathBuf, SnapshotError> {
    let path = config_snapshot_path(state_dir);
    if let Some(parent) = path.parent() {
        create_private_dir_all(parent).map_err(io(parent))?;
    }
    let sealed = crate::settings::seal_config_text(config_text);
    write_atomic(&path, sealed.as_bytes()).map_err(io(&path))?;
    Ok(path)
}

/// The last-known-good configuration text.
pub fn restore_config(state_dir: &Path) -> Result<String, SnapshotError> {
    let path = config_snapshot_path(state_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Err(SnapshotError::Missing(WARDEN_DIR.to_owned()))
        }
        Err(error) => Err(io(&path)(error)),
    }
}

#[cfg(test)]
mod tests;

/// A rollback of Warden's own configuration, kept in
/// `state_dir/snapshots/_warden/rollback.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRollback {
    /// `sha256:<hex>` of the configuration that melted the tree down.
    pub rejected_digest: String,
    /// `sha256:<hex>` of the last-known-good configuration put in force.
    pub known_good_digest: String,
    /// When, RFC 3339.
    pub at: String,
}

/// `sha256:<hex>` of a configuration text.
pub fn config_digest(text: &str) -> String {
    format!("sha256:{}", sha256_hex(text.as_bytes()))
}

/// Path of the rollback record.
pub fn rollback_record_path(state_dir: &Path) -> PathBuf {
    config_snapshot_path(state_dir).with_file_name("rollback.json")
}

/// Path of the copy of the rejected configuration.
pub fn rejected_config_path(state_dir: &Path) -> PathBuf {
    config_snapshot_path(state_dir).with_file_name("rejected.toml")
}

/// Records that `rejected` was rolled back to `good`: a copy of the rejected
/// text and the record, both in the state dir. The operator's file is left
/// as it is.
pub fn record_rollback(
    state_dir: &Path,
    rejected: &str,
    good: &str,
) -> Result<ConfigRollback, SnapshotError> {
    let record = ConfigRollback {
        rejected_digest: config_digest(rejected),
        known_good_digest: config_digest(good),
        at: jiff::Timestamp::now().to_string(),
    };
    let copy = rejected_config_path(state_dir);
    if let Some(parent) = copy.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    // Kept for the operator to compare, with its inline secrets redacted
    // like every other copy of a configuration in the state dir.
    let sealed = crate::settings::seal_config_text(rejected);
    write_atomic(&copy, sealed.as_bytes()).map_err(io(&copy))?;
    let path = rollback_record_path(state_dir);
    let text = serde_json::to_vec_pretty(&record).map_err(|source| SnapshotError::Manifest {
        path: path.clone(),
        source,
    })?;
    write_atomic(&path, &text).map_err(io(&path))?;
    Ok(record)
}

/// The rollback that set `operator_text` aside, if that exact text was
/// rolled back and the known-good copy it was replaced by is still there.
/// A changed file (any other digest) is the operator's next attempt and is
/// booted as usual.
pub fn rolled_back_from(
    state_dir: &Path,
    operator_text: &str,
) -> Result<Option<(ConfigRollback, String)>, SnapshotError> {
    let path = rollback_record_path(state_dir);
    let record: ConfigRollback = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|source| SnapshotError::Manifest { path, source })?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io(&path)(error)),
    };
    if record.rejected_digest != config_digest(operator_text) {
        return Ok(None);
    }
    // The copy may have moved on since (a later configuration proved good);
    // the operator's text is still the rejected one, so it stays set aside.
    match restore_config(state_dir) {
        // The copy's inline secrets are redacted; they come back from the
        // operator's text, as on the in-process rollback.
        Ok(good) => Ok(Some((
            record,
            crate::settings::unseal_config_text(&good, operator_text),
        ))),
        Err(SnapshotError::Missing(_)) => Ok(None),
        Err(error) => Err(error),
    }
}
