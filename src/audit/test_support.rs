//! Helpers shared by the audit tests: start a writer, write rows by hand, read
//! everything back, and wait for a condition without blind sleeps.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use ractor::{Actor, ActorRef};
use tokio::task::JoinHandle;

use super::file::list_files;
use super::{AuditLog, AuditMsg, AuditReader, AuditRow, AuditWriter, AuditWriterArgs, NewRow};

/// A running writer with its client.
pub(crate) struct Running {
    pub(crate) log: AuditLog,
    pub(crate) args: AuditWriterArgs,
    pub(crate) actor: ActorRef<AuditMsg>,
    pub(crate) handle: JoinHandle<()>,
}

/// Args on `dir` with fast retries, ready to tweak.
pub(crate) fn args(dir: &Path) -> (AuditLog, AuditWriterArgs) {
    let (log, queue) = AuditLog::new();
    let mut args = AuditWriterArgs::new(dir, queue);
    args.retry_min = Duration::from_millis(1);
    args.retry_max = Duration::from_millis(20);
    (log, args)
}

pub(crate) async fn spawn(log: AuditLog, args: AuditWriterArgs) -> Running {
    let (actor, handle) = Actor::spawn(None, AuditWriter, args.clone()).await.unwrap();
    Running {
        log,
        args,
        actor,
        handle,
    }
}

pub(crate) async fn start(dir: &Path) -> Running {
    let (log, args) = args(dir);
    spawn(log, args).await
}

impl Running {
    /// Stops gracefully and waits for the actor (and its thread) to end.
    pub(crate) async fn stop(self) -> (AuditLog, AuditWriterArgs) {
        self.actor.stop(None);
        self.handle.await.unwrap();
        (self.log, self.args)
    }
}

/// A row as the writer would store it, for hand-written files.
pub(crate) fn row(seq: u64, seam: &str) -> AuditRow {
    NewRow::new(seam, serde_json::json!({ "n": seq }))
        .component("test")
        .stamp(seq, SystemTime::UNIX_EPOCH + Duration::from_secs(seq))
}

pub(crate) fn line(seq: u64, seam: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    row(seq, seam).encode_into(&mut buf);
    buf
}

/// Appends raw bytes to a file.
pub(crate) fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
}

/// Every row of the log, panicking on corrupt lines.
pub(crate) fn read_all(dir: &Path) -> Vec<AuditRow> {
    AuditReader::open(dir)
        .unwrap()
        .rows_from(0, None)
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Every line of every file, checking each ends in a newline and parses.
pub(crate) fn raw_lines(dir: &Path) -> Vec<AuditRow> {
    let mut rows = Vec::new();
    for (_, path) in list_files(dir).unwrap() {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{path:?} ends torn"
        );
        for line in text.lines() {
            rows.push(serde_json::from_str(line).unwrap());
        }
    }
    rows
}

/// Asserts `rows` are seqs 1..=n in order.
pub(crate) fn assert_gap_free(rows: &[AuditRow]) {
    let seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    let expected: Vec<u64> = (1..=rows.len() as u64).collect();
    assert_eq!(seqs, expected);
}

/// Polls `cond` every few ms until it holds, failing after `timeout`.
pub(crate) async fn eventually(mut cond: impl FnMut() -> bool, timeout: Duration) {
    let waited = tokio::time::timeout(timeout, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "condition not met within {timeout:?}");
}
