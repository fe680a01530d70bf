//! How much of the disk the state directory takes, by area, for the
//! `warden_state_dir_bytes` gauges. Measured by the storage task, not at
//! scrape time: walking thousands of incident files on every scrape would
//! make `/metrics` as slow as the state dir is large.

use std::path::Path;

use serde::Serialize;

/// Bytes used under the state dir.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DiskUse {
    /// `audit/`.
    pub audit: u64,
    /// `incidents/`.
    pub incidents: u64,
    /// `snapshots/`.
    pub snapshots: u64,
    /// `config/` (configuration versions by digest).
    pub config: u64,
    /// Everything under the state dir, the above included.
    pub total: u64,
}

/// Walks `state_dir` (symlinks are not followed; unreadable entries count
/// as 0). Blocks on file I/O.
pub fn measure(state_dir: &Path) -> DiskUse {
    DiskUse {
        audit: size_of(&state_dir.join("audit")),
        incidents: size_of(&state_dir.join("incidents")),
        snapshots: size_of(&state_dir.join(crate::escalation::snapshot::DIR_NAME)),
        config: size_of(&state_dir.join(super::config_versions::CONFIG_DIR)),
        total: size_of(state_dir),
    }
}

fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let mut total = 0;
    let mut stack = vec![path.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_area_and_the_total_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, n: usize| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, vec![b'x'; n]).unwrap();
        };
        write("audit/audit-1.jsonl", 100);
        write("incidents/INC-1/evidence/01-a.json", 20);
        write("snapshots/api/0-x", 3);
        write("config/sha256-ab.json", 7);
        write("cursors/wake-consumer", 1);
        let used = measure(dir.path());
        assert_eq!(
            used,
            DiskUse {
                audit: 100,
                incidents: 20,
                snapshots: 3,
                config: 7,
                total: 131,
            }
        );
    }
}
