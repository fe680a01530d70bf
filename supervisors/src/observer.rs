//! The observer hook: every supervisory decision, for audit, metrics and traces.

use std::time::Duration;

use crate::ExitKind;

/// Receives every supervision event. Called synchronously from the
/// supervisor's handler, so it must not block (forward to a channel or log).
pub trait Observer: Send + Sync + 'static {
    /// Called once per event.
    fn observe(&self, event: &SupervisionEvent);
}

/// An observer that ignores everything (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {
    fn observe(&self, _event: &SupervisionEvent) {}
}

/// A supervisory decision. `supervisor` is the name from the [`SupervisorSpec`](crate::SupervisorSpec).
#[derive(Debug, Clone, PartialEq)]
pub enum SupervisionEvent {
    /// A child was started (initially, dynamically or by a restart).
    ChildStarted {
        /// Supervisor name.
        supervisor: String,
        /// Child id.
        child: String,
        /// ractor actor id of the new instance.
        actor_id: String,
    },
    /// A child exited on its own (not stopped by its supervisor).
    ChildExited {
        /// Supervisor name.
        supervisor: String,
        /// Child id.
        child: String,
        /// How it exited.
        exit: ExitKind,
    },
    /// A restart was decided and will happen after `delay`.
    RestartScheduled {
        /// Supervisor name.
        supervisor: String,
        /// Child id.
        child: String,
        /// Restarts within the intensity window, including this one.
        attempt: u32,
        /// Backoff before the restart.
        delay: Duration,
        /// Why the child is restarted (its own exit, or `Shutdown` for a
        /// sibling stopped by the strategy).
        reason: ExitKind,
    },
    /// A child was restarted.
    ChildRestarted {
        /// Supervisor name.
        supervisor: String,
        /// Child id.
        child: String,
        /// Restarts within the intensity window, including this one.
        attempt: u32,
    },
    /// A start function failed.
    StartFailed {
        /// Supervisor name.
        supervisor: String,
        /// Child id.
        child: String,
        /// The spawn error.
        error: String,
    },
    /// The supervisor stopped a child (strategy, terminate or shutdown).
    ChildStopped {
        /// Supervisor name.
        supervisor: String,
        /// Child id.
        child: String,
        /// True when it was killed (shutdown timeout ran out, or brutal kill).
        killed: bool,
    },
    /// Restart intensity exceeded: the supervisor stops its children and fails upward.
    Meltdown {
        /// Supervisor name.
        supervisor: String,
        /// The rung's restart budget that was exceeded.
        restarts: u32,
        /// The rung's window.
        within: Duration,
    },
}
