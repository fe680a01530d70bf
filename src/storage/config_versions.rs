//! Configuration versions kept once each under `<state_dir>/config/`, named by
//! the sha256 of their bytes. Incident evidence names the digest instead of
//! carrying a copy: with thousands of probes the effective configuration is
//! hundreds of kilobytes, and an incident storm would otherwise copy it into
//! every incident. Callers pass the redacted serialization (secrets as
//! `***`), so nothing stored here holds a secret in clear.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Directory under the state dir holding the configuration versions.
pub const CONFIG_DIR: &str = "config";

/// Where one configuration version lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredConfig {
    /// `sha256:<hex>` of the stored bytes.
    pub digest: String,
    /// The file, relative to the state dir (`config/sha256-<hex>.json`).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// Why a configuration version could not be stored.
#[derive(Debug, thiserror::Error)]
#[error("cannot store the configuration version in {path}: {source}")]
pub struct StoreError {
    /// The file.
    pub path: PathBuf,
    /// What the OS said.
    pub source: std::io::Error,
}

/// Stores `bytes` (a redacted serialization) under its digest, unless that
/// version is already there. Blocks on file I/O.
pub fn store_config(state_dir: &Path, bytes: &[u8]) -> Result<StoredConfig, StoreError> {
    let hex = crate::escalation::sha256_hex(bytes);
    let relative = format!("{CONFIG_DIR}/sha256-{hex}.json");
    let path = state_dir.join(&relative);
    let stored = StoredConfig {
        digest: format!("sha256:{hex}"),
        path: relative,
        size: bytes.len() as u64,
    };
    // Same name, same size: the same version (the name is its digest). A
    // shorter file is a copy torn by a crash and is written again.
    if std::fs::metadata(&path).is_ok_and(|meta| meta.len() == stored.size) {
        return Ok(stored);
    }
    let error = |source| StoreError {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    crate::files::write_atomic(&path, bytes).map_err(error)?;
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_stored_once_under_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let a = store_config(dir.path(), b"{\"a\":1}").unwrap();
        let again = store_config(dir.path(), b"{\"a\":1}").unwrap();
        let b = store_config(dir.path(), b"{\"a\":2}").unwrap();
        assert_eq!(a, again);
        assert_ne!(a.digest, b.digest);
        assert!(a.digest.starts_with("sha256:"));
        let files = std::fs::read_dir(dir.path().join(CONFIG_DIR))
            .unwrap()
            .count();
        assert_eq!(files, 2);
        assert_eq!(
            std::fs::read(dir.path().join(&a.path)).unwrap(),
            b"{\"a\":1}"
        );
    }
}
