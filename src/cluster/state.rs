//! [`StateMirror`]: the active node's own state files, kept in the cluster
//! so that the next active node resumes where the last one stopped.
//!
//! The consumers keep their state in small files under the state dir, and
//! replay the log after their cursor idempotently *given* those files: the
//! wake consumer's cursor, the incident commander's incidents and tally,
//! the escalation coordinators' views and cycle records. The active node
//! copies the files that changed into a KV bucket (`<stream>_STATE`, keyed
//! by path under the state dir) twice a second and once more when it
//! stops; a node that takes the lease writes them back into its own state
//! dir before anything starts.
//!
//! Order keeps a copy consistent: each pass reads the cursors first and the
//! other files after, and stores the other files first and the cursors
//! after. So whatever the bucket holds, the files are at least as new as
//! the cursors, and the new node replays from a cursor that is at most a
//! little behind, which each consumer treats as a crash replay. Evidence
//! files, postmortems, logs and snapshots are not copied (see
//! `docs/cluster.md`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;

use super::{ClusterError, StreamLog};
use crate::audit::Cursor;

/// How often the active node copies changed files.
pub const MIRROR_EVERY: Duration = Duration::from_millis(500);

/// The folder of the consumers' cursors.
const CURSORS: &str = "cursors";

/// The largest file copied; state files are a few KiB (NATS's default
/// message limit is 1 MiB).
const MAX_FILE: u64 = 512 * 1024;

/// The cluster's copy of the active node's state files.
pub struct StateMirror {
    kv: kv::Store,
    state_dir: PathBuf,
    stream: String,
    /// Per key: the file's (modified, length) when last copied.
    known: HashMap<String, (SystemTime, u64)>,
}

impl std::fmt::Debug for StateMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMirror")
            .field("state_dir", &self.state_dir)
            .field("stream", &self.stream)
            .field("files", &self.known.len())
            .finish_non_exhaustive()
    }
}

impl StreamLog {
    /// The state bucket of this log's stream, for the files in `state_dir`.
    pub async fn state_mirror(&self, state_dir: &Path) -> Result<StateMirror, ClusterError> {
        let kv = self
            .context()
            .create_or_update_key_value(kv::Config {
                bucket: format!("{}_STATE", self.name()),
                history: 1,
                num_replicas: self.replicas(),
                max_value_size: MAX_FILE as i32,
                ..Default::default()
            })
            .await
            .map_err(|e| self.bucket_error("state", e))?;
        Ok(StateMirror {
            kv,
            state_dir: state_dir.to_owned(),
            stream: self.name().to_owned(),
            known: HashMap::new(),
        })
    }
}

/// The state files under `state_dir`, as keys (paths with `/`), cursors
/// apart.
fn state_files(state_dir: &Path) -> (Vec<String>, Vec<String>) {
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                    // Temp files of an atomic write in progress start with '.'.
                    .filter(|name| !name.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    };
    let cursors = names(&state_dir.join(CURSORS))
        .into_iter()
        .map(|name| format!("{CURSORS}/{name}"))
        .collect();
    let mut files = Vec::new();
    let incidents = state_dir.join("incidents");
    for name in names(&incidents) {
        if name.ends_with(".json") {
            files.push(format!("incidents/{name}"));
        } else if incidents.join(&name).join("incident.json").is_file() {
            files.push(format!("incidents/{name}/incident.json"));
        }
    }
    for name in names(&state_dir.join("escalation")) {
        if name.ends_with(".json") {
            files.push(format!("escalation/{name}"));
        }
    }
    (cursors, files)
}

/// A key is a path under the state dir made only of names the state dir's
/// own writers produce: no `..`, nothing absolute.
fn safe_key(key: &str) -> bool {
    !key.is_empty()
        && key.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

impl StateMirror {
    fn error(&self, reason: String) -> ClusterError {
        ClusterError::Stream {
            stream: self.stream.clone(),
            reason: format!("state bucket: {reason}"),
        }
    }

    /// Writes every file the bucket holds into the state dir (the last
    /// active node's state wins over this node's older files). Returns how
    /// many were written.
    pub async fn restore(&mut self) -> Result<usize, ClusterError> {
        let mut keys = self
            .kv
            .keys()
            .await
            .map_err(|e| self.error(e.to_string()))?;
        let mut names = Vec::new();
        while let Some(key) = keys.next().await {
            names.push(key.map_err(|e| self.error(e.to_string()))?);
        }
        let mut written = 0;
        for key in names {
            if !safe_key(&key) {
                tracing::warn!(key = %key, "Ignored a state file in the cluster with an unsafe name.");
                continue;
            }
            let Some(value) = self
                .kv
                .get(&key)
                .await
                .map_err(|e| self.error(e.to_string()))?
            else {
                continue;
            };
            let path = self.state_dir.join(&key);
            if let Some(dir) = path.parent() {
                crate::files::create_private_dir_all(dir)
                    .map_err(|e| self.error(format!("{}: {e}", dir.display())))?;
            }
            crate::files::write_atomic(&path, &value)
                .map_err(|e| self.error(format!("{}: {e}", path.display())))?;
            written += 1;
        }
        Ok(written)
    }

    /// Makes sure the cluster holds a cursor for each of `consumers` before
    /// any of them starts: one the bucket lacks gets this node's own
    /// stored value, or else `start` (the end of the log, where a consumer
    /// without a cursor starts) in both the file and the bucket. Without
    /// this, a node that died before its first copy would leave its
    /// successor nothing but the tail, and rows in flight would be skipped.
    pub async fn seed(&mut self, consumers: &[&str], start: u64) -> Result<(), ClusterError> {
        let dir = self.state_dir.join(CURSORS);
        for &name in consumers {
            let key = format!("{CURSORS}/{name}");
            let held = self
                .kv
                .get(&key)
                .await
                .map_err(|e| self.error(e.to_string()))?;
            if held.is_some() {
                continue;
            }
            let cursor = Cursor::new(&dir, name).map_err(|e| self.error(e.to_string()))?;
            let seq = match cursor.current() {
                Ok(Some(seq)) => seq,
                // Unreadable: the consumer resumes at the tail itself.
                Ok(None) | Err(_) => {
                    cursor.store(start).map_err(|e| self.error(e.to_string()))?;
                    start
                }
            };
            self.kv
                .put(&key, Bytes::from(format!("{seq}\n")))
                .await
                .map_err(|e| self.error(e.to_string()))?;
        }
        Ok(())
    }

    /// Copies the files that changed since the last pass into the bucket:
    /// cursors read first and stored last (see the module doc). A file
    /// that cannot be read or stored is logged and tried again next pass.
    pub async fn publish(&mut self) {
        let (cursors, files) = state_files(&self.state_dir);
        let cursors: Vec<(String, Option<Vec<u8>>)> = cursors
            .into_iter()
            .map(|key| {
                let bytes = self.changed(&key);
                (key, bytes)
            })
            .collect();
        for key in files {
            if let Some(bytes) = self.changed(&key) {
                self.put(key, bytes).await;
            }
        }
        for (key, bytes) in cursors {
            if let Some(bytes) = bytes {
                self.put(key, bytes).await;
            }
        }
    }

    /// The file's bytes if it changed since it was last copied.
    fn changed(&mut self, key: &str) -> Option<Vec<u8>> {
        let path = self.state_dir.join(key);
        let meta = std::fs::metadata(&path).ok()?;
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        if self.known.get(key) == Some(&stamp) {
            return None;
        }
        if meta.len() > MAX_FILE {
            tracing::warn!(path = %path.display(), bytes = meta.len(), "A state file is too large to copy to the cluster.");
            return None;
        }
        let bytes = std::fs::read(&path).ok()?;
        // Recorded now, so a failed store is retried only when it changes
        // again or at the final pass; a quiet file is not re-sent forever.
        self.known.insert(key.to_owned(), stamp);
        Some(bytes)
    }

    async fn put(&mut self, key: String, bytes: Vec<u8>) {
        if let Err(error) = self.kv.put(&key, Bytes::from(bytes)).await {
            tracing::warn!(error = %error, key = %key, "Could not copy a state file to the cluster.");
            self.known.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::safe_key;

    #[test]
    fn only_plain_paths_under_the_state_dir_are_restored() {
        assert!(safe_key("cursors/wake-consumer"));
        assert!(safe_key("incidents/INC-20261207-001/incident.json"));
        for bad in [
            "",
            "../etc/passwd",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a/b c",
            "a\\b",
        ] {
            assert!(!safe_key(bad), "{bad:?}");
        }
    }
}
