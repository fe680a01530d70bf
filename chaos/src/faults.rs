//! The faults a scenario can inject into a running Warden.

use std::fmt;

use serde::Deserialize;
use warden::app::Warden;

use crate::ChaosError;

/// Actors a fault can hit, by their registered role name: the audit writer,
/// the API server, the probes supervisor, and the pipeline actors.
pub const TARGETS: [&str; 7] = [
    "audit",
    "api",
    "probes",
    "debouncer",
    "wake",
    "incidents",
    "escalation",
];

/// One fault.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// `Signal::Kill` to the actor with this role (`audit`, `api`, `probes`):
    /// it dies without running `post_stop`, as after a crash.
    KillActor {
        /// The actor's role in the tree.
        target: String,
    },
    /// A graceful stop request to the actor, which its supervisor sees as a
    /// normal exit (a permanent child is restarted anyway).
    StopActor {
        /// The actor's role in the tree.
        target: String,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::KillActor { target } => write!(f, "kill {target}"),
            Fault::StopActor { target } => write!(f, "stop {target}"),
        }
    }
}

impl Fault {
    /// Injects the fault. An actor that is between instances (being restarted)
    /// is not an error: the fault is reported as skipped. `hit` holds the
    /// actors already killed or stopped, so an instance that is dying but
    /// still registered is not hit twice (that would count a fault that
    /// caused no new failure).
    pub fn inject(
        &self,
        warden: &Warden,
        hit: &mut std::collections::HashSet<ractor::ActorId>,
    ) -> Result<bool, ChaosError> {
        let (Fault::KillActor { target } | Fault::StopActor { target }) = self;
        if !TARGETS.contains(&target.as_str()) {
            return Err(ChaosError::Fault {
                fault: self.to_string(),
                reason: format!("unknown target (use one of {})", TARGETS.join(", ")),
            });
        }
        let Some(cell) = ractor::registry::where_is(warden.names.of(target)) else {
            return Ok(false);
        };
        if !hit.insert(cell.get_id()) {
            return Ok(false);
        }
        match self {
            Fault::KillActor { .. } => cell.kill(),
            Fault::StopActor { .. } => cell.stop(Some("chaos".to_owned())),
        }
        Ok(true)
    }
}
