//! [`AuditHealth`]: the writer's counters and current fault, shared with the API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use serde::Serialize;

/// Live health of the audit writer. Written by the writer thread, read by
/// anyone (the HTTP API, tests); one value outlives writer restarts.
#[derive(Debug, Default)]
pub struct AuditHealth {
    rows_written: AtomicU64,
    batches: AtomicU64,
    fsyncs: AtomicU64,
    write_errors: AtomicU64,
    last_durable_seq: AtomicU64,
    fault: Mutex<Option<Fault>>,
}

#[derive(Debug, Clone)]
struct Fault {
    last_error: String,
    since: SystemTime,
}

/// A point-in-time copy of [`AuditHealth`], serialisable for the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditHealthSnapshot {
    /// Rows acknowledged since the process started.
    pub rows_written: u64,
    /// Batches committed (one write each).
    pub batches: u64,
    /// `fdatasync` calls that succeeded.
    pub fsyncs: u64,
    /// Failed write, sync or rotate attempts.
    pub write_errors: u64,
    /// Highest acknowledged seq (0 when none yet).
    pub last_durable_seq: u64,
    /// The current fault, while the writer is failing.
    pub last_error: Option<String>,
    /// When the current fault episode started (RFC 3339), while failing.
    pub failing_since: Option<String>,
}

impl AuditHealth {
    /// A fresh value with zero counters and no fault.
    pub fn new() -> Self {
        Self::default()
    }

    /// Copies the current values.
    pub fn snapshot(&self) -> AuditHealthSnapshot {
        let fault = self.fault_guard().clone();
        AuditHealthSnapshot {
            rows_written: self.rows_written.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
            last_durable_seq: self.last_durable_seq.load(Ordering::Relaxed),
            last_error: fault.as_ref().map(|f| f.last_error.clone()),
            failing_since: fault
                .as_ref()
                .map(|f| humantime::format_rfc3339_millis(f.since).to_string()),
        }
    }

    /// The current fault, if the writer is failing.
    pub fn last_error(&self) -> Option<String> {
        self.fault_guard().as_ref().map(|f| f.last_error.clone())
    }

    /// Whether the writer is currently failing to write.
    pub fn is_failing(&self) -> bool {
        self.fault_guard().is_some()
    }

    /// Records a committed batch (`rows` may be 0 for a flush-only sync).
    pub(crate) fn record_batch(&self, rows: u64, synced: bool, last_seq: u64) {
        if rows > 0 {
            self.rows_written.fetch_add(rows, Ordering::Relaxed);
            self.batches.fetch_add(1, Ordering::Relaxed);
        }
        if synced {
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        self.last_durable_seq.fetch_max(last_seq, Ordering::Relaxed);
    }

    /// Seeds the durable seq after recovery.
    pub(crate) fn set_durable_seq(&self, seq: u64) {
        self.last_durable_seq.fetch_max(seq, Ordering::Relaxed);
    }

    /// Records a failed attempt; true when it starts a new fault episode.
    pub(crate) fn record_error(&self, error: String) -> bool {
        self.write_errors.fetch_add(1, Ordering::Relaxed);
        let mut fault = self.fault_guard();
        let started = fault.is_none();
        let since = fault.as_ref().map_or_else(SystemTime::now, |f| f.since);
        *fault = Some(Fault {
            last_error: error,
            since,
        });
        started
    }

    /// Ends the fault episode; true if there was one.
    pub(crate) fn clear_fault(&self) -> bool {
        self.fault_guard().take().is_some()
    }

    fn fault_guard(&self) -> std::sync::MutexGuard<'_, Option<Fault>> {
        // The guarded value is always consistent (plain assignments), so a
        // poisoned lock is still safe to use.
        self.fault.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
