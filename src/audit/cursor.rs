//! [`Cursor`]: a consumer's durable "last seq handled", one small file per
//! consumer under `<state_dir>/cursors/`, replaced atomically.

use std::fs;
use std::path::{Path, PathBuf};

use super::AuditError;

/// A named consumer's position in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    dir: PathBuf,
    name: String,
}

impl Cursor {
    /// A cursor called `name` in `dir` (the service passes `<state_dir>/cursors`).
    /// Rejects names that are empty, longer than 128 bytes, start with `.`, or
    /// hold anything but `[A-Za-z0-9._-]` (so no path separators).
    pub fn new(dir: &Path, name: &str) -> Result<Self, AuditError> {
        let valid = !name.is_empty()
            && name.len() <= 128
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            return Err(AuditError::InvalidCursorName(name.to_owned()));
        }
        Ok(Self {
            dir: dir.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The stored seq of cursor `name` in `dir`, or `None` if it was never stored.
    pub fn load(dir: &Path, name: &str) -> Result<Option<u64>, AuditError> {
        Self::new(dir, name)?.current()
    }

    /// The stored seq, or `None` if it was never stored.
    pub fn current(&self) -> Result<Option<u64>, AuditError> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AuditError::io(path, e)),
        };
        text.trim()
            .parse()
            .map(Some)
            .map_err(|e: std::num::ParseIntError| AuditError::CorruptCursor {
                path,
                reason: e.to_string(),
            })
    }

    /// Stores `seq` durably with [`crate::files::write_atomic`]: a crash
    /// leaves either the old or the new value.
    pub fn store(&self, seq: u64) -> Result<(), AuditError> {
        crate::files::create_private_dir_all(&self.dir)
            .map_err(|e| AuditError::io(&self.dir, e))?;
        let path = self.path();
        crate::files::write_atomic(&path, format!("{seq}\n").as_bytes())
            .map_err(|e| AuditError::io(&path, e))
    }

    /// The cursor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }
}

#[cfg(test)]
mod tests;
