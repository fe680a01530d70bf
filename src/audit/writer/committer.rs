//! The writer thread: leader-style group commit over the shared queue.
//!
//! It blocks for the first queued item, takes everything queued behind it (up
//! to `batch_max` rows; one row with `fsync = always`), does one `write_all`
//! and, per policy, one `sync_data`, and only then answers the callers. A
//! failed attempt truncates the file back to its pre-batch length, keeps the
//! batch, and retries with exponential backoff until it succeeds or the
//! instance is stopped (then the batch goes back to the head of the queue for
//! the next instance).
//!
//! In cluster mode (`stream` set) a batch is first published to the
//! JetStream stream, which gives each row its seq, and then the stream is
//! copied in order into the same local files, so local readers see one
//! order for the whole cluster. When the stream's seqs for a batch follow
//! the local copy without a gap (no other node appended in between), the
//! batch is written from its own bytes; otherwise the copy reads the
//! stream up to the batch's last seq. Between batches, rows other nodes
//! appended are copied as they arrive. Callers are answered only once both
//! the stream and the local copy hold their rows.

use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::runtime::Handle;

use crate::cluster::{ClusterError, StreamLog, StreamReader};

use super::super::faults;
use super::super::file::{file_name, parse_file_name, sync_dir};
use super::super::queue::{Item, Reply, Shared, StopFlag};
use super::super::row::{restamp, stamp_time};
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
    /// Cluster mode: the stream that is the log, and the runtime its
    /// client runs on (this thread drives its futures with `block_on`).
    pub(super) stream: Option<(Arc<StreamLog>, Handle)>,
}

/// How long an idle writer in cluster mode waits for a local append before
/// it copies what other nodes appended meanwhile.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// The writer's side of the stream: where it reads the stream from.
struct StreamSink {
    log: Arc<StreamLog>,
    runtime: Handle,
    /// Dropped after any read or write error, so the next copy starts
    /// again from the local log's end.
    reader: Option<StreamReader>,
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
    stream: Option<StreamSink>,
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
        let stream = config.stream.clone().map(|(log, runtime)| StreamSink {
            log,
            runtime,
            reader: None,
        });
        let mut committer = Self {
            config,
            shared,
            file,
            path,
            len,
            dirty: false,
            next_seq,
            stop,
            wake,
            stream,
        };
        committer.catch_up()?;
        Ok(committer)
    }

    /// Cluster mode: copies the stream up to its current end before the
    /// writer takes appends, so a node that was away (or starts with an
    /// empty state dir) has the whole log, in the cluster's order.
    fn catch_up(&mut self) -> Result<(), AuditError> {
        let Some(sink) = &self.stream else {
            return Ok(());
        };
        let last = sink.runtime.block_on(sink.log.last_seq())?;
        let local = self.next_seq - 1;
        if local > last {
            return Err(AuditError::from(ClusterError::LocalAhead {
                stream: sink.log.name().to_owned(),
                local,
                stream_last: last,
            }));
        }
        if last >= self.next_seq {
            tracing::info!(
                stream = sink.log.name(),
                from = self.next_seq,
                to = last,
                "Copying the cluster's audit stream into the local log."
            );
            self.copy_stream(Some(last))?;
        }
        Ok(())
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
            if self.stream.is_some() {
                let (guard, waited) = self
                    .shared
                    .ready
                    .wait_timeout(queue, IDLE_POLL)
                    .unwrap_or_else(PoisonError::into_inner);
                queue = guard;
                if waited.timed_out() && queue.is_empty() && !self.stop.should_exit(true) {
                    // An empty batch: copy what other nodes appended.
                    return Some((Vec::new(), false));
                }
                continue;
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
        if self.stream.is_some() {
            return self.commit_stream(batch);
        }
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
        if self.retrying(rows, |me| me.try_write(&buf, sync)).is_none() {
            self.shared.push_front(batch);
            return false;
        }
        self.committed(buf.len(), seq, rows, sync);
        let first = seq - rows;
        answer(batch, first..seq, seq - 1);
        true
    }

    /// Runs `attempt` until it succeeds, with exponential backoff, keeping
    /// the fault on record; `None` if the writer was stopped first.
    fn retrying<T, E: std::fmt::Display>(
        &mut self,
        rows: u64,
        mut attempt: impl FnMut(&mut Self) -> Result<T, E>,
    ) -> Option<T> {
        let mut backoff = self.config.retry_min;
        let mut failures = 0u32;
        loop {
            match attempt(self) {
                Ok(value) => {
                    if self.config.health.clear_fault() {
                        tracing::warn!(
                            failures,
                            last_seq = self.next_seq - 1,
                            "Audit writes recovered."
                        );
                    }
                    return Some(value);
                }
                Err(error) => {
                    failures += 1;
                    if self.config.health.record_error(error.to_string()) {
                        tracing::error!(
                            error = %error,
                            queued = rows,
                            "Audit write failed; rows are held unacknowledged and retried."
                        );
                    }
                }
            }
            match self.wake.recv_timeout(backoff) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return None,
            }
            backoff = (backoff * 2).min(self.config.retry_max);
        }
    }

    /// Records `bytes` appended to the file, holding rows up to `next - 1`.
    fn committed(&mut self, bytes: usize, next: u64, rows: u64, sync: bool) {
        self.len += bytes as u64;
        self.next_seq = next;
        let last = next - 1;
        self.config.health.record_batch(rows, sync, last);
        if rows > 0 {
            self.shared.durable.send_replace(last);
        }
    }

    /// Cluster mode: publishes the batch, then makes the local copy reach
    /// the batch's last seq before answering anyone.
    fn commit_stream(&mut self, mut batch: Vec<Item>) -> bool {
        let ts = stamp_time(SystemTime::now());
        let mut rows = Vec::new();
        for item in &mut batch {
            if let Item::Row(row, _) = item {
                let id = *row.publish_id.get_or_insert_with(next_publish_id);
                let mut payload = Vec::new();
                row.encode_unsequenced(&ts, &mut payload);
                rows.push((message_id(self.node(), id), Bytes::from(payload)));
            }
        }
        let count = rows.len() as u64;
        let seqs = if rows.is_empty() {
            Vec::new()
        } else {
            match self.retrying(count, |me| me.publish(&rows)) {
                Some(seqs) => seqs,
                None => {
                    self.shared.push_front(batch);
                    return false;
                }
            }
        };
        let own = seqs.first().is_some_and(|&first| {
            first == self.next_seq && seqs.iter().zip(first..).all(|(&seq, want)| seq == want)
        });
        let barrier = batch.iter().any(|item| matches!(item, Item::Barrier(_)));
        let sync = self.config.fsync != FsyncPolicy::Never || barrier;
        let copied = if own {
            // Nobody appended in between: the batch's own bytes are the copy.
            // The reader skips these seqs when it delivers them later.
            let mut buf = Vec::new();
            for ((_, payload), &seq) in rows.iter().zip(&seqs) {
                stream_line(payload, seq, &mut buf);
            }
            let next = self.next_seq + count;
            self.retrying(count, |me| me.try_write(&buf, sync))
                .map(|()| self.committed(buf.len(), next, count, sync))
        } else {
            let target = seqs.iter().copied().max();
            self.retrying(count, |me| me.copy_stream(target))
        };
        if copied.is_none() {
            // Stored in the stream, not yet here: a later instance publishes
            // the same ids again and gets the same seqs back.
            self.shared.push_front(batch);
            return false;
        }
        answer(batch, seqs, self.next_seq - 1);
        true
    }

    fn node(&self) -> &str {
        self.stream.as_ref().map_or("", |sink| sink.log.node())
    }

    fn publish(&mut self, rows: &[(String, Bytes)]) -> Result<Vec<u64>, ClusterError> {
        let Some(sink) = &self.stream else {
            return Ok(Vec::new());
        };
        sink.runtime.block_on(sink.log.publish(rows))
    }

    /// Copies the stream into the local files: at least up to `target`,
    /// and whatever else has already arrived.
    fn copy_stream(&mut self, target: Option<u64>) -> Result<(), AuditError> {
        let sync = self.config.fsync != FsyncPolicy::Never;
        let batch_max = self.config.batch_max as u64;
        loop {
            let (buf, next, rows) = match self.read_stream(target, batch_max) {
                Ok(read) => read,
                Err(error) => {
                    if let Some(sink) = &mut self.stream {
                        sink.reader = None;
                    }
                    return Err(AuditError::from(error));
                }
            };
            if rows == 0 {
                return Ok(());
            }
            if let Err(error) = self.try_write(&buf, sync) {
                // The rows were taken from the reader: read them again.
                if let Some(sink) = &mut self.stream {
                    sink.reader = None;
                }
                return Err(error);
            }
            self.committed(buf.len(), next, rows, sync);
            let more_due = target.is_some_and(|t| self.next_seq <= t);
            if !more_due && rows < batch_max {
                return Ok(());
            }
        }
    }

    /// Up to `max` rows from the stream after the local copy's end, as
    /// lines: (lines, the seq after them, rows).
    fn read_stream(
        &mut self,
        target: Option<u64>,
        max: u64,
    ) -> Result<(Vec<u8>, u64, u64), ClusterError> {
        let mut next = self.next_seq;
        let Some(sink) = &mut self.stream else {
            return Ok((Vec::new(), next, 0));
        };
        let runtime = sink.runtime.clone();
        let reader = match &mut sink.reader {
            Some(reader) => reader,
            None => sink.reader.insert(runtime.block_on(sink.log.reader(next))?),
        };
        let mut buf = Vec::new();
        let mut rows = 0;
        while rows < max {
            let due = target.is_some_and(|t| next <= t);
            let row = if due {
                Some(runtime.block_on(reader.next_due())?)
            } else {
                runtime.block_on(reader.next_within(Duration::ZERO))?
            };
            let Some((seq, payload)) = row else { break };
            if seq < next {
                continue; // written from the batch's own bytes already
            }
            stream_line(&payload, seq, &mut buf);
            next = seq + 1;
            rows += 1;
        }
        Ok((buf, next, rows))
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

/// Answers a committed batch: each row with its seq, each barrier with
/// `last`, the last durable seq.
fn answer(batch: Vec<Item>, seqs: impl IntoIterator<Item = u64>, last: u64) {
    let mut seqs = seqs.into_iter();
    for item in batch {
        match item {
            Item::Row(_, reply) => match seqs.next() {
                Some(seq) => reply.send(Ok(seq)),
                None => reply.send(Err(AuditError::WriterGone)),
            },
            Item::Barrier(reply) => reply.send(Ok(last)),
        }
    }
}

/// The local line of a stream row. A payload that is not a row (written
/// by something other than Warden) still takes its seq, as a row that says
/// so, so the local copy stays gap-free and in step with the stream.
fn stream_line(payload: &[u8], seq: u64, buf: &mut Vec<u8>) {
    let start = buf.len();
    if let Err(error) = restamp(payload, seq, buf) {
        buf.truncate(start);
        let row = crate::audit::NewRow::new(
            "cluster.row_unreadable",
            serde_json::json!({ "reason": error.to_string(), "bytes": payload.len() }),
        )
        .component("audit");
        row.encode_stamped(seq, &stamp_time(SystemTime::now()), buf);
    }
}

/// Ids of published rows: unique to this process, so a row retried by a
/// later writer instance keeps its id and no two rows ever share one.
fn next_publish_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The `Nats-Msg-Id` of a row: node, process start and the row's id.
fn message_id(node: &str, id: u64) -> String {
    static BOOT: OnceLock<String> = OnceLock::new();
    let boot = BOOT.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{nanos:x}-{:x}", std::process::id())
    });
    format!("{node}.{boot}.{id}")
}

/// Segments are 0600: rows carry operations data another local user must not read.
fn open_append(path: &PathBuf) -> Result<File, AuditError> {
    crate::files::open_private_append(path).map_err(|e| AuditError::io(path, e))
}
