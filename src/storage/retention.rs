//! Retention: the audit log's old segments and resolved incidents' folders
//! are removed once they are older than the operator asked to keep them.
//!
//! Audit segments (`audit-<first seq>.jsonl`) go when the newest row in them
//! (the file's modification time) is older than `audit.retain_for`, or,
//! oldest first, while the log is larger than `audit.retain_bytes`. Two
//! things always stay: the newest segment (the writer appends to it) and any
//! segment holding a row a consumer cursor has not handled yet, so
//! at-least-once delivery survives retention. An unreadable cursor keeps
//! every segment. Incident folders go only once resolved, and only when
//! their `resolved_at` is older than `incidents.retain_for`. Each pass
//! removes at most [`MAX_REMOVALS`] of each, so one pass stays short however
//! far behind it is.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::incidents::{Incident, IncidentStatus};

/// Most segments, and most incident folders, one pass removes.
pub const MAX_REMOVALS: usize = 256;

/// What to keep. `None` keeps everything on that axis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `audit.retain_for`.
    pub audit_retain_for: Option<Duration>,
    /// `audit.retain_bytes`.
    pub audit_retain_bytes: Option<u64>,
    /// `incidents.retain_for`.
    pub incidents_retain_for: Option<Duration>,
}

impl RetentionPolicy {
    /// Whether the policy removes anything at all.
    pub fn is_off(&self) -> bool {
        self.audit_retain_for.is_none()
            && self.audit_retain_bytes.is_none()
            && self.incidents_retain_for.is_none()
    }
}

/// What one pass removed, and what it had to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionReport {
    /// Audit segments removed (file names).
    pub audit_segments: Vec<String>,
    /// Their total size.
    pub audit_bytes: u64,
    /// Segments that were due but held for a cursor that has not read them.
    pub audit_held_for_cursor: usize,
    /// Incident ids whose folders were removed.
    pub incidents: Vec<String>,
    /// What could not be read or removed (the pass goes on without it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl RetentionReport {
    /// Whether the pass removed anything.
    pub fn removed_anything(&self) -> bool {
        !self.audit_segments.is_empty() || !self.incidents.is_empty()
    }
}

/// One pass over `state_dir` at `now`. Blocks on file I/O.
pub fn run_retention(
    state_dir: &Path,
    policy: &RetentionPolicy,
    now: std::time::SystemTime,
) -> RetentionReport {
    let mut report = RetentionReport::default();
    if policy.audit_retain_for.is_some() || policy.audit_retain_bytes.is_some() {
        prune_audit(
            &crate::app::audit_dir(state_dir),
            &state_dir.join("cursors"),
            policy,
            now,
            &mut report,
        );
    }
    if let Some(keep) = policy.incidents_retain_for {
        prune_incidents(
            &crate::incidents::incidents_root(state_dir),
            keep,
            now,
            &mut report,
        );
    }
    report
}

/// The lowest seq any consumer cursor has handled; `Err` when a cursor
/// cannot be read (then nothing may go).
fn lowest_cursor(cursor_dir: &Path) -> Result<Option<u64>, String> {
    let entries = match std::fs::read_dir(cursor_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("{}: {error}", cursor_dir.display())),
    };
    let mut lowest: Option<u64> = None;
    for entry in entries {
        let entry = entry.map_err(|error| format!("{}: {error}", cursor_dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Temporary files of an atomic store start with '.'.
        if name.starts_with('.') || !entry.path().is_file() {
            continue;
        }
        let seq = crate::audit::Cursor::load(cursor_dir, &name)
            .map_err(|error| error.to_string())?
            .unwrap_or(0);
        lowest = Some(lowest.map_or(seq, |low| low.min(seq)));
    }
    Ok(lowest)
}

fn prune_audit(
    audit_dir: &Path,
    cursor_dir: &Path,
    policy: &RetentionPolicy,
    now: std::time::SystemTime,
    report: &mut RetentionReport,
) {
    let files = match crate::audit::list_segments(audit_dir) {
        Ok(files) => files,
        Err(error) => {
            report.errors.push(error.to_string());
            return;
        }
    };
    let lowest = match lowest_cursor(cursor_dir) {
        Ok(lowest) => lowest,
        Err(error) => {
            report
                .errors
                .push(format!("cursor unreadable, audit kept whole: {error}"));
            return;
        }
    };
    struct Segment {
        path: PathBuf,
        size: u64,
        modified: std::time::SystemTime,
        /// The seq of the segment's last row: the next segment's first - 1.
        last_seq: u64,
    }
    let mut segments = Vec::new();
    // The newest segment is the writer's: never a candidate.
    for pair in files.windows(2) {
        let (_, path) = &pair[0];
        let (next_first, _) = &pair[1];
        match std::fs::metadata(path) {
            Ok(meta) => segments.push(Segment {
                path: path.clone(),
                size: meta.len(),
                modified: meta.modified().unwrap_or(now),
                last_seq: next_first.saturating_sub(1),
            }),
            Err(error) => report.errors.push(format!("{}: {error}", path.display())),
        }
    }
    let mut total: u64 = files
        .iter()
        .filter_map(|(_, path)| std::fs::metadata(path).ok())
        .map(|meta| meta.len())
        .sum();
    for segment in segments {
        if report.audit_segments.len() >= MAX_REMOVALS {
            break;
        }
        let too_old = policy.audit_retain_for.is_some_and(|keep| {
            now.duration_since(segment.modified)
                .is_ok_and(|age| age > keep)
        });
        let too_big = policy.audit_retain_bytes.is_some_and(|limit| total > limit);
        if !too_old && !too_big {
            // Segments are in seq order and age with it: the rest are newer.
            break;
        }
        // No cursor at all means no consumer has a position to lose.
        if lowest.is_some_and(|low| low < segment.last_seq) {
            report.audit_held_for_cursor += 1;
            break;
        }
        match std::fs::remove_file(&segment.path) {
            Ok(()) => {
                total = total.saturating_sub(segment.size);
                report.audit_bytes += segment.size;
                report.audit_segments.push(
                    segment
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                );
            }
            Err(error) => {
                report
                    .errors
                    .push(format!("{}: {error}", segment.path.display()));
                break;
            }
        }
    }
    if !report.audit_segments.is_empty()
        && let Ok(dir) = std::fs::File::open(audit_dir)
    {
        // Best effort: the removals are done either way.
        let _ = dir.sync_all();
    }
}

fn prune_incidents(
    root: &Path,
    keep: Duration,
    now: std::time::SystemTime,
    report: &mut RetentionReport,
) {
    let (incidents, _) = match crate::incidents::load_all(root) {
        Ok(found) => found,
        Err(error) => {
            report.errors.push(error.to_string());
            return;
        }
    };
    let now = jiff::Timestamp::try_from(now).unwrap_or_else(|_| jiff::Timestamp::now());
    for incident in incidents {
        if report.incidents.len() >= MAX_REMOVALS {
            break;
        }
        if !expired(&incident, keep, now) {
            continue;
        }
        let dir = root.join(&incident.id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => report.incidents.push(incident.id),
            Err(error) => report.errors.push(format!("{}: {error}", dir.display())),
        }
    }
}

/// Resolved, with a `resolved_at` older than `keep`. An incident that is not
/// resolved, or whose resolution time does not parse, is kept.
fn expired(incident: &Incident, keep: Duration, now: jiff::Timestamp) -> bool {
    if incident.status != IncidentStatus::Resolved {
        return false;
    }
    let Some(resolved) = incident
        .resolved_at
        .as_deref()
        .and_then(|at| at.parse::<jiff::Timestamp>().ok())
    else {
        return false;
    };
    now.duration_since(resolved)
        .try_into()
        .is_ok_and(|age: Duration| age > keep)
}

#[cfg(test)]
mod tests;
