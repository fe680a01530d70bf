//! [`ManagedStatus`]: the shared, restart-surviving view of one managed process.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;

/// Lifecycle state of a managed process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProcessState {
    /// Being spawned.
    Starting,
    /// Running.
    Running,
    /// Exited; a restart is scheduled.
    Backoff,
    /// Stopped on request (or never started).
    #[default]
    Stopped,
    /// Restarted too often within the period: no more automatic restarts
    /// until a `Restart` request.
    Fatal,
}

/// How the last run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastExit {
    /// Its pid.
    pub pid: u32,
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Signal, when one killed it.
    pub signal: Option<i32>,
    /// Whether Warden asked it to stop.
    pub expected: bool,
    /// How long it ran, in milliseconds.
    pub uptime_ms: u64,
    /// When it exited (RFC 3339).
    pub at: String,
}

/// A copy of the status at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ManagedSnapshot {
    /// Lifecycle state.
    pub state: ProcessState,
    /// Pid of the running process, if any.
    pub pid: Option<u32>,
    /// Starts after the first one (automatic and requested), over the life
    /// of this status value.
    pub restarts: u32,
    /// How the last run ended.
    pub last_exit: Option<LastExit>,
    /// The last start error, cleared by a successful start.
    pub last_error: Option<String>,
    /// When `state` last changed (RFC 3339).
    pub since: Option<String>,
}

/// Shared status of one managed process. Made once by its owner and passed in
/// [`ManagedArgs`](super::ManagedArgs), so it survives restarts of the actor.
#[derive(Debug, Clone, Default)]
pub struct ManagedStatus(Arc<Mutex<ManagedSnapshot>>);

impl ManagedStatus {
    /// A copy of the current status.
    pub fn snapshot(&self) -> ManagedSnapshot {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, ManagedSnapshot> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_state(&self, state: ProcessState, pid: Option<u32>) {
        let mut snapshot = self.lock();
        if snapshot.state != state || snapshot.since.is_none() {
            snapshot.since = Some(now());
        }
        snapshot.state = state;
        snapshot.pid = pid;
    }

    pub(crate) fn update(&self, change: impl FnOnce(&mut ManagedSnapshot)) {
        change(&mut self.lock());
    }
}

pub(crate) fn now() -> String {
    format!("{:.3}", jiff::Timestamp::now())
}
