//! OTP-style supervision on [ractor]: restart strategies, restart intensity
//! with exponential backoff, meltdown escalation, ordered start and shutdown,
//! dynamic children, and the [`Ladder`] ("heal here, then escalate").
//!
//! ractor reports child starts, stops and failures but has no restart
//! strategies of its own; this crate adds them, generically (it knows nothing
//! of probes) and without ractor's process-global registry, so several trees
//! with the same child names can run in one process.
//!
//! # Layout
//! - [`ladder`] holds the pure restart budget ([`Ladder`], [`LadderState`]).
//! - [`backoff`] holds exponential backoff with jitter.
//! - [`child`] holds [`ChildSpec`] (start function, restart type, shutdown).
//! - [`exit`] holds [`ExitKind`], classifying ractor's supervision events.
//! - [`strategy`] holds [`Strategy`].
//! - [`supervisor`] holds the [`Supervisor`] actor, its messages and [`shutdown`].
//! - [`observer`] holds the [`Observer`] hook and the [`SupervisionEvent`]s it receives.
//!
//! # Example
//! ```
//! use ractor::{Actor, ActorProcessingErr, ActorRef};
//! use warden_supervisors::{ChildSpec, Strategy, Supervisor, SupervisorMsg, SupervisorSpec};
//!
//! struct Worker;
//! impl Actor for Worker {
//!     type Msg = ();
//!     type State = ();
//!     type Arguments = ();
//!     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let worker = ChildSpec::worker("worker", |sup| {
//!     Box::pin(async move {
//!         let (actor, _) = Actor::spawn_linked(None, Worker, (), sup).await?;
//!         Ok(actor.get_cell())
//!     })
//! });
//! let spec = SupervisorSpec::new("root", Strategy::OneForOne).children(vec![worker]);
//! let (sup, handle) = Supervisor::spawn(None, spec).await?;
//!
//! let children = ractor::call!(sup, SupervisorMsg::WhichChildren)?;
//! assert_eq!(children[0].id, "worker");
//!
//! warden_supervisors::shutdown(&sup, std::time::Duration::from_secs(5)).await?;
//! handle.await?;
//! # Ok(())
//! # }
//! ```

pub mod backoff;
pub mod child;
pub mod exit;
pub mod ladder;
pub mod observer;
pub mod strategy;
pub mod supervisor;

pub use backoff::Backoff;
pub use child::{ChildKind, ChildSpec, Restart, Shutdown, StartFn, StartFuture};
pub use exit::ExitKind;
pub use ladder::{Ladder, LadderState, LadderStep, Rung};
pub use observer::{NoopObserver, Observer, SupervisionEvent};
pub use strategy::Strategy;
pub use supervisor::{
    ChildInfo, Supervisor, SupervisorError, SupervisorMsg, SupervisorSpec, SupervisorState,
    shutdown,
};
