//! The fault-injection surface the chaos suite drives: kill or stop one of
//! Warden's own actors, or make the audit writer's next writes fail. It exists
//! only when `chaos.enabled = true`; the in-process harness calls it directly
//! and a separate process reaches it through `POST /api/chaos/faults` with the
//! operator token, so both go through the same checks.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::app::Names;
use crate::audit::AuditFaults;

/// Roles of the actors in the tree that a fault may hit directly.
pub const ROLES: [&str; 7] = [
    "audit",
    "api",
    "probes",
    "debouncer",
    "wake",
    "incidents",
    "escalation",
];

/// Prefixes of the per-item actors (`probe.<name>`, `coordinator.<component>`,
/// `managed.<component>`) and of the escalation subtree's own
/// (`escalation.intake`).
pub const PER_ITEM: [&str; 4] = ["probe.", "coordinator.", "managed.", "escalation."];

/// Most failing audit writes or syncs one fault may arm; the writer retries
/// with backoff, so this bounds how long one fault can hold the log.
pub const MAX_AUDIT_FAILURES: u32 = 1000;

/// One fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChaosFault {
    /// `Signal::Kill`: the actor dies without running `post_stop`, as after a crash.
    KillActor {
        /// The actor's role (`audit`, `wake`, `probe.<name>`, ...).
        target: String,
    },
    /// A graceful stop, which its supervisor sees as a normal exit.
    StopActor {
        /// The actor's role.
        target: String,
    },
    /// The audit writer's next `count` batch writes fail as on a full disk;
    /// with `partial`, each first writes half its bytes (a torn tail).
    AuditWriteErrors {
        /// How many writes fail (1..=1000).
        count: u32,
        /// Write half of each failing batch first.
        #[serde(default)]
        partial: bool,
    },
    /// The audit writer's next `count` fsyncs fail (EIO after the write).
    AuditSyncErrors {
        /// How many syncs fail (1..=1000).
        count: u32,
    },
}

impl std::fmt::Display for ChaosFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChaosFault::KillActor { target } => write!(f, "kill {target}"),
            ChaosFault::StopActor { target } => write!(f, "stop {target}"),
            ChaosFault::AuditWriteErrors { count, partial } => {
                write!(f, "fail {count} audit write(s)")?;
                if *partial {
                    f.write_str(" (partial)")?;
                }
                Ok(())
            }
            ChaosFault::AuditSyncErrors { count } => write!(f, "fail {count} audit sync(s)"),
        }
    }
}

/// What an injection did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injected {
    /// Whether the fault hit something. `false` when the actor is between
    /// instances (being restarted), which is normal under chaos.
    pub landed: bool,
    /// The id of the actor instance hit, so a caller can avoid counting two
    /// faults against one dying instance.
    pub actor_id: Option<String>,
}

/// Why a fault was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChaosError {
    /// The target names no actor role Warden has.
    #[error("unknown target {0:?}: use one of {roles} or probe.<name>, coordinator.<component>, managed.<component>, escalation.intake", roles = ROLES.join(", "))]
    UnknownTarget(String),
    /// A count outside 1..=MAX_AUDIT_FAILURES.
    #[error("count must be between 1 and {MAX_AUDIT_FAILURES}, got {0}")]
    BadCount(u32),
}

/// The handle that injects faults into one Warden instance.
#[derive(Debug, Clone)]
pub struct ChaosControl {
    names: Names,
    audit: Arc<AuditFaults>,
}

impl ChaosControl {
    /// A control over the actors named by `names` and the writer armed with `audit`.
    pub fn new(names: Names, audit: Arc<AuditFaults>) -> Self {
        Self { names, audit }
    }

    /// Injects `fault`.
    pub fn inject(&self, fault: &ChaosFault) -> Result<Injected, ChaosError> {
        match fault {
            ChaosFault::KillActor { target } | ChaosFault::StopActor { target } => {
                check_target(target)?;
                let Some(cell) = ractor::registry::where_is(self.names.of(target)) else {
                    return Ok(Injected {
                        landed: false,
                        actor_id: None,
                    });
                };
                if matches!(fault, ChaosFault::KillActor { .. }) {
                    cell.kill();
                } else {
                    cell.stop(Some("chaos".to_owned()));
                }
                Ok(Injected {
                    landed: true,
                    actor_id: Some(cell.get_id().to_string()),
                })
            }
            ChaosFault::AuditWriteErrors { count, partial } => {
                check_count(*count)?;
                self.audit.fail_next_writes(*count, *partial);
                Ok(Injected {
                    landed: true,
                    actor_id: None,
                })
            }
            ChaosFault::AuditSyncErrors { count } => {
                check_count(*count)?;
                self.audit.fail_next_syncs(*count);
                Ok(Injected {
                    landed: true,
                    actor_id: None,
                })
            }
        }
    }
}

fn check_target(target: &str) -> Result<(), ChaosError> {
    let known = ROLES.contains(&target)
        || PER_ITEM.iter().any(|prefix| {
            target
                .strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty())
        });
    if known {
        Ok(())
    } else {
        Err(ChaosError::UnknownTarget(target.to_owned()))
    }
}

fn check_count(count: u32) -> Result<(), ChaosError> {
    if (1..=MAX_AUDIT_FAILURES).contains(&count) {
        Ok(())
    } else {
        Err(ChaosError::BadCount(count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_before_anything_is_looked_up() {
        assert!(check_target("audit").is_ok());
        assert!(check_target("probe.api").is_ok());
        assert_eq!(
            check_target("probe."),
            Err(ChaosError::UnknownTarget("probe.".into()))
        );
        assert!(check_target("root").is_err());
        assert!(check_count(0).is_err());
        assert!(check_count(MAX_AUDIT_FAILURES + 1).is_err());
    }

    #[test]
    fn faults_read_from_the_wire_format() {
        let fault: ChaosFault =
            serde_json::from_str(r#"{"fault":"kill_actor","target":"wake"}"#).unwrap();
        assert_eq!(
            fault,
            ChaosFault::KillActor {
                target: "wake".into()
            }
        );
        assert!(serde_json::from_str::<ChaosFault>(r#"{"fault":"reboot"}"#).is_err());
    }
}
