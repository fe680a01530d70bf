//! The audit log: Warden's append-only, durable source of truth.
//!
//! Every decision Warden makes (a probe asked for a wake, a supervisor restarted
//! a child, a fix was attempted) is one row here. Consumers replay it from a
//! durable cursor, so the log must never lose or alter an acknowledged row.
//!
//! # Layout
//! - `row.rs`: [`NewRow`] (what callers append) and [`AuditRow`] (what is stored).
//! - `queue.rs`: [`AuditLog`], the cheap client, and [`AuditQueue`], the shared
//!   queue that outlives any one writer instance.
//! - `writer.rs`: the [`AuditWriter`] actor; `writer/committer.rs` is the
//!   dedicated thread that does the group commit.
//! - `file.rs`: file naming, listing and crash [`recover`]y; `faults.rs`: the
//!   injectable I/O faults used by tests and chaos.
//! - `reader.rs`: [`AuditReader`] (iterate, filter, follow); `tail.rs`: the
//!   `warden audit tail` command; `cursor.rs`: durable consumer [`Cursor`]s; `follower.rs`: a
//!   consumer reading after its cursor in batches ([`Follower`]);
//!   `health.rs`: [`AuditHealth`], the writer's shared health value.
//!
//! # Format
//! The log is a directory of JSON Lines files named for the seq of their first
//! row, zero-padded to 20 digits (`audit-00000000000000000001.jsonl`), so the
//! lexical order of names is the order of rows. Each line is one row with its
//! fields in this order:
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `seq` | u64 | 1, 2, 3, … gap-free and monotonic across files and restarts |
//! | `ts` | string | RFC 3339 UTC with milliseconds, taken when the row is written |
//! | `seam` | string | what happened, dotted (`probe.wake_requested`, `supervision.restarted`) |
//! | `caller_session_id` | string or null | joins the rows of one issue's story |
//! | `trace_id` | string or null | the trace of that story |
//! | `component` | string or null | the component concerned |
//! | `details` | object | seam-specific payload (a non-object is wrapped as `{"value": …}`) |
//!
//! A row is *complete* when its line ends in `\n` and parses.
//!
//! # Durability (`audit.fsync`)
//! An append resolves with the row's seq only once the row is durable under the
//! configured policy:
//! - `always`: each row is written and `fdatasync`ed on its own before it is
//!   acknowledged. Slowest; survives power loss.
//! - `batch` (default): leader-style group commit. The writer thread blocks for
//!   the first queued row, takes every row queued behind it (up to
//!   `batch_max`) without waiting, does one `write` + one `fdatasync`, then
//!   acknowledges them all. A lone row costs one fsync; under load, every row
//!   that queued during a sync shares the next one. There is no timer. Same
//!   guarantee as `always`.
//! - `never`: acknowledged once the batch reached the OS page cache. Survives a
//!   crash of Warden, not of the machine. [`AuditLog::flush`] still syncs.
//!
//! Appends wait in an [`AuditQueue`] created once by the service and handed to
//! each writer instance, so appends made while a supervisor restarts the writer
//! are committed by the next instance. Rows that were not acknowledged may be
//! written by a later instance (after a restart); acknowledged rows are never
//! rewritten. The queue is bounded ([`QUEUE_CAPACITY`] items): while the disk
//! fails, rows accumulate in memory (visible as [`AuditLog::queued`]) up to
//! that bound; a client's row ([`AuditLog::try_submit`]) is refused once it
//! is half full, and Warden's own rows once it is full, which are then
//! counted and recorded as one `audit.rows_dropped` row when writes resume.
//!
//! Stopping: a graceful stop of the writer commits everything queued before
//! it returns (unless a write fails, in which case the rows stay queued for the
//! next instance, so stopping never hangs on a failing disk). A killed writer
//! finishes only the batch in hand. With no writer running, `append` and
//! `flush` wait, so at shutdown call [`AuditLog::flush`] (with a timeout)
//! before, not after, stopping the writer, or rely on the graceful stop.
//!
//! # Write errors
//! A failed write or sync (disk full, permissions) never crashes the writer and
//! never drops a row: the file is truncated back to its length before the batch
//! (so no torn row precedes a good one), the batch is kept unacknowledged, and
//! it is retried with exponential backoff (50 ms doubling to 5 s by default).
//! [`AuditHealth`] shows the fault (`last_error`, `failing_since`, counters); the
//! writer logs ERROR once when an episode starts and WARN once when it ends.
//!
//! # Recovery
//! [`recover`] runs in the writer's `pre_start` (and may run as a boot gate):
//! - the last line of the newest file, if it has no trailing newline or does
//!   not parse, is truncated (a kill mid-write) and reported; the writer then
//!   appends an `audit.recovered` row with `file`, `truncated_bytes` and
//!   `last_good_seq`;
//! - any other unparsable line is a corrupt row: reported (ERROR log and the
//!   [`RecoveryReport`]) but never rewritten; readers yield an error for it;
//! - a file ending in a complete row is not touched;
//! - the next seq is the last good seq + 1.
//!
//! If recovery fails (for example the directory is unreadable), the writer's
//! `pre_start` fails, which is a spawn error: a failed boot gate. A gate that
//! runs before the writer starts should call [`inspect`] (the same scan as a
//! dry run), so the truncation itself happens in the writer and is recorded.
//!
//! # Rotation
//! Before a batch is written, if the current file is at least `rotate_bytes`
//! long, the writer starts a new file named for the batch's first seq (and
//! syncs the directory unless `fsync = never`). Files are never rewritten or
//! renamed; readers walk them in name order. A restart continues the newest file.
//!
//! # Readers
//! [`AuditReader`] iterates rows from a seq (inclusive), filtered by seam
//! (exact, or a prefix ending in `*` such as `supervision.*`), and can follow
//! the log by bounded polling until a shutdown future resolves. A reader sees a
//! row once it is written, which may be before it is synced (and, if that
//! batch then fails, before it is truncated back and rewritten with the same
//! bytes); a torn last line (a write in progress) is simply not visible yet.
//! In-process consumers can wait on [`AuditLog::subscribe`] (the last durable
//! seq) instead of polling, then read from their [`Cursor`].
//!
//! # Cursors
//! A consumer keeps the last seq it handled in `<state_dir>/cursors/<name>`
//! ([`Cursor`]). A store writes a temporary file, syncs it, renames it over the
//! old one and syncs the directory, so a crash leaves the old or the new value,
//! never a mix. Names are restricted to `[A-Za-z0-9._-]` (no path separators).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod cursor;
mod faults;
mod file;
mod follower;
mod health;
mod queue;
mod reader;
mod row;
mod tail;
mod writer;

pub use cursor::Cursor;

/// Where the audit log of a state dir lives.
pub fn audit_dir(state_dir: &std::path::Path) -> std::path::PathBuf {
    state_dir.join("audit")
}

/// The log's segment files in `dir`, oldest first, each with its first seq
/// (for retention, which removes whole segments).
pub fn list_segments(dir: &std::path::Path) -> Result<Vec<(u64, std::path::PathBuf)>, AuditError> {
    file::list_files(dir)
}
pub use faults::AuditFaults;
pub use file::{CorruptRow, RecoveryReport, Truncation, file_name, inspect, recover};
pub use follower::Follower;
pub use health::{AuditHealth, AuditHealthSnapshot};
pub use queue::{AuditLog, AuditQueue, Pending, QUEUE_CAPACITY};
pub use reader::{AuditReader, ReadPosition, RowIter};
pub use row::{AuditRow, NewRow, RowHead, RowRef, RowView, SEQ_PLACEHOLDER, seam_matches};
pub use tail::{TailOptions, tail_command};
pub use writer::{AuditMsg, AuditWriter, AuditWriterArgs, AuditWriterState, copy_stream};

/// When an appended row counts as durable, and therefore when the append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// `fsync` after every row, one at a time.
    Always,
    /// Group commit: one write + `fsync` covers every row queued while the previous sync ran.
    #[default]
    Batch,
    /// Never `fsync`; acknowledged once the row reached the OS page cache.
    Never,
}

/// What went wrong in the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file or directory operation failed.
    #[error("audit i/o failed on {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A complete line of the log does not parse as a row.
    #[error("corrupt audit row in {path} at byte {offset}: {reason}")]
    CorruptRow {
        /// The file holding the line.
        path: PathBuf,
        /// Byte offset of the line's start.
        offset: u64,
        /// Why it does not parse.
        reason: String,
    },
    /// A cursor name is empty, too long, or contains a character other than `[A-Za-z0-9._-]`.
    #[error(
        "invalid cursor name {0:?}: use 1 to 128 characters from [A-Za-z0-9._-], not starting with '.'"
    )]
    InvalidCursorName(String),
    /// A cursor file does not hold a seq.
    #[error("corrupt cursor file {path}: {reason}")]
    CorruptCursor {
        /// The cursor file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The queue is full (the log has not been writable for a while), or, for
    /// a client's row, half full; the row was not queued.
    #[error("the audit queue is full; the row was not queued")]
    QueueFull,
    /// The request was dropped without an answer (the process is shutting down).
    #[error("audit writer dropped the request before it was committed")]
    WriterGone,
    /// The writer thread could not be started or stopped.
    #[error("audit writer thread failed: {0}")]
    WriterThread(String),
    /// Cluster mode: the stream could not be reached, written or read.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// Writing the output of `warden audit tail` failed.
    #[error("audit tail output failed: {0}")]
    Output(#[source] std::io::Error),
}

impl AuditError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod test_support;
