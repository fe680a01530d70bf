//! The operational state machine shared by the API and the actors.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The reasons set and cleared explicitly (by the operator, a meltdown, or
/// the boot gates finding a rewound substrate), as opposed to derived ones.
pub const EXPLICIT_REASONS: [&str; 3] = ["operator", "meltdown", "substrate"];

/// Whether Warden may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunState {
    /// Probing, notifying and (where enabled) acting.
    Running,
    /// Probing and notifying, but every action is frozen until the reasons clear.
    Paused,
    /// Shutting down or stopped.
    Stopped,
}

/// What `GET /api/operational-state` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateSnapshot {
    /// The current state.
    pub state: RunState,
    /// Why Warden is paused (empty unless PAUSED), e.g. `audit_unwritable`.
    pub degradation_reasons: Vec<String>,
    /// When the state last changed, RFC 3339 UTC.
    pub since: String,
}

/// A condition that pauses Warden while it holds, checked on every read.
type Condition = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone)]
struct Inner {
    stopped: bool,
    reasons: BTreeSet<String>,
    conditions: Vec<(String, Condition)>,
    since: SystemTime,
    /// Holds (pause, stop) whose rows are queued but not yet durable.
    pending_holds: usize,
}

impl Inner {
    fn all_reasons(&self) -> BTreeSet<String> {
        let mut reasons = self.reasons.clone();
        for (reason, holds) in &self.conditions {
            if holds() {
                reasons.insert(reason.clone());
            }
        }
        reasons
    }

    fn run_state(&self, reasons: &BTreeSet<String>) -> RunState {
        match (self.stopped, reasons.is_empty()) {
            (true, _) => RunState::Stopped,
            (false, true) => RunState::Running,
            (false, false) => RunState::Paused,
        }
    }
}

/// Shared operational state. PAUSED is derived: any degradation reason pauses
/// Warden, and the last reason clearing resumes it, so two independent faults
/// cannot resume each other by accident. Reasons are either set and cleared
/// explicitly ([`OperationalState::pause`]) or derived from a live condition
/// ([`OperationalState::watch`]), such as the audit writer failing to write,
/// which then clears itself the moment the fault does.
#[derive(Clone)]
pub struct OperationalState {
    inner: Arc<Mutex<Inner>>,
}

impl Default for OperationalState {
    fn default() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                stopped: false,
                reasons: BTreeSet::new(),
                conditions: Vec::new(),
                since: SystemTime::now(),
                pending_holds: 0,
            })),
        }
    }
}

impl OperationalState {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A panic while holding this lock cannot leave the set half-updated, so
        // a poisoned lock is still safe to use.
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Adds a degradation reason; returns true when this paused a running Warden.
    pub fn pause(&self, reason: &str) -> bool {
        self.with(|inner| {
            let was_running = !inner.stopped && inner.reasons.is_empty();
            if inner.reasons.insert(reason.to_owned()) && !inner.stopped {
                inner.since = SystemTime::now();
            }
            was_running
        })
    }

    /// Clears one degradation reason; returns true when this resumed Warden.
    pub fn clear(&self, reason: &str) -> bool {
        self.with(|inner| {
            let removed = inner.reasons.remove(reason);
            let resumed = removed && inner.reasons.is_empty() && !inner.stopped;
            if resumed {
                inner.since = SystemTime::now();
            }
            resumed
        })
    }

    /// Clears every explicitly set reason except those in `keep`; derived
    /// reasons ([`watch`](Self::watch)) clear themselves. Returns the
    /// reasons cleared.
    pub fn reset(&self, keep: &[&str]) -> Vec<String> {
        self.with(|inner| {
            let cleared: Vec<String> = inner
                .reasons
                .iter()
                .filter(|reason| !keep.contains(&reason.as_str()))
                .cloned()
                .collect();
            for reason in &cleared {
                inner.reasons.remove(reason);
            }
            if !cleared.is_empty() && !inner.stopped && inner.all_reasons().is_empty() {
                inner.since = SystemTime::now();
            }
            cleared
        })
    }

    /// Pauses Warden with `reason` for as long as `holds` returns true.
    pub fn watch(&self, reason: &str, holds: impl Fn() -> bool + Send + Sync + 'static) {
        self.with(|inner| inner.conditions.push((reason.to_owned(), Arc::new(holds))));
    }

    /// Marks Warden as stopping; it never leaves STOPPED.
    pub fn stop(&self) {
        self.with(|inner| {
            if !inner.stopped {
                inner.stopped = true;
                inner.since = SystemTime::now();
            }
        });
    }

    /// Holds automation from now until the returned guard drops. A pause
    /// asked over the API takes effect only once its row is durable, yet no
    /// action may start after that row: automation is held while the row is
    /// on its way, and released if it is withdrawn.
    pub fn hold_pending(&self) -> PendingHold {
        self.with(|inner| inner.pending_holds += 1);
        PendingHold {
            state: self.clone(),
        }
    }

    /// Whether a hold is being recorded ([`hold_pending`](Self::hold_pending)).
    pub fn is_hold_pending(&self) -> bool {
        self.with(|inner| inner.pending_holds > 0)
    }

    /// The current state.
    pub fn state(&self) -> RunState {
        self.with(|inner| inner.run_state(&inner.all_reasons()))
    }

    /// What `change` would do, run on a copy: the copy's snapshot and what
    /// `change` returned. The real state is untouched, so a change can be
    /// recorded (with its outcome) before it takes effect.
    pub fn preview<T>(&self, change: impl FnOnce(&OperationalState) -> T) -> (StateSnapshot, T) {
        let copy = self.with(|inner| inner.clone());
        let scratch = OperationalState {
            inner: Arc::new(Mutex::new(copy)),
        };
        let outcome = change(&scratch);
        (scratch.snapshot(), outcome)
    }

    /// The state, its reasons and when it last changed.
    pub fn snapshot(&self) -> StateSnapshot {
        self.with(|inner| {
            let reasons = inner.all_reasons();
            StateSnapshot {
                state: inner.run_state(&reasons),
                degradation_reasons: reasons.into_iter().collect(),
                since: humantime::format_rfc3339_millis(inner.since).to_string(),
            }
        })
    }
}

/// Keeps automation held while a pause or stop is being recorded; see
/// [`OperationalState::hold_pending`].
pub struct PendingHold {
    state: OperationalState,
}

impl Drop for PendingHold {
    fn drop(&mut self) {
        self.state
            .with(|inner| inner.pending_holds = inner.pending_holds.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_pause_and_only_the_last_one_resumes() {
        let state = OperationalState::default();
        assert_eq!(state.state(), RunState::Running);
        assert!(state.pause("audit_unwritable"));
        assert!(!state.pause("operator"));
        assert_eq!(
            state.snapshot().degradation_reasons,
            ["audit_unwritable", "operator"]
        );
        assert!(!state.clear("audit_unwritable"));
        assert_eq!(state.state(), RunState::Paused);
        assert!(state.clear("operator"));
        assert_eq!(state.state(), RunState::Running);
    }

    #[test]
    fn watched_conditions_pause_while_they_hold() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let state = OperationalState::default();
        let failing = Arc::new(AtomicBool::new(false));
        let flag = failing.clone();
        state.watch("audit_unwritable", move || flag.load(Ordering::Relaxed));
        assert_eq!(state.state(), RunState::Running);
        failing.store(true, Ordering::Relaxed);
        assert_eq!(state.snapshot().degradation_reasons, ["audit_unwritable"]);
        assert_eq!(state.state(), RunState::Paused);
        failing.store(false, Ordering::Relaxed);
        assert_eq!(state.state(), RunState::Running);
    }

    #[test]
    fn reset_clears_explicit_reasons_only() {
        let state = OperationalState::default();
        state.watch("audit_unwritable", || true);
        state.pause("operator");
        state.pause("substrate");
        assert_eq!(state.reset(&["substrate"]), ["operator"]);
        assert_eq!(
            state.snapshot().degradation_reasons,
            ["audit_unwritable", "substrate"]
        );
        assert_eq!(state.reset(&[]), ["substrate"]);
        assert_eq!(state.snapshot().degradation_reasons, ["audit_unwritable"]);
    }

    #[test]
    fn stopped_is_final() {
        let state = OperationalState::default();
        state.pause("operator");
        state.stop();
        assert!(!state.clear("operator"));
        assert_eq!(state.state(), RunState::Stopped);
    }
}
