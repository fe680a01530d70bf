//! The supervisor actor: ordered start, restart strategies, restart intensity
//! with backoff, meltdown escalation, dynamic children and ordered shutdown.
//!
//! Messages in: [`SupervisorMsg`]. Out: every decision goes to the spec's
//! [`Observer`]; a meltdown stops the supervisor with a reason starting with
//! `"meltdown"`, which its parent classifies as [`ExitKind::Meltdown`](crate::ExitKind).
//!
//! The supervisor never uses ractor's global registry; children are linked to
//! it by their start functions and tracked by actor id, so exits of instances
//! it stopped itself (or of old instances) are recognised and ignored.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr,
    SupervisionEvent as RactorEvent, rpc::CallResult,
};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::exit::SHUTDOWN_REASON;
use crate::{ChildKind, ChildSpec, ExitKind, Ladder, NoopObserver, Observer, Restart, Strategy};

mod calls;
mod state;
mod stop;

pub use state::SupervisorState;

/// Configuration of a supervisor; also its ractor start arguments.
#[derive(Clone)]
pub struct SupervisorSpec {
    pub(crate) name: String,
    pub(crate) strategy: Strategy,
    pub(crate) policy: Ladder,
    pub(crate) children: Vec<ChildSpec>,
    pub(crate) max_children: Option<usize>,
    pub(crate) observer: Arc<dyn Observer>,
}

impl fmt::Debug for SupervisorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorSpec")
            .field("name", &self.name)
            .field("strategy", &self.strategy)
            .field("policy", &self.policy)
            .field("children", &self.children)
            .field("max_children", &self.max_children)
            .finish_non_exhaustive()
    }
}

impl SupervisorSpec {
    /// A spec with no children, the default [`Ladder`] and no observer.
    /// `name` labels events and logs; it is not a ractor name.
    pub fn new(name: impl Into<String>, strategy: Strategy) -> Self {
        Self {
            name: name.into(),
            strategy,
            policy: Ladder::default(),
            children: Vec::new(),
            max_children: None,
            observer: Arc::new(NoopObserver),
        }
    }

    /// The restart policy. Retries and escalations on the ladder both mean
    /// "restart"; exhausting it means meltdown.
    #[must_use]
    pub fn policy(mut self, policy: Ladder) -> Self {
        self.policy = policy;
        self
    }

    /// The static children, started in this order in `pre_start`.
    #[must_use]
    pub fn children(mut self, children: Vec<ChildSpec>) -> Self {
        self.children = children;
        self
    }

    /// Appends one static child.
    #[must_use]
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    /// Upper bound on the number of children, checked by `StartChild`.
    #[must_use]
    pub fn max_children(mut self, max: Option<usize>) -> Self {
        self.max_children = max;
        self
    }

    /// Receives every supervision event.
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// The name used in events.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Messages a supervisor handles.
pub enum SupervisorMsg {
    /// Starts a child and appends it last in start order.
    StartChild(ChildSpec, RpcReplyPort<Result<(), SupervisorError>>),
    /// Stops a child per its [`Shutdown`](crate::Shutdown) and removes it.
    TerminateChild(String, RpcReplyPort<Result<(), SupervisorError>>),
    /// Lists the children in start order.
    WhichChildren(RpcReplyPort<Vec<ChildInfo>>),
    /// [`StartChild`](Self::StartChild) for many at once, in order; answers
    /// with the ids that did not start and why. One pass over the children
    /// instead of one per start: a cluster node hands thousands of probe
    /// actors over at once.
    StartChildren(Vec<ChildSpec>, RpcReplyPort<Vec<(String, SupervisorError)>>),
    /// [`TerminateChild`](Self::TerminateChild) for many at once; answers
    /// with the ids it did not know.
    TerminateChildren(Vec<String>, RpcReplyPort<Vec<String>>),
    /// Stops all children in reverse start order; the supervisor stays up and
    /// keeps their specs (non-temporary ones) without restarting them.
    StopChildren(RpcReplyPort<()>),
    /// Internal: a delayed restart; stale generations are dropped.
    #[doc(hidden)]
    RestartPending(u64),
}

impl fmt::Debug for SupervisorMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StartChild(spec, _) => write!(f, "StartChild({})", spec.id),
            Self::TerminateChild(id, _) => write!(f, "TerminateChild({id})"),
            Self::WhichChildren(_) => f.write_str("WhichChildren"),
            Self::StartChildren(specs, _) => write!(f, "StartChildren({})", specs.len()),
            Self::TerminateChildren(ids, _) => write!(f, "TerminateChildren({})", ids.len()),
            Self::StopChildren(_) => f.write_str("StopChildren"),
            Self::RestartPending(generation) => write!(f, "RestartPending({generation})"),
        }
    }
}

/// One child as reported by `WhichChildren`.
#[derive(Debug, Clone)]
pub struct ChildInfo {
    /// Child id.
    pub id: String,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Restart type.
    pub restart: Restart,
    /// The running instance, if any (none while a restart is pending or after
    /// a transient child exited normally).
    pub cell: Option<ActorCell>,
    /// The running instance's actor id, if any.
    pub actor_id: Option<ActorId>,
    /// Successful restarts of this child so far.
    pub restarts: u32,
}

/// Errors of the supervisor's calls.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// `StartChild` with an id that is already in use.
    #[error("child {0} already exists")]
    DuplicateChild(String),
    /// No child with this id.
    #[error("child {0} not found")]
    ChildNotFound(String),
    /// `StartChild` beyond `max_children`.
    #[error("supervisor already has its maximum of {0} children")]
    MaxChildren(usize),
    /// A start function failed.
    #[error("child {child} failed to start: {error}")]
    StartFailed {
        /// Child id.
        child: String,
        /// The spawn error.
        error: String,
    },
    /// The supervisor could not be reached (it is stopped or stopping).
    #[error("supervisor unreachable: {0}")]
    Unreachable(String),
    /// The operation did not finish in time.
    #[error("supervisor did not answer within {0:?}")]
    Timeout(Duration),
}

/// The supervisor actor. `self` holds nothing; everything is in the spec.
#[derive(Debug, Clone, Copy, Default)]
pub struct Supervisor;

impl Supervisor {
    /// Spawns an unlinked (top-level) supervisor. `name` is an optional ractor
    /// name (registered globally by ractor); pass `None` to stay out of the registry.
    pub async fn spawn(
        name: Option<String>,
        spec: SupervisorSpec,
    ) -> Result<(ActorRef<SupervisorMsg>, JoinHandle<()>), SpawnErr> {
        Actor::spawn(name, Supervisor, spec).await
    }

    /// Spawns a supervisor linked to `parent` (usually from a [`ChildSpec::supervisor`] start fn).
    pub async fn spawn_linked(
        name: Option<String>,
        spec: SupervisorSpec,
        parent: ActorCell,
    ) -> Result<(ActorRef<SupervisorMsg>, JoinHandle<()>), SpawnErr> {
        Actor::spawn_linked(name, Supervisor, spec, parent).await
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorSpec;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        spec: SupervisorSpec,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = SupervisorState::new(spec);
        state.start_initial(&myself.get_cell()).await?;
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.stop_all().await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let cell = myself.get_cell();
        match message {
            SupervisorMsg::StartChild(spec, reply) => {
                let result = state.add_child(&cell, spec).await;
                let _ = reply.send(result);
            }
            SupervisorMsg::TerminateChild(id, reply) => {
                let result = state.terminate_child(&id).await;
                let _ = reply.send(result);
            }
            SupervisorMsg::WhichChildren(reply) => {
                let _ = reply.send(state.which_children());
            }
            SupervisorMsg::StartChildren(specs, reply) => {
                let failed = state.add_children(&cell, specs).await;
                let _ = reply.send(failed);
            }
            SupervisorMsg::TerminateChildren(ids, reply) => {
                let unknown = state.terminate_children(ids).await;
                let _ = reply.send(unknown);
            }
            SupervisorMsg::StopChildren(reply) => {
                state.cancel_pending();
                state.stop_all().await;
                let _ = reply.send(());
            }
            SupervisorMsg::RestartPending(generation) => {
                if let Err(reason) = state.on_restart_timer(&myself, generation).await {
                    myself.stop(Some(reason));
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: RactorEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some(exit) = ExitKind::from_event(&event) else {
            return Ok(());
        };
        let Some(cell) = event.actor_cell().cloned() else {
            return Ok(());
        };
        // ractor moves a stopped child's final state into `ActorTerminated`.
        // Drop it before acting: that state may own resources (a bound
        // listener, a file lock) the replacement instance needs in pre_start.
        drop(event);
        if let Err(reason) = state.on_child_exit(&myself, &cell, exit).await {
            myself.stop(Some(reason));
        }
        Ok(())
    }
}

/// Gracefully shuts a supervisor down: stops its children in reverse start
/// order (each per its [`Shutdown`](crate::Shutdown)), then stops the
/// supervisor with reason `"shutdown"` and waits for it, all within `timeout`.
/// If time runs out the supervisor is killed and `Timeout` is returned.
pub async fn shutdown(
    sup: &ActorRef<SupervisorMsg>,
    timeout: Duration,
) -> Result<(), SupervisorError> {
    let deadline = Instant::now() + timeout;
    let stopped = sup
        .call(SupervisorMsg::StopChildren, Some(timeout))
        .await
        .map_err(|error| SupervisorError::Unreachable(error.to_string()))?;
    let remaining = deadline.saturating_duration_since(Instant::now());
    let result = match stopped {
        CallResult::Success(()) => sup
            .stop_and_wait(Some(SHUTDOWN_REASON.to_string()), Some(remaining))
            .await
            .or_else(|error| match error {
                // Any other error means the supervisor is already gone.
                ractor::RactorErr::Timeout => Err(SupervisorError::Timeout(timeout)),
                _ => Ok(()),
            }),
        CallResult::Timeout => Err(SupervisorError::Timeout(timeout)),
        CallResult::SenderError => Err(SupervisorError::Unreachable(
            "stop children reply dropped".to_string(),
        )),
    };
    if result.is_err() {
        sup.kill();
        let _ = sup.wait(Some(stop::KILL_WAIT)).await;
    }
    result
}
