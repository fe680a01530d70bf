//! Child specifications: how to start a child, when to restart it and how to stop it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorCell, SpawnErr};

/// What a start function returns: the started child's cell, or the spawn error.
pub type StartFuture = Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>>;

/// A reusable start function. It receives the supervisor's cell and must link
/// the child to it (`Actor::spawn_linked(.., supervisor)`); it decides the
/// child's ractor name, if any (the crate never registers names itself).
pub type StartFn = Arc<dyn Fn(ActorCell) -> StartFuture + Send + Sync>;

/// When a child is restarted (OTP restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Always restarted.
    Permanent,
    /// Restarted only after an abnormal exit (error, panic, kill, meltdown).
    Transient,
    /// Never restarted; removed from the supervisor when it exits.
    Temporary,
}

impl Restart {
    /// Whether a child with this restart type is restarted after `exit`.
    pub fn should_restart(self, exit: &crate::ExitKind) -> bool {
        match self {
            Self::Permanent => true,
            Self::Transient => exit.is_abnormal(),
            Self::Temporary => false,
        }
    }
}

/// How a child is stopped by its supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Ask it to stop, wait this long, then kill it.
    Timeout(Duration),
    /// Kill it at once (its `post_stop` does not run).
    BrutalKill,
    /// Ask it to stop and wait as long as it takes (the default for child
    /// supervisors, which bound their own children's shutdown).
    Infinity,
}

/// Whether a child is a worker or a supervisor (informational, as in OTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    /// A plain actor.
    Worker,
    /// A [`Supervisor`](crate::Supervisor) (or another actor that supervises).
    Supervisor,
}

/// Everything a supervisor needs to start, restart and stop one child.
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) id: String,
    pub(crate) start: StartFn,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) kind: ChildKind,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl ChildSpec {
    /// Default shutdown timeout for workers.
    pub const DEFAULT_WORKER_SHUTDOWN: Duration = Duration::from_secs(5);

    /// A permanent worker with a 5 s shutdown timeout.
    pub fn worker(
        id: impl Into<String>,
        start: impl Fn(ActorCell) -> StartFuture + Send + Sync + 'static,
    ) -> Self {
        Self {
            id: id.into(),
            start: Arc::new(start),
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(Self::DEFAULT_WORKER_SHUTDOWN),
            kind: ChildKind::Worker,
        }
    }

    /// A permanent child supervisor with [`Shutdown::Infinity`]; its start
    /// function usually calls [`Supervisor::spawn_linked`](crate::Supervisor::spawn_linked).
    pub fn supervisor(
        id: impl Into<String>,
        start: impl Fn(ActorCell) -> StartFuture + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind: ChildKind::Supervisor,
            shutdown: Shutdown::Infinity,
            ..Self::worker(id, start)
        }
    }

    /// Sets the restart type.
    #[must_use]
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets how the child is stopped.
    #[must_use]
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The child's id, unique within its supervisor.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The restart type.
    pub fn restart_type(&self) -> Restart {
        self.restart
    }

    /// The shutdown rule.
    pub fn shutdown_rule(&self) -> Shutdown {
        self.shutdown
    }

    /// Worker or supervisor.
    pub fn kind(&self) -> ChildKind {
        self.kind
    }

    /// Runs the start function, linking the child to `supervisor`.
    pub fn start(&self, supervisor: ActorCell) -> StartFuture {
        (self.start)(supervisor)
    }
}
