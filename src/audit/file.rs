//! Log files on disk: naming (`audit-<first seq>.jsonl`), listing in order,
//! scanning, and crash [`recover`]y of a torn tail.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::{AuditError, AuditRow};

const PREFIX: &str = "audit-";
const SUFFIX: &str = ".jsonl";

/// The file name for a file whose first row is `first_seq`.
pub fn file_name(first_seq: u64) -> String {
    format!("{PREFIX}{first_seq:020}{SUFFIX}")
}

/// The first seq encoded in a log file name, if `name` is one.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The log files in `dir`, ordered by first seq. Other files are ignored.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, AuditError> {
    let entries = fs::read_dir(dir).map_err(|e| AuditError::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AuditError::io(dir, e))?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_file_name) {
            files.push((first, entry.path()));
        }
    }
    files.sort_unstable_by_key(|(first, _)| *first);
    Ok(files)
}

/// Syncs a directory so a created or renamed entry in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuditError::io(dir, e))
}

/// A complete line that does not parse as a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptRow {
    /// The file holding it.
    pub file: PathBuf,
    /// Byte offset of the line's start.
    pub offset: u64,
    /// The parse error.
    pub reason: String,
}

/// A torn tail that [`recover`] cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The file that was truncated.
    pub file: PathBuf,
    /// How many bytes were removed.
    pub truncated_bytes: u64,
    /// The seq of the last complete row kept (in any file), if any.
    pub last_good_seq: Option<u64>,
}

/// What [`recover`] found and did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// The seq of the last complete row; the next row gets this + 1 (or 1).
    pub last_good_seq: Option<u64>,
    /// The torn tail that was truncated, if there was one.
    pub truncated: Option<Truncation>,
    /// Complete but unparsable lines, left in place.
    pub corrupt_rows: Vec<CorruptRow>,
    /// The newest file, which the writer continues (none in an empty log).
    pub newest_file: Option<PathBuf>,
}

impl RecoveryReport {
    /// The seq the next appended row gets.
    pub fn next_seq(&self) -> u64 {
        self.last_good_seq.map_or(1, |seq| seq + 1)
    }
}

/// What one pass over a file found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub(crate) last_seq: Option<u64>,
    pub(crate) corrupt: Vec<CorruptRow>,
    /// Where the final line starts and why it is bad, if it is torn or unparsable.
    pub(crate) bad_tail: Option<u64>,
    pub(crate) len: u64,
}

/// Reads every line of `path`: the last good seq, corrupt lines, and whether the
/// final line is torn (no newline) or unparsable.
pub(crate) fn scan_file(path: &Path) -> Result<Scan, AuditError> {
    let file = File::open(path).map_err(|e| AuditError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut scan = Scan::default();
    let mut line = Vec::new();
    let mut offset = 0u64;
    let mut last_bad: Option<CorruptRow> = None;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| AuditError::io(path, e))?;
        if n == 0 {
            break;
        }
        // A bad line followed by another line is a corrupt row in the middle.
        scan.corrupt.extend(last_bad.take());
        let complete = line.last() == Some(&b'\n');
        let parsed = if complete {
            serde_json::from_slice::<AuditRow>(&line[..n - 1]).map_err(|e| e.to_string())
        } else {
            Err("torn line (no trailing newline)".to_owned())
        };
        match parsed {
            Ok(row) => scan.last_seq = Some(row.seq),
            Err(reason) => {
                last_bad = Some(CorruptRow {
                    file: path.to_owned(),
                    offset,
                    reason,
                })
            }
        }
        offset += n as u64;
    }
    scan.bad_tail = last_bad.map(|bad| bad.offset);
    scan.len = offset;
    Ok(scan)
}

/// Makes the log in `dir` safe to append to after a crash: truncates a torn or
/// unparsable final line of the newest file, reports corrupt rows elsewhere,
/// and finds the last good seq. Creates `dir` if missing. Never rewrites a
/// complete row.
///
/// The writer runs this in `pre_start` and records a truncation as an
/// `audit.recovered` row. Never run it while a writer is active (it would cut
/// a write in progress); a boot gate that runs before the writer should use
/// [`inspect`], so the truncation happens in the writer and gets its row.
pub fn recover(dir: &Path) -> Result<RecoveryReport, AuditError> {
    crate::files::create_private_dir_all(dir).map_err(|e| AuditError::io(dir, e))?;
    let report = examine(dir, true)?;
    for bad in &report.corrupt_rows {
        tracing::error!(
            file = %bad.file.display(),
            offset = bad.offset,
            reason = %bad.reason,
            "Corrupt audit row left in place; the operator must inspect it."
        );
    }
    if let Some(t) = &report.truncated {
        tracing::warn!(
            file = %t.file.display(),
            truncated_bytes = t.truncated_bytes,
            last_good_seq = ?t.last_good_seq,
            "Truncated a torn audit tail."
        );
    }
    Ok(report)
}

/// What [`recover`] would find and do, without changing anything (a dry run
/// for boot gates and operators). `truncated` is what would be cut. A missing
/// `dir` is an empty log.
pub fn inspect(dir: &Path) -> Result<RecoveryReport, AuditError> {
    if !dir.exists() {
        return Ok(RecoveryReport::default());
    }
    examine(dir, false)
}

fn examine(dir: &Path, truncate: bool) -> Result<RecoveryReport, AuditError> {
    let files = list_files(dir)?;
    let mut report = RecoveryReport {
        newest_file: files.last().map(|(_, path)| path.clone()),
        ..RecoveryReport::default()
    };
    let mut truncated = None;
    // Walk back from the newest file until one holds a good row: only the
    // newest file can have a torn tail (rotation starts a file after a
    // complete batch), older ones are scanned only to find the last seq.
    for (index, (_, path)) in files.iter().enumerate().rev() {
        let scan = scan_file(path)?;
        report.corrupt_rows.extend(scan.corrupt);
        if let Some(start) = scan.bad_tail {
            if index + 1 == files.len() {
                truncated = Some((path.clone(), scan.len - start));
                // A dry run (`inspect`) only reports.
                if truncate {
                    let file = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|e| AuditError::io(path, e))?;
                    file.set_len(start)
                        .and_then(|()| file.sync_all())
                        .map_err(|e| AuditError::io(path, e))?;
                }
            } else {
                report.corrupt_rows.push(CorruptRow {
                    file: path.clone(),
                    offset: start,
                    reason: "bad final line in an older file".to_owned(),
                });
            }
        }
        if scan.last_seq.is_some() {
            report.last_good_seq = scan.last_seq;
            break;
        }
    }
    report.truncated = truncated.map(|(file, truncated_bytes)| Truncation {
        file,
        truncated_bytes,
        last_good_seq: report.last_good_seq,
    });
    Ok(report)
}

#[cfg(test)]
mod tests;
