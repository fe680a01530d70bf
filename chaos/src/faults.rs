//! The faults a scenario draws from. Actor and audit faults go through
//! Warden's chaos surface (`warden::chaos`, directly in-process or over
//! `POST /api/chaos/faults`); dependency faults switch the simulated world;
//! `kill_process` SIGKILLs the Warden process and starts it again.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use serde::Deserialize;
use warden::chaos::ChaosFault;

use crate::ChaosError;
use crate::subject::Subject;
use crate::world::{HookMode, TargetMode, Webhook, World};

/// One fault, as written in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// `Signal::Kill` to the actor with this role: `audit`, `api`, `probes`,
    /// `debouncer`, `wake`, `incidents`, `escalation`, `coordinator.<component>`,
    /// or `probe.*` for a random world probe. It dies without running
    /// `post_stop`, as after a crash.
    KillActor {
        /// The actor's role in the tree.
        target: String,
    },
    /// A graceful stop of the actor; its supervisor restarts it (permanent).
    StopActor {
        /// The actor's role in the tree.
        target: String,
    },
    /// A random world target answers in `mode` for a random time up to `ms`
    /// (at least half of it).
    Target {
        /// `down`, `hang`, `garbage` or `flap`.
        mode: TargetFault,
        /// Longest duration, in milliseconds.
        ms: u64,
    },
    /// The webhook receiver answers in `mode` for a random time up to `ms`.
    Notifier {
        /// `error` (500), `hang` or `reset`.
        mode: HookMode,
        /// Longest duration, in milliseconds.
        ms: u64,
    },
    /// The investigator webhook answers in `mode` for a random time up to `ms`
    /// (the scenario's world must have `investigator = true`).
    Investigator {
        /// `error` (500), `hang` or `reset`.
        mode: HookMode,
        /// Longest duration, in milliseconds.
        ms: u64,
    },
    /// The world component's escalation tier webhook answers in `mode` for a
    /// random time up to `ms` (the world must have `tier = true`).
    Tier {
        /// `error` (500), `hang` or `reset`.
        mode: HookMode,
        /// Longest duration, in milliseconds.
        ms: u64,
    },
    /// The audit writer's next `count` writes fail as on a full disk (half of
    /// each batch written first: a torn tail to recover from).
    AuditWriteErrors {
        /// How many writes fail.
        count: u32,
    },
    /// The audit writer's next `count` fsyncs fail.
    AuditSyncErrors {
        /// How many syncs fail.
        count: u32,
    },
    /// SIGKILL the whole Warden process, then start it again (process mode).
    KillProcess,
}

/// How a target misbehaves under a `target` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetFault {
    /// 503.
    Down,
    /// Never answers.
    Hang,
    /// 200 with a body that is not UTF-8.
    Garbage,
    /// Alternates healthy and failing.
    Flap,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::KillActor { target } => write!(f, "kill {target}"),
            Fault::StopActor { target } => write!(f, "stop {target}"),
            Fault::Target { mode, ms } => write!(f, "target {mode:?} ≤{ms}ms"),
            Fault::Notifier { mode, ms } => write!(f, "notifier {mode:?} ≤{ms}ms"),
            Fault::Investigator { mode, ms } => write!(f, "investigator {mode:?} ≤{ms}ms"),
            Fault::Tier { mode, ms } => write!(f, "tier {mode:?} ≤{ms}ms"),
            Fault::AuditWriteErrors { count } => write!(f, "{count} failing audit write(s)"),
            Fault::AuditSyncErrors { count } => write!(f, "{count} failing audit sync(s)"),
            Fault::KillProcess => f.write_str("kill -9 the process"),
        }
    }
}

/// What a landed fault was, for the restart-count invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    /// An actor with this role was killed or stopped.
    Actor(String),
    /// The process was killed and started again.
    Process,
    /// Anything else (world and audit faults).
    Other,
}

/// Everything a fault may act on.
pub struct Context<'a> {
    /// The Warden under test.
    pub subject: &'a mut Subject,
    /// The simulated world, if the scenario has one.
    pub world: Option<&'a World>,
    /// The scenario's RNG (targets and durations are drawn from it).
    pub rng: &'a mut StdRng,
    /// Actor instances already hit: a dying instance that is still
    /// registered is not hit twice (that would count a fault that caused no
    /// new failure).
    pub hit: &'a mut HashSet<String>,
}

fn duration(rng: &mut StdRng, ms: u64) -> Duration {
    Duration::from_millis(rng.random_range(ms / 2..=ms.max(1)))
}

impl Fault {
    /// Injects the fault. `Ok(None)` when it found nothing to hit (an actor
    /// between instances), which is normal under chaos.
    pub async fn inject(&self, ctx: Context<'_>) -> Result<Option<Landed>, ChaosError> {
        let failed = |reason: String| ChaosError::Fault {
            fault: self.to_string(),
            reason,
        };
        let needs_world = || failed("the scenario has no [world]".to_owned());
        match self {
            Fault::KillActor { target } | Fault::StopActor { target } => {
                let target = match (target.as_str(), ctx.world) {
                    ("probe.*", Some(world)) => {
                        format!("probe.t{}", ctx.rng.random_range(0..world.targets()))
                    }
                    ("probe.*", None) => return Err(needs_world()),
                    _ => target.clone(),
                };
                let fault = if matches!(self, Fault::KillActor { .. }) {
                    ChaosFault::KillActor {
                        target: target.clone(),
                    }
                } else {
                    ChaosFault::StopActor {
                        target: target.clone(),
                    }
                };
                match ctx.subject.inject(&fault).await.map_err(failed)? {
                    Some(id) if ctx.hit.insert(id.clone()) => Ok(Some(Landed::Actor(target))),
                    _ => Ok(None),
                }
            }
            Fault::Target { mode, ms } => {
                let world = ctx.world.ok_or_else(needs_world)?;
                let index = ctx.rng.random_range(world.faultable());
                let mode = match mode {
                    TargetFault::Down => TargetMode::Down,
                    TargetFault::Hang => TargetMode::Hang,
                    TargetFault::Garbage => TargetMode::Garbage,
                    TargetFault::Flap => TargetMode::Flap,
                };
                world.set_target(index, mode, duration(ctx.rng, *ms));
                Ok(Some(Landed::Other))
            }
            Fault::Notifier { mode, ms }
            | Fault::Investigator { mode, ms }
            | Fault::Tier { mode, ms } => {
                let world = ctx.world.ok_or_else(needs_world)?;
                let webhook = match self {
                    Fault::Notifier { .. } => Webhook::Notifier,
                    Fault::Investigator { .. } => Webhook::Investigator,
                    _ => Webhook::Tier,
                };
                world.set_webhook(webhook, *mode, duration(ctx.rng, *ms));
                Ok(Some(Landed::Other))
            }
            Fault::AuditWriteErrors { count } | Fault::AuditSyncErrors { count } => {
                let fault = if matches!(self, Fault::AuditWriteErrors { .. }) {
                    ChaosFault::AuditWriteErrors {
                        count: *count,
                        partial: true,
                    }
                } else {
                    ChaosFault::AuditSyncErrors { count: *count }
                };
                ctx.subject.inject(&fault).await.map_err(failed)?;
                Ok(Some(Landed::Other))
            }
            Fault::KillProcess => {
                // Actor ids restart from the same numbers in a new process.
                ctx.hit.clear();
                ctx.subject.kill_and_restart().await.map_err(failed)?;
                Ok(Some(Landed::Process))
            }
        }
    }
}
