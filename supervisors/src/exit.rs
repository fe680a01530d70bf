//! Classifying how a child exited, from ractor's supervision events.
//!
//! ractor reports a graceful stop as `ActorTerminated(cell, state, reason)`,
//! `Signal::Kill` as `ActorTerminated(cell, None, Some("killed"))`, and an
//! `Err` or panic in a handler as `ActorFailed(cell, error)`. ractor turns a
//! panic into an ordinary error carrying the panic message, so the two cannot
//! be told apart: both classify as [`ExitKind::Error`] (both are abnormal).
//! [`ExitKind::Panic`] is kept for callers that know better.

use std::fmt;

use ractor::SupervisionEvent as RactorEvent;

/// Stop reason a supervisor gives children it stops itself (classifies as
/// [`ExitKind::Shutdown`]).
pub const SHUTDOWN_REASON: &str = "shutdown";

/// Prefix of the stop reason of a supervisor that melted down.
pub const MELTDOWN_PREFIX: &str = "meltdown";

/// How a child exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitKind {
    /// Stopped with no reason or with reason `"normal"`.
    Normal,
    /// Stopped with reason `"shutdown"` (or `"shutdown: …"`), e.g. by its supervisor.
    Shutdown,
    /// Failed: an `Err` from a handler, a panic, or a stop with any other reason.
    Error(String),
    /// Panicked (never produced by [`ExitKind::from_event`], see the module docs).
    Panic(String),
    /// Killed (`Signal::Kill`, or its task was cancelled).
    Killed,
    /// A child supervisor gave up after too many restarts.
    Meltdown(String),
}

impl ExitKind {
    /// Classifies a ractor supervision event; `None` for events that are not exits.
    pub fn from_event(event: &RactorEvent) -> Option<Self> {
        match event {
            RactorEvent::ActorTerminated(_, _, reason) => {
                Some(Self::from_reason(reason.as_deref()))
            }
            RactorEvent::ActorFailed(_, error) => {
                let text = error.to_string();
                Some(if is_meltdown(&text) {
                    Self::Meltdown(text)
                } else {
                    Self::Error(text)
                })
            }
            _ => None,
        }
    }

    /// Classifies the reason of a graceful stop.
    pub fn from_reason(reason: Option<&str>) -> Self {
        match reason {
            None | Some("normal") => Self::Normal,
            Some("killed" | "actor_task_cancelled") => Self::Killed,
            Some(text) if text == SHUTDOWN_REASON || text.starts_with("shutdown:") => {
                Self::Shutdown
            }
            Some(text) if is_meltdown(text) => Self::Meltdown(text.to_string()),
            Some(text) => Self::Error(text.to_string()),
        }
    }

    /// Whether the exit counts as a failure (everything but normal and shutdown).
    pub fn is_abnormal(&self) -> bool {
        !matches!(self, Self::Normal | Self::Shutdown)
    }
}

impl fmt::Display for ExitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normal => f.write_str("normal"),
            Self::Shutdown => f.write_str("shutdown"),
            Self::Error(text) => write!(f, "error: {text}"),
            Self::Panic(text) => write!(f, "panic: {text}"),
            Self::Killed => f.write_str("killed"),
            Self::Meltdown(text) => f.write_str(text),
        }
    }
}

fn is_meltdown(text: &str) -> bool {
    text.starts_with(MELTDOWN_PREFIX)
}

#[cfg(test)]
mod tests;
