//! The DR epoch: detects a state directory restored from an older backup.
//!
//! Two small JSON files hold `{epoch, audit_high_water}`: one in the state
//! directory (`state_epoch`, restored along with it) and one outside it
//! (`known_epoch`, which a restore of the state directory does not touch).
//! Warden raises both high-water marks to the audit log's last seq at boot,
//! after a bump and on a graceful stop. A restored state dir then shows up as
//! an older epoch, or as a log that ends before the high-water mark Warden
//! already saw. Warden does not repair either: it pauses with reason
//! `substrate` until the operator bumps the epoch (accepting the restored
//! state as the new truth) and resets.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// The contents of either epoch file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Incremented by every `bump_epoch`; starts at 1.
    pub epoch: u64,
    /// The audit log's last seq as last seen by this Warden.
    pub audit_high_water: u64,
    /// Set in the known file when a rewind was detected and not yet resolved
    /// by a bump, so a restart (which appends rows and may pass the old
    /// high-water mark) does not forget it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unresolved: bool,
}

/// What the `dr_epoch` gate found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EpochCheck {
    /// Neither file existed; both were created at epoch 1.
    Created,
    /// The epochs agree and the log reaches the known high-water mark.
    Consistent {
        /// The common epoch.
        epoch: u64,
    },
    /// The state dir is older than what this Warden has seen: its epoch is
    /// lower, or its log ends before the known high-water mark.
    Rewind(EpochFacts),
    /// The state dir's epoch is ahead of the known file: the known file was
    /// itself rewound or replaced (`KnownEpochMonotonicViolation`).
    KnownEpochViolation(EpochFacts),
}

/// The numbers behind a failed check, recorded in the audit row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochFacts {
    /// Epoch in `state_dir/state_epoch` (0 when missing).
    pub state_epoch: u64,
    /// Epoch in the known file (0 when missing).
    pub known_epoch: u64,
    /// The audit log's last seq (0 when empty).
    pub log_last_seq: u64,
    /// The known high-water mark.
    pub known_high_water: u64,
}

/// Why the epoch files could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum EpochError {
    /// Reading or writing a file failed.
    #[error("epoch file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file does not hold `{epoch, audit_high_water}`.
    #[error("epoch file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why it does not parse.
        reason: String,
    },
}

/// Pure decision: compares the two records and the log's last seq.
pub fn compare(
    state: Option<EpochRecord>,
    known: Option<EpochRecord>,
    log_last_seq: u64,
) -> EpochCheck {
    let facts = EpochFacts {
        state_epoch: state.map_or(0, |r| r.epoch),
        known_epoch: known.map_or(0, |r| r.epoch),
        log_last_seq,
        known_high_water: known.map_or(0, |r| r.audit_high_water),
    };
    match (state, known) {
        (None, None) => EpochCheck::Created,
        // The state dir lost its epoch file but Warden has seen one: restored
        // from a backup older than the DR epoch itself.
        (None, Some(_)) => EpochCheck::Rewind(facts),
        (Some(_), None) => EpochCheck::KnownEpochViolation(facts),
        (Some(state), Some(known)) => {
            if known.unresolved || state.epoch < known.epoch {
                EpochCheck::Rewind(facts)
            } else if state.epoch > known.epoch {
                EpochCheck::KnownEpochViolation(facts)
            } else if log_last_seq < known.audit_high_water {
                EpochCheck::Rewind(facts)
            } else {
                EpochCheck::Consistent { epoch: state.epoch }
            }
        }
    }
}

struct Inner {
    /// The current epoch (after the last bump).
    epoch: u64,
    /// True while a rewind or violation is unresolved: high-water marks are
    /// then left alone, so the evidence survives a restart.
    unresolved: bool,
    /// The high-water mark last written; never lowered.
    high_water: u64,
}

/// The two epoch files of one Warden, shared by the boot gate, the API's
/// `bump_epoch` and the lifecycle's high-water updates.
#[derive(Clone)]
pub struct DrEpoch {
    state_path: PathBuf,
    known_path: PathBuf,
    inner: Arc<Mutex<Inner>>,
}

impl DrEpoch {
    /// The files `<state_dir>/state_epoch` and `known_path`.
    pub fn new(state_dir: &Path, known_path: &Path) -> Self {
        Self {
            state_path: state_dir.join("state_epoch"),
            known_path: known_path.to_owned(),
            inner: Arc::new(Mutex::new(Inner {
                epoch: 0,
                unresolved: false,
                high_water: 0,
            })),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Runs the check at boot. On `Created` and `Consistent` both high-water
    /// marks are raised to `log_last_seq`; on a rewind or violation nothing
    /// is raised and the known file is marked unresolved.
    pub fn check(&self, log_last_seq: u64) -> Result<EpochCheck, EpochError> {
        let state = read(&self.state_path)?;
        let known = read(&self.known_path)?;
        let result = compare(state, known, log_last_seq);
        match &result {
            EpochCheck::Created | EpochCheck::Consistent { .. } => {
                let epoch = match result {
                    EpochCheck::Consistent { epoch } => epoch,
                    _ => 1,
                };
                self.with(|inner| {
                    inner.epoch = epoch;
                    inner.high_water = log_last_seq;
                });
                self.write_both(epoch, log_last_seq)?;
            }
            EpochCheck::Rewind(facts) | EpochCheck::KnownEpochViolation(facts) => {
                self.with(|inner| {
                    inner.epoch = facts.state_epoch.max(facts.known_epoch);
                    inner.unresolved = true;
                });
                if let Some(mut known) = known {
                    known.unresolved = true;
                    write(&self.known_path, &known)?;
                }
            }
        }
        Ok(result)
    }

    /// Adopts the known epoch an older release kept at `legacy` when this
    /// state dir has run before (it has a state epoch) but its own known file
    /// does not exist yet. A state dir that never ran adopts nothing, so a
    /// new instance next to an old one is not taken for a restore of it.
    /// Returns whether it adopted.
    pub fn adopt_legacy(&self, legacy: &Path) -> Result<bool, EpochError> {
        if legacy == self.known_path
            || read(&self.known_path)?.is_some()
            || read(&self.state_path)?.is_none()
        {
            return Ok(false);
        }
        match read(legacy)? {
            Some(record) => write(&self.known_path, &record).map(|()| true),
            None => Ok(false),
        }
    }

    /// Whether a rewind or violation is waiting for `bump_epoch`.
    pub fn unresolved(&self) -> bool {
        self.with(|inner| inner.unresolved)
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.with(|inner| inner.epoch)
    }

    /// Accepts the current state dir as the truth: epoch + 1 in both files,
    /// high-water = `log_last_seq`. Returns `(from, to)`.
    pub fn bump(&self, log_last_seq: u64) -> Result<(u64, u64), EpochError> {
        // Under the lock, so a periodic high-water update cannot interleave.
        self.with(|inner| {
            let state = read(&self.state_path)?.map_or(0, |r| r.epoch);
            let known = read(&self.known_path)?.map_or(0, |r| r.epoch);
            let from = state.max(known).max(inner.epoch);
            let to = from + 1;
            self.write_both(to, log_last_seq)?;
            inner.epoch = to;
            inner.unresolved = false;
            inner.high_water = log_last_seq;
            Ok((from, to))
        })
    }

    /// Raises both high-water marks to `log_last_seq` (at a graceful stop,
    /// periodically). Never lowers them; does nothing while a rewind is
    /// unresolved.
    pub fn mark_high_water(&self, log_last_seq: u64) -> Result<(), EpochError> {
        self.with(|inner| {
            if inner.unresolved || inner.epoch == 0 || log_last_seq <= inner.high_water {
                return Ok(());
            }
            self.write_both(inner.epoch, log_last_seq)?;
            inner.high_water = log_last_seq;
            Ok(())
        })
    }

    fn write_both(&self, epoch: u64, audit_high_water: u64) -> Result<(), EpochError> {
        let record = EpochRecord {
            epoch,
            audit_high_water,
            unresolved: false,
        };
        // The known file first: if the second write fails, the next boot sees
        // a state epoch behind the known one and pauses instead of trusting it.
        write(&self.known_path, &record)?;
        write(&self.state_path, &record)
    }
}

fn read(path: &Path) -> Result<Option<EpochRecord>, EpochError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(EpochError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| EpochError::Corrupt {
            path: path.to_owned(),
            reason: error.to_string(),
        })
}

/// Replaces `path` atomically ([`crate::files::write_atomic`]).
fn write(path: &Path, record: &EpochRecord) -> Result<(), EpochError> {
    let io = |source| EpochError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::files::create_private_dir_all(dir).map_err(io)?;
    let mut text = serde_json::to_string(record).map_err(|error| EpochError::Corrupt {
        path: path.to_owned(),
        reason: error.to_string(),
    })?;
    text.push('\n');
    crate::files::write_atomic(path, text.as_bytes()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(epoch: u64, audit_high_water: u64) -> Option<EpochRecord> {
        Some(EpochRecord {
            epoch,
            audit_high_water,
            unresolved: false,
        })
    }

    #[test]
    fn compare_covers_every_case() {
        assert_eq!(compare(None, None, 0), EpochCheck::Created);
        assert_eq!(
            compare(rec(2, 10), rec(2, 10), 12),
            EpochCheck::Consistent { epoch: 2 }
        );
        assert!(matches!(
            compare(rec(2, 10), rec(2, 10), 9),
            EpochCheck::Rewind(_)
        ));
        assert!(matches!(
            compare(rec(1, 10), rec(2, 3), 50),
            EpochCheck::Rewind(_)
        ));
        assert!(matches!(
            compare(rec(3, 10), rec(2, 10), 50),
            EpochCheck::KnownEpochViolation(_)
        ));
        assert!(matches!(compare(None, rec(1, 1), 5), EpochCheck::Rewind(_)));
    }

    #[test]
    fn a_rewind_survives_restarts_until_bumped() {
        let dir = tempfile::tempdir().unwrap();
        let (state_dir, known) = (dir.path().join("var"), dir.path().join("dr/known"));
        let dr = DrEpoch::new(&state_dir, &known);
        assert_eq!(dr.check(0).unwrap(), EpochCheck::Created);
        dr.mark_high_water(20).unwrap();

        let dr = DrEpoch::new(&state_dir, &known);
        assert!(matches!(dr.check(5).unwrap(), EpochCheck::Rewind(_)));
        dr.mark_high_water(30).unwrap();
        // Past the old high-water mark, still unresolved.
        let dr = DrEpoch::new(&state_dir, &known);
        assert!(matches!(dr.check(40).unwrap(), EpochCheck::Rewind(_)));
        assert_eq!(dr.bump(40).unwrap(), (1, 2));
        assert!(!dr.unresolved());

        let dr = DrEpoch::new(&state_dir, &known);
        assert_eq!(dr.check(41).unwrap(), EpochCheck::Consistent { epoch: 2 });
    }
}
