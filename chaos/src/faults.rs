//! The faults a scenario can inject into a running Warden.

use std::fmt;

use serde::Deserialize;
use warden::app::Warden;

use crate::ChaosError;

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
    /// is not an error: the fault is reported as skipped.
    pub fn inject(&self, warden: &Warden) -> Result<bool, ChaosError> {
        let (Fault::KillActor { target } | Fault::StopActor { target }) = self;
        if !["audit", "api", "probes"].contains(&target.as_str()) {
            return Err(ChaosError::Fault {
                fault: self.to_string(),
                reason: "unknown target (use audit, api or probes)".to_owned(),
            });
        }
        let Some(cell) = ractor::registry::where_is(warden.names.of(target)) else {
            return Ok(false);
        };
        match self {
            Fault::KillActor { .. } => cell.kill(),
            Fault::StopActor { .. } => cell.stop(Some("chaos".to_owned())),
        }
        Ok(true)
    }
}
