//! Managed processes: the components Warden runs itself (`run` in
//! `[[components]]`).
//!
//! A [`ManagedProcess`] actor owns one process: it spawns the argv (no shell)
//! in its own process group, captures its output into a rotating file,
//! notices its exit at once (a waiter task, no polling) and restarts it on the
//! component's restart ladder, built from [`RestartSettings`] with the
//! supervisors crate's [`Ladder`] (the same concept the supervisors use):
//! the first restart after a stable run is immediate, later ones back off
//! exponentially with jitter, and more than `max_restarts` within `period`
//! makes the process FATAL (no more automatic restarts, [`ManagedEvent::Fatal`]).
//!
//! Messages in: [`ManagedMsg::Restart`] (graceful stop, start, reply with the
//! new pid; also clears FATAL), [`ManagedMsg::Stop`], [`ManagedMsg::Status`].
//! Out: every [`ManagedEvent`] is published on the `events` port and written
//! as a `managed.*` audit row. [`ManagedStatus`] is the shared view that
//! outlives the actor.
//!
//! # Guarantees
//! - A graceful stop sends `stop_signal` to the group, waits `stop_timeout`,
//!   then SIGKILLs the group; the process is always reaped. The mailbox is not
//!   blocked while waiting: `Status` answers during a stop.
//! - An exit Warden asked for is `expected` and does not count on the ladder.
//! - A killed actor leaves no orphan: dropping its state SIGKILLs the group
//!   and the `kill_on_drop` child; `post_stop` stops the process gracefully.
//! - Restart delays are timers (`send_after`), never sleeps in a handler.
//! - At most one copy runs across a crash of Warden: each running group is
//!   recorded in the state dir and the next boot stops what the records
//!   name ([`stop_previous`]) before starting anything; the kernel also
//!   SIGKILLs the group leader when Warden dies (`PR_SET_PDEATHSIG`).
//! - A child never sees Warden's `WARDEN__*` variables; with
//!   `inherit_env = false` it sees only its `env` plus `PATH`.
//! - A ladder-driven restart is automation: while its [`AutomationHold`]
//!   holds (PAUSED, or an incident froze the component) it does not start;
//!   it writes one `managed.restart_held` row and starts once the hold lifts.
//!   Its `escalation.action_started` row is queued with the check, so it
//!   never follows the pause or freeze row. A requested restart
//!   ([`ManagedMsg::Restart`]) is checked by whoever asks.
//!
//! # Layout
//! - `actor.rs`: the [`ManagedProcess`] actor and its messages.
//! - `process.rs`: spawning, the exit waiter, process-group signals.
//! - `output.rs`: output capture and rotation.
//! - `records.rs`: process-group records and [`stop_previous`].
//! - `status.rs`: [`ManagedStatus`] and [`ManagedSnapshot`].
//! - `order.rs`: [`start_order`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use warden_supervisors::{Backoff, Ladder, Rung};

use crate::settings::RestartSettings;

mod actor;
mod order;
mod output;
mod process;
mod records;
mod status;

pub use actor::{AutomationHold, ChildExit, ManagedArgs, ManagedMsg, ManagedProcess, ManagedState};
pub use order::start_order;
pub use output::{MAX_LINE, OUTPUT_FILE};
pub use records::{PreviousGroup, RECORDS_DIR, stop_previous};
pub use status::{LastExit, ManagedSnapshot, ManagedStatus, ProcessState};

/// Why a requested restart ([`ManagedMsg::Restart`]) has no new pid.
/// `Clone`: one outcome answers every caller waiting on the same stop.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RestartError {
    /// The argv could not be spawned.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// `run[0]`.
        program: String,
        /// What the OS said.
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
    /// A stop was requested while the restart waited for the old run to exit.
    #[error("a stop was requested")]
    StopRequested,
    /// The actor stopped before the restart happened.
    #[error("the managed process actor is stopping")]
    ActorStopping,
}

/// What happened to a managed process. Each is also a `managed.<event>` audit row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ManagedEvent {
    /// A process was started.
    Started {
        /// Component name.
        component: String,
        /// Its pid (also its process group).
        pid: u32,
        /// The ladder attempt that started it: 0 for the first start or a
        /// requested restart, n for the n-th automatic restart in the window.
        attempt: u32,
    },
    /// A process exited.
    Exited {
        /// Component name.
        component: String,
        /// Its pid.
        pid: u32,
        /// Exit code, when it exited.
        code: Option<i32>,
        /// Signal, when one killed it.
        signal: Option<i32>,
        /// Whether Warden asked it to stop (`Stop`, `Restart`, actor stop).
        expected: bool,
        /// How long it ran, in milliseconds.
        uptime_ms: u64,
        /// A requested stop: whether the group had to be killed after
        /// `stop_timeout`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        forced: Option<bool>,
        /// A requested stop: `stop` or `restart`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requested: Option<String>,
        /// A requested restart: why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// An automatic restart will happen after `delay_ms`.
    RestartScheduled {
        /// Component name.
        component: String,
        /// Restarts within the window, including this one.
        attempt: u32,
        /// Delay before the start, in milliseconds.
        delay_ms: u64,
    },
    /// Too many restarts within the period: no more automatic restarts.
    Fatal {
        /// Component name.
        component: String,
        /// Failures within the window.
        restarts: u32,
        /// The window (`restart.period`), in milliseconds.
        within_ms: u64,
        /// Why, for operators.
        reason: String,
    },
    /// The process could not be spawned (counts as a failure on the ladder).
    StartFailed {
        /// Component name.
        component: String,
        /// The spawn error.
        error: String,
    },
    /// The process was stopped on request and will not be restarted.
    Stopped {
        /// Component name.
        component: String,
        /// Who asked, or why.
        reason: String,
    },
}

impl ManagedEvent {
    /// The audit seam: `managed.started`, `managed.exited`, ….
    pub fn seam(&self) -> &'static str {
        match self {
            Self::Started { .. } => "managed.started",
            Self::Exited { .. } => "managed.exited",
            Self::RestartScheduled { .. } => "managed.restart_scheduled",
            Self::Fatal { .. } => "managed.fatal",
            Self::StartFailed { .. } => "managed.start_failed",
            Self::Stopped { .. } => "managed.stopped",
        }
    }

    /// The component concerned.
    pub fn component(&self) -> &str {
        match self {
            Self::Started { component, .. }
            | Self::Exited { component, .. }
            | Self::RestartScheduled { component, .. }
            | Self::Fatal { component, .. }
            | Self::StartFailed { component, .. }
            | Self::Stopped { component, .. } => component,
        }
    }
}

/// The restart ladder of a managed process: one rung `"restart"` allowing
/// `max_restarts` within `period`, backing off from `backoff_min` to
/// `backoff_max` with `backoff_jitter`, reset after `stable_after` without
/// a failure.
pub fn restart_ladder(restart: &RestartSettings) -> Ladder {
    Ladder::single(
        Rung::new("restart", restart.max_restarts, restart.period).backoff(Backoff {
            min: restart.backoff_min,
            max: restart.backoff_max,
            jitter: restart.backoff_jitter,
            reset_after: restart.stable_after,
        }),
    )
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
