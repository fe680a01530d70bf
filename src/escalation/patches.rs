//! File patches proposed by tiers, the allow-list they must pass, and their
//! history.
//!
//! A tier's `patch` has the form
//! `{"files": [{"path": "/abs/path", "content": "new text"}]}`. A tier is a
//! remote endpoint, so its patch is refused as a whole, before anything is
//! written, unless every file passes the component's [`PatchPolicy`]
//! (`components[].patch`): the path matches one of `patch.paths` (none
//! configured: patching is off), neither the file nor any directory above it
//! is a symbolic link, and the content of all files together fits in
//! `patch.max_bytes`.
//!
//! [`PatchHistory::apply_patch`] keeps the previous content of each file in
//! the private content store `state_dir/patches/<sha256>` (0600, named by
//! the content's sha256) before writing the new content atomically, then
//! appends one line to `state_dir/patch_history.jsonl`. That line, like the
//! audit rows and API answers built from it, holds paths, sizes and sha256
//! digests only, never content. If a write fails midway the files already
//! written are put back and nothing is recorded. [`PatchHistory::revert_last`]
//! restores, byte for byte and verified against the digest, the files of the
//! component's last patch that has not been reverted yet, and appends a
//! `reverted` line naming it.
//!
//! A torn last line (a crash mid-append) is ignored and truncated away when
//! the history is opened, so later appends start on a fresh line. Lines of
//! the older format that held content inline are not read. The calls block
//! on file I/O: run them from `spawn_blocking` in async code.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::sha256_hex;
use crate::files::{
    create_private_dir_all, open_private_append, read_nofollow, refuse_symlinks, write_atomic,
    write_atomic_nofollow,
};
use crate::settings::PatchSettings;

/// File name of the history inside the state directory.
pub const FILE_NAME: &str = "patch_history.jsonl";

/// Directory of the content store inside the state directory.
pub const CONTENT_DIR: &str = "patches";

/// Why a patch could not be applied or reverted.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch is not `{"files": [{"path", "content"}]}` with absolute paths.
    #[error("invalid patch: {0}")]
    Invalid(String),
    /// The component's `patch` settings do not allow it.
    #[error("patch refused: {0}")]
    Refused(String),
    /// The component has no patch left to revert.
    #[error("component {0} has no patch to revert")]
    NothingToRevert(String),
    /// A recorded old content is missing from the store or does not match its digest.
    #[error("history entry {id} has no intact old content for {path}")]
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

/// A write refused because the path went through a symbolic link is a
/// refusal (nothing was written), not an I/O failure.
fn refused_or_io(path: &Path, error: std::io::Error) -> PatchError {
    if error.kind() == std::io::ErrorKind::InvalidInput {
        PatchError::Refused(format!("{}: {error}", path.display()))
    } else {
        io(path)(error)
    }
}

/// A compiled glob for `patch.paths`: absolute, without `..`, and `*` does
/// not cross a `/` (use `**` for that).
pub fn glob(pattern: &str) -> Result<globset::Glob, String> {
    if !pattern.starts_with('/') {
        return Err(format!("\"{pattern}\" must be an absolute path glob"));
    }
    if pattern.split('/').any(|part| part == "..") {
        return Err(format!("\"{pattern}\" must not contain \"..\""));
    }
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|error| format!("\"{pattern}\" is not a valid glob: {}", error.kind()))
}

/// Where a component's patches may write, and how much.
#[derive(Debug, Clone)]
pub struct PatchPolicy {
    globs: globset::GlobSet,
    empty: bool,
    max_bytes: u64,
}

impl PatchPolicy {
    /// Compiles `components[].patch` (validated at load, so errors here mean
    /// a settings value built in code).
    pub fn new(settings: &PatchSettings) -> Result<Self, PatchError> {
        let mut builder = globset::GlobSetBuilder::new();
        for pattern in &settings.paths {
            builder.add(glob(pattern).map_err(PatchError::Invalid)?);
        }
        Ok(Self {
            globs: builder
                .build()
                .map_err(|error| PatchError::Invalid(error.to_string()))?,
            empty: settings.paths.is_empty(),
            max_bytes: settings.max_bytes.as_u64(),
        })
    }

    /// Why `patch` may not be written, if it may not.
    fn refuse(&self, patch: &PatchBody) -> Option<String> {
        if self.empty {
            return Some("patching is off: the component's patch.paths is empty".to_owned());
        }
        let total: u64 = patch.files.iter().map(|f| f.content.len() as u64).sum();
        if total > self.max_bytes {
            return Some(format!(
                "the patch writes {total} bytes, over patch.max_bytes ({})",
                self.max_bytes
            ));
        }
        for file in &patch.files {
            if !self.globs.is_match(&file.path) {
                return Some(format!(
                    "{} matches none of the component's patch.paths",
                    file.path.display()
                ));
            }
            if let Err(error) = refuse_symlinks(&file.path) {
                return Some(format!("{}: {error}", file.path.display()));
            }
            if std::fs::symlink_metadata(&file.path).is_ok_and(|meta| !meta.is_file()) {
                return Some(format!("{} is not a regular file", file.path.display()));
            }
        }
        None
    }
}

/// The size and sha256 of some content: what rows and answers carry instead of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentRef {
    /// Bytes.
    pub size: u64,
    /// sha256, hex.
    pub sha256: String,
}

impl ContentRef {
    /// The reference of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            size: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        }
    }
}

/// One file a patch (or a revert) changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// The file.
    pub path: PathBuf,
    /// What it held before; `None` when it did not exist (a revert removes it).
    pub before: Option<ContentRef>,
    /// What it holds after; `None` when the change removed it.
    pub after: Option<ContentRef>,
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
    /// For `applied`: the [`digest`] of the patch as the tier sent it.
    pub digest: Option<String>,
    /// The files changed.
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
    /// are restored anyway, and what they held is kept in the content store.
    pub drifted: Vec<PathBuf>,
}

/// The sha256 of a patch as a tier sent it: the key of "applied at most once
/// per cycle".
pub fn digest(patch: &serde_json::Value) -> String {
    // serde_json's map is ordered by key, so equal patches encode equally.
    sha256_hex(&serde_json::to_vec(patch).unwrap_or_default())
}

/// Path, size and sha256 of each file a patch would write, for a row that
/// must not carry the content. `null` when the patch does not parse.
pub fn describe(patch: &serde_json::Value) -> serde_json::Value {
    match serde_json::from_value::<PatchBody>(patch.clone()) {
        Ok(body) => body
            .files
            .iter()
            .map(|file| {
                let content = ContentRef::of(file.content.as_bytes());
                serde_json::json!({ "path": file.path, "size": content.size, "sha256": content.sha256 })
            })
            .collect(),
        Err(_) => serde_json::Value::Null,
    }
}

/// The patch history of one state directory.
#[derive(Debug, Clone)]
pub struct PatchHistory {
    path: PathBuf,
    store: PathBuf,
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

fn parse(patch: &serde_json::Value) -> Result<PatchBody, PatchError> {
    let body: PatchBody =
        serde_json::from_value(patch.clone()).map_err(|e| PatchError::Invalid(e.to_string()))?;
    if body.files.is_empty() {
        return Err(PatchError::Invalid("no files".to_owned()));
    }
    for file in &body.files {
        let plain = file.path.components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        });
        // Spelled as its components rebuild it (no `//`, `/./` or trailing
        // `/`), so the glob sees the path that is written.
        let canonical =
            file.path.components().collect::<PathBuf>().as_os_str() == file.path.as_os_str();
        if !file.path.is_absolute() || !plain || !canonical {
            return Err(PatchError::Invalid(format!(
                "{} is not a plain absolute path",
                file.path.display()
            )));
        }
    }
    Ok(body)
}

/// Reads `path` without following a symlink; `None` when it does not exist.
fn read_current(path: &Path) -> Result<Option<Vec<u8>>, PatchError> {
    match read_nofollow(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io(path)(error)),
    }
}

impl PatchHistory {
    /// Opens (creating the directories if needed) `state_dir/patch_history.jsonl`
    /// and the content store, truncating a torn last line.
    pub fn open(state_dir: &Path) -> Result<Self, PatchError> {
        create_private_dir_all(state_dir).map_err(io(state_dir))?;
        let store = state_dir.join(CONTENT_DIR);
        create_private_dir_all(&store).map_err(io(&store))?;
        let path = state_dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                if keep < bytes.len() {
                    let file = open_private_append(&path).map_err(io(&path))?;
                    file.set_len(keep as u64).map_err(io(&path))?;
                    file.sync_all().map_err(io(&path))?;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io(&path)(error)),
        }
        Ok(Self { path, store })
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

    /// Keeps `bytes` in the content store (0600, named by its sha256).
    fn keep(&self, bytes: &[u8]) -> Result<ContentRef, PatchError> {
        let content = ContentRef::of(bytes);
        let path = self.store.join(&content.sha256);
        let intact = read_current(&path)?.is_some_and(|old| sha256_hex(&old) == content.sha256);
        if !intact {
            write_atomic(&path, bytes).map_err(io(&path))?;
        }
        Ok(content)
    }

    /// The stored content of `content`, verified against its digest.
    fn load(&self, content: &ContentRef) -> Option<Vec<u8>> {
        let valid =
            content.sha256.len() == 64 && content.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return None;
        }
        let bytes = read_current(&self.store.join(&content.sha256)).ok()??;
        (sha256_hex(&bytes) == content.sha256).then_some(bytes)
    }

    /// Appends an `applied` entry for files already written.
    pub fn append(
        &self,
        component: &str,
        tier: &str,
        digest: &str,
        applied_files: Vec<FileChange>,
    ) -> Result<PatchEntry, PatchError> {
        self.write_entry(
            component,
            tier,
            PatchAction::Applied,
            None,
            Some(digest.to_owned()),
            applied_files,
        )
    }

    fn write_entry(
        &self,
        component: &str,
        tier: &str,
        action: PatchAction,
        reverts: Option<u64>,
        digest: Option<String>,
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
            digest,
            files,
        };
        let mut line = serde_json::to_vec(&entry)?;
        line.push(b'\n');
        let mut file = open_private_append(&self.path).map_err(io(&self.path))?;
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

    /// Checks a tier's `patch` against `policy`, then writes its files
    /// atomically and records the entry. A refused or invalid patch writes
    /// nothing.
    pub fn apply_patch(
        &self,
        component: &str,
        tier: &str,
        patch: &serde_json::Value,
        policy: &PatchPolicy,
    ) -> Result<PatchEntry, PatchError> {
        let body = parse(patch)?;
        if let Some(reason) = policy.refuse(&body) {
            return Err(PatchError::Refused(reason));
        }
        let mut written: Vec<(PathBuf, Option<Vec<u8>>)> = Vec::new();
        let mut changes: Vec<FileChange> = Vec::new();
        for file in &body.files {
            let result = (|| {
                // Again right before the write: the check above ran for every
                // file before the first one was written.
                refuse_symlinks(&file.path)
                    .map_err(|e| PatchError::Refused(format!("{}: {e}", file.path.display())))?;
                let before = read_current(&file.path)?;
                // The old content is safe in the store before the file changes.
                let before_ref = before.as_deref().map(|b| self.keep(b)).transpose()?;
                write_atomic_nofollow(&file.path, file.content.as_bytes())
                    .map_err(|e| refused_or_io(&file.path, e))?;
                Ok::<_, PatchError>((before, before_ref))
            })();
            match result {
                Ok((before, before_ref)) => {
                    written.push((file.path.clone(), before));
                    changes.push(FileChange {
                        path: file.path.clone(),
                        before: before_ref,
                        after: Some(ContentRef::of(file.content.as_bytes())),
                    });
                }
                Err(error) => {
                    undo(&written);
                    return Err(error);
                }
            }
        }
        match self.append(component, tier, &digest(patch), changes) {
            Ok(entry) => Ok(entry),
            Err(error) => {
                undo(&written);
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
            let before = match &change.before {
                None => None,
                Some(content) => Some(self.load(content).ok_or_else(|| PatchError::Corrupt {
                    id: entry.id,
                    path: change.path.clone(),
                })?),
            };
            refuse_symlinks(&change.path)
                .map_err(|e| PatchError::Refused(format!("{}: {e}", change.path.display())))?;
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
            let current = read_current(&change.path)?;
            let current_ref = current.as_deref().map(ContentRef::of);
            if current_ref.as_ref().map(|c| &c.sha256) != change.after.as_ref().map(|c| &c.sha256) {
                report.drifted.push(change.path.clone());
                // A hand edit made since the patch must not be lost for good.
                if let Some(bytes) = &current {
                    self.keep(bytes)?;
                }
            }
            match &before {
                Some(bytes) => {
                    write_atomic_nofollow(&change.path, bytes)
                        .map_err(|e| refused_or_io(&change.path, e))?;
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
            undone.push(FileChange {
                path: change.path.clone(),
                before: current_ref,
                after: before.as_deref().map(ContentRef::of),
            });
        }
        self.write_entry(
            component,
            &entry.tier,
            PatchAction::Reverted,
            Some(entry.id),
            None,
            undone,
        )?;
        Ok(report)
    }
}

/// Best effort: puts back files written by a patch that failed midway.
fn undo(written: &[(PathBuf, Option<Vec<u8>>)]) {
    for (path, before) in written.iter().rev() {
        match before {
            Some(bytes) => {
                let _ = write_atomic_nofollow(path, bytes);
            }
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests;
