//! File patches proposed by tiers, and their history.
//!
//! A tier's `patch` has the form
//! `{"files": [{"path": "/abs/path", "content": "new text"}]}`.
//! [`PatchHistory::apply_patch`] writes each file atomically (temporary file
//! in the same directory, fsync, rename), recording the previous content of
//! each file (or that it did not exist) and the new content's sha256, as one
//! line of `state_dir/patch_history.jsonl`. If a write fails midway, the files
//! already written are put back and nothing is recorded.
//! [`PatchHistory::revert_last`] restores, byte for byte, the files of the
//! component's last patch that has not been reverted yet, and appends a
//! `reverted` line naming it.
//!
//! Old content is stored as text when it is valid UTF-8 and as hex otherwise
//! (`before_encoding`). A torn last line (a crash mid-append) is ignored and
//! truncated away when the history is opened, so later appends start on a
//! fresh line. The calls block on file I/O: run them from
//! `spawn_blocking` in async code.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{sha256_hex, write_atomic};

/// File name of the history inside the state directory.
pub const FILE_NAME: &str = "patch_history.jsonl";

/// Why a patch could not be applied or reverted.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch is not `{"files": [{"path", "content"}]}` with absolute paths.
    #[error("invalid patch: {0}")]
    Invalid(String),
    /// The component has no patch left to revert.
    #[error("component {0} has no patch to revert")]
    NothingToRevert(String),
    /// A recorded old content cannot be decoded.
    #[error("history entry {id} has undecodable content for {path}")]
    Corrupt {
        /// The entry.
        id: u64,
        /// The file.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An entry could not be encoded.
    #[error("cannot encode history entry: {0}")]
    Encode(#[from] serde_json::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PatchError + '_ {
    move |source| PatchError::Io {
        path: path.to_owned(),
        source,
    }
}

/// How [`FileChange::before`] is encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentEncoding {
    /// UTF-8 text, as is.
    #[default]
    Text,
    /// Hex of the raw bytes (the old content was not UTF-8).
    Hex,
}

/// One file a patch changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// The file.
    pub path: PathBuf,
    /// The old content; `None` when the file did not exist (a revert removes it).
    pub before: Option<String>,
    /// How `before` is encoded.
    #[serde(default)]
    pub before_encoding: ContentEncoding,
    /// sha256 (hex) of the content written.
    pub after_sha256: String,
}

impl FileChange {
    fn before_bytes(&self) -> Option<Option<Vec<u8>>> {
        match (&self.before, self.before_encoding) {
            (None, _) => Some(None),
            (Some(text), ContentEncoding::Text) => Some(Some(text.clone().into_bytes())),
            (Some(text), ContentEncoding::Hex) => hex::decode(text).ok().map(Some),
        }
    }
}

/// Whether an entry applied a patch or reverted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchAction {
    /// A tier's patch was written.
    Applied,
    /// The entry `reverts` was undone.
    Reverted,
}

/// One line of `patch_history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchEntry {
    /// Position in the history, from 1.
    pub id: u64,
    /// When, RFC 3339.
    pub at: String,
    /// The component patched.
    pub component: String,
    /// The tier that proposed the patch.
    pub tier: String,
    /// Applied or reverted.
    pub action: PatchAction,
    /// For `reverted`: the id of the entry undone.
    pub reverts: Option<u64>,
    /// The patch as the tier sent it (`null` for `reverted`).
    pub patch: serde_json::Value,
    /// The files changed, with what they held before.
    pub files: Vec<FileChange>,
}

/// What a revert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevertReport {
    /// The entry undone.
    pub reverted: u64,
    /// Files whose old content was written back.
    pub restored: Vec<PathBuf>,
    /// Files the patch created, now removed.
    pub removed: Vec<PathBuf>,
    /// Files that no longer held what the patch wrote (changed since); they
    /// are restored anyway.
    pub drifted: Vec<PathBuf>,
}

/// The patch history of one state directory.
#[derive(Debug, Clone)]
pub struct PatchHistory {
    path: PathBuf,
}

#[derive(Deserialize)]
struct PatchBody {
    files: Vec<PatchFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchFile {
    path: PathBuf,
    content: String,
}

impl PatchHistory {
    /// Opens (creating the directory if needed) `state_dir/patch_history.jsonl`,
    /// truncating a torn last line.
    pub fn open(state_dir: &Path) -> Result<Self, PatchError> {
        std::fs::create_dir_all(state_dir).map_err(io(state_dir))?;
        let path = state_dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                if keep < bytes.len() {
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io(&path))?;
                    file.set_len(keep as u64).map_err(io(&path))?;
                    file.sync_all().map_err(io(&path))?;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io(&path)(error)),
        }
        Ok(Self { path })
    }

    /// Every readable entry, oldest first. Unreadable lines are skipped.
    pub fn entries(&self) -> Result<Vec<PatchEntry>, PatchError> {
        let text = match std::fs::read(&self.path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io(&self.path)(error)),
        };
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    }

    /// Appends an `applied` entry for files already written.
    pub fn append(
        &self,
        component: &str,
        tier: &str,
        patch: serde_json::Value,
        applied_files: Vec<FileChange>,
    ) -> Result<PatchEntry, PatchError> {
        self.write_entry(
            component,
            tier,
            PatchAction::Applied,
            None,
            patch,
            applied_files,
        )
    }

    fn write_entry(
        &self,
        component: &str,
        tier: &str,
        action: PatchAction,
        reverts: Option<u64>,
        patch: serde_json::Value,
        files: Vec<FileChange>,
    ) -> Result<PatchEntry, PatchError> {
        let id = self
            .entries()?
            .iter()
            .map(|e| e.id)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let entry = PatchEntry {
            id,
            at: jiff::Timestamp::now().to_string(),
            component: component.to_owned(),
            tier: tier.to_owned(),
            action,
            reverts,
            patch,
            files,
        };
        let mut line = serde_json::to_vec(&entry)?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        file.write_all(&line).map_err(io(&self.path))?;
        file.sync_all().map_err(io(&self.path))?;
        Ok(entry)
    }

    /// The component's last `applied` entry that has not been reverted.
    pub fn last_for(&self, component: &str) -> Result<Option<PatchEntry>, PatchError> {
        let entries = self.entries()?;
        let reverted: BTreeSet<u64> = entries.iter().filter_map(|e| e.reverts).collect();
        Ok(entries.into_iter().rev().find(|e| {
            e.component == component
                && e.action == PatchAction::Applied
                && !reverted.contains(&e.id)
        }))
    }

    /// Writes the files of a tier's `patch` atomically and records the entry.
    pub fn apply_patch(
        &self,
        component: &str,
        tier: &str,
        patch: &serde_json::Value,
    ) -> Result<PatchEntry, PatchError> {
        let body: PatchBody = serde_json::from_value(patch.clone())
            .map_err(|e| PatchError::Invalid(e.to_string()))?;
        if body.files.is_empty() {
            return Err(PatchError::Invalid("no files".to_owned()));
        }
        for file in &body.files {
            if !file.path.is_absolute() {
                return Err(PatchError::Invalid(format!(
                    "{} is not an absolute path",
                    file.path.display()
                )));
            }
        }
        let mut changes: Vec<FileChange> = Vec::new();
        for file in &body.files {
            let before = match std::fs::read(&file.path) {
                Ok(bytes) => Some(bytes),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
                Err(error) => {
                    undo(&changes);
                    return Err(io(&file.path)(error));
                }
            };
            let (before, before_encoding) = encode(before);
            if let Err(error) = write_atomic(&file.path, file.content.as_bytes()) {
                undo(&changes);
                return Err(io(&file.path)(error));
            }
            changes.push(FileChange {
                path: file.path.clone(),
                before,
                before_encoding,
                after_sha256: sha256_hex(file.content.as_bytes()),
            });
        }
        match self.append(component, tier, patch.clone(), changes.clone()) {
            Ok(entry) => Ok(entry),
            Err(error) => {
                undo(&changes);
                Err(error)
            }
        }
    }

    /// Restores the files of the component's last non-reverted patch and
    /// records a `reverted` entry.
    pub fn revert_last(&self, component: &str) -> Result<RevertReport, PatchError> {
        let entry = self
            .last_for(component)?
            .ok_or_else(|| PatchError::NothingToRevert(component.to_owned()))?;
        let mut decoded = Vec::new();
        for change in &entry.files {
            let before = change.before_bytes().ok_or_else(|| PatchError::Corrupt {
                id: entry.id,
                path: change.path.clone(),
            })?;
            decoded.push((change, before));
        }
        let mut report = RevertReport {
            reverted: entry.id,
            restored: Vec::new(),
            removed: Vec::new(),
            drifted: Vec::new(),
        };
        let mut undone = Vec::new();
        // Last written first, so a file patched twice ends at its oldest content.
        for (change, before) in decoded.into_iter().rev() {
            let current = std::fs::read(&change.path).ok();
            if current.as_deref().map(sha256_hex).as_deref() != Some(change.after_sha256.as_str()) {
                report.drifted.push(change.path.clone());
            }
            let after_sha256 = before.as_deref().map(sha256_hex).unwrap_or_default();
            match before {
                Some(bytes) => {
                    write_atomic(&change.path, &bytes).map_err(io(&change.path))?;
                    report.restored.push(change.path.clone());
                }
                None => {
                    match std::fs::remove_file(&change.path) {
                        Ok(()) => {}
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                        Err(error) => return Err(io(&change.path)(error)),
                    }
                    report.removed.push(change.path.clone());
                }
            }
            let (before, before_encoding) = encode(current);
            undone.push(FileChange {
                path: change.path.clone(),
                before,
                before_encoding,
                after_sha256,
            });
        }
        self.write_entry(
            component,
            &entry.tier,
            PatchAction::Reverted,
            Some(entry.id),
            serde_json::Value::Null,
            undone,
        )?;
        Ok(report)
    }
}

fn encode(bytes: Option<Vec<u8>>) -> (Option<String>, ContentEncoding) {
    match bytes {
        None => (None, ContentEncoding::Text),
        Some(bytes) => match String::from_utf8(bytes) {
            Ok(text) => (Some(text), ContentEncoding::Text),
            Err(error) => (Some(hex::encode(error.into_bytes())), ContentEncoding::Hex),
        },
    }
}

/// Best effort: puts back files written by a patch that failed midway.
fn undo(changes: &[FileChange]) {
    for change in changes.iter().rev() {
        match change.before_bytes() {
            Some(Some(bytes)) => {
                let _ = write_atomic(&change.path, &bytes);
            }
            Some(None) => {
                let _ = std::fs::remove_file(&change.path);
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests;
