//! The writer thread: leader-style group commit over the shared queue.
//!
//! It blocks for the first queued item, takes everything queued behind it (up
//! to `batch_max` rows; one row with `fsync = always`), does one `write_all`
//! and, per policy, one `sync_data`, and only then answers the callers. A
//! failed attempt truncates the file back to its pre-batch length, keeps the
//! batch, and retries with exponential backoff until it succeeds or the
//! instance is stopped (then the batch goes back to the head of the queue for
//! the next instance).

use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime};

use super::super::faults;
use super::super::file::{file_name, parse_file_name, sync_dir};
use super::super::queue::{Item, Reply, Shared, StopFlag};
use super::super::row::stamp_time;
use super::super::{AuditError, AuditFaults, AuditHealth, FsyncPolicy, RecoveryReport};

/// The settings the thread runs with.
pub(super) struct CommitConfig {
    pub(super) dir: PathBuf,
    pub(super) fsync: FsyncPolicy,
    pub(super) batch_max: usize,
    pub(super) rotate_bytes: u64,
    pub(super) retry_min: Duration,
    pub(super) retry_max: Duration,
    pub(super) faults: Option<Arc<AuditFaults>>,
    pub(super) health: Arc<AuditHealth>,
}

pub(super) struct Committer {
    config: CommitConfig,
    shared: Arc<Shared>,
    file: File,
    path: PathBuf,
    /// Length of the file up to the last committed batch.
    len: u64,
    /// The file may hold bytes past `len` from a failed attempt.
    dirty: bool,
    next_seq: u64,
    stop: Arc<StopFlag>,
    /// Only used to cut a backoff wait short when stopping.
    wake: mpsc::Receiver<()>,
}

impl Committer {
    /// Opens the file to continue after recovery: the newest one, unless it is
    /// empty and named for another seq (a rotation whose first write failed).
    pub(super) fn open(
        config: CommitConfig,
        shared: Arc<Shared>,
        report: &RecoveryReport,
        stop: Arc<StopFlag>,
        wake: mpsc::Receiver<()>,
    ) -> Result<Self, AuditError> {
        let next_seq = report.next_seq();
        let path = match &report.newest_file {
            Some(path) => {
                let len = fs::metadata(path)
                    .map_err(|e| AuditError::io(path, e))?
                    .len();
                let first = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(parse_file_name);
                if len == 0 && first != Some(next_seq) {
                    // Empty, so removing it loses nothing; a wrong name would misorder files.
                    fs::remove_file(path).map_err(|e| AuditError::io(path, e))?;
                    config.dir.join(file_name(next_seq))
                } else {
                    path.clone()
                }
            }
            None => config.dir.join(file_name(next_seq)),
        };
        let file = open_append(&path)?;
        if config.fsync != FsyncPolicy::Never {
            sync_dir(&config.dir)?;
        }
        let len = file.metadata().map_err(|e| AuditError::io(&path, e))?.len();
        Ok(Self {
            config,
            shared,
            file,
            path,
            len,
            dirty: false,
            next_seq,
            stop,
            wake,
        })
    }

    pub(super) fn run(mut self) {
        while let Some((batch, owed)) = self.next_batch() {
            let items = batch.len();
            if !self.commit(batch) {
                return;
            }
            if owed {
                self.stop.committed(items);
            }
        }
    }

    /// Blocks for the first item, then takes what is queued behind it; the
    /// flag says whether the batch counts against a graceful stop's debt
    /// (taken after the stop was asked for, decided under the queue lock).
    fn next_batch(&self) -> Option<(Vec<Item>, bool)> {
        let mut queue = self.shared.items();
        loop {
            if self.stop.should_exit(queue.is_empty()) {
                return None;
            }
            if !queue.is_empty() {
                break;
            }
            queue = self
                .shared
                .ready
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let max_rows = match self.config.fsync {
            FsyncPolicy::Always => 1,
            FsyncPolicy::Batch | FsyncPolicy::Never => self.config.batch_max,
        };
        let mut batch = Vec::new();
        let mut rows = 0;
        let dropped = self.shared.dropped.swap(0, Ordering::SeqCst);
        if dropped > 0 {
            // First in the batch, so the gap is on record before what follows it.
            let row = crate::events::row(&crate::events::service::RowsDropped {
                rows: dropped,
                reason: "the audit queue was full while the log was not writable".to_owned(),
            })
            .component("audit");
            batch.push(Item::Row(row, Reply::None));
            rows += 1;
        }
        while let Some(front) = queue.front() {
            if matches!(front, Item::Row(..)) {
                if rows == max_rows {
                    break;
                }
                rows += 1;
            }
            batch.extend(queue.pop_front());
        }
        Some((batch, self.stop.is_draining()))
    }

    /// Writes one batch until it is durable; false if stopped first (the
    /// batch is then back in the queue, unacknowledged).
    fn commit(&mut self, batch: Vec<Item>) -> bool {
        let ts = stamp_time(SystemTime::now());
        let mut buf = Vec::new();
        let mut seq = self.next_seq;
        for item in &batch {
            if let Item::Row(row, _) = item {
                row.encode_stamped(seq, &ts, &mut buf);
                seq += 1;
            }
        }
        let rows = seq - self.next_seq;
        let barrier = batch.iter().any(|item| matches!(item, Item::Barrier(_)));
        let sync = self.config.fsync != FsyncPolicy::Never || barrier;
        let mut backoff = self.config.retry_min;
        let mut failures = 0u32;
        while let Err(error) = self.try_write(&buf, sync) {
            failures += 1;
            if self.config.health.record_error(error.to_string()) {
                tracing::error!(
                    error = %error,
                    queued = rows,
                    "Audit write failed; rows are held unacknowledged and retried."
                );
            }
            match self.wake.recv_timeout(backoff) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                    self.shared.push_front(batch);
                    return false;
                }
            }
            backoff = (backoff * 2).min(self.config.retry_max);
        }
        self.len += buf.len() as u64;
        self.next_seq = seq;
        let last = seq - 1;
        self.config.health.record_batch(rows, sync, last);
        if rows > 0 {
            self.shared.durable.send_replace(last);
        }
        if self.config.health.clear_fault() {
            tracing::warn!(failures, last_seq = last, "Audit writes recovered.");
        }
        let mut seq = last + 1 - rows;
        for item in batch {
            match item {
                Item::Row(_, reply) => {
                    reply.send(Ok(seq));
                    seq += 1;
                }
                Item::Barrier(reply) => reply.send(Ok(last)),
            }
        }
        true
    }

    fn try_write(&mut self, buf: &[u8], sync: bool) -> Result<(), AuditError> {
        if self.dirty {
            self.file
                .set_len(self.len)
                .map_err(|e| AuditError::io(&self.path, e))?;
            self.dirty = false;
        }
        if !buf.is_empty() && self.len > 0 && self.len >= self.config.rotate_bytes {
            self.rotate()?;
        }
        let faults = self.config.faults.as_deref();
        let mut result = Ok(());
        if !buf.is_empty() {
            result = faults::write_all(faults, &mut self.file, buf);
        }
        if result.is_ok() && sync {
            result = faults::sync_data(faults, &self.file);
        }
        result.map_err(|e| {
            // Never leave a torn row that a later good row would follow.
            self.dirty = self.file.set_len(self.len).is_err();
            AuditError::io(&self.path, e)
        })
    }

    fn rotate(&mut self) -> Result<(), AuditError> {
        let path = self.config.dir.join(file_name(self.next_seq));
        faults::rotate(self.config.faults.as_deref()).map_err(|e| AuditError::io(&path, e))?;
        let file = open_append(&path)?;
        if self.config.fsync != FsyncPolicy::Never {
            sync_dir(&self.config.dir)?;
        }
        self.len = file.metadata().map_err(|e| AuditError::io(&path, e))?.len();
        self.file = file;
        self.path = path;
        Ok(())
    }
}

/// Segments are 0600: rows carry operations data another local user must not read.
fn open_append(path: &PathBuf) -> Result<File, AuditError> {
    crate::files::open_private_append(path).map_err(|e| AuditError::io(path, e))
}
