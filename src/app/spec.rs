//! The supervision tree's specs: which child starts where, in which order,
//! with which restart policy and shutdown budget. Built from [`Shared`] each
//! time the root is (re)spawned, so every incarnation starts the same tree.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorCell};
use warden_supervisors::{
    ChildSpec, Ladder, Observer, Shutdown, Strategy, Supervisor, SupervisorSpec,
};

use super::Names;
use super::escalation::{Escalation, wait_for_dependencies};
use crate::api::{ApiServer, ApiServerArgs};
use crate::audit::{AuditLog, AuditWriter, AuditWriterArgs};
use crate::debounce::{Debouncer, DebouncerArgs};
use crate::escalation::{EscalationCoordinator, EscalationIntake};
use crate::incidents::{CommanderArgs, IncidentCommander};
use crate::managed::ManagedProcess;
use crate::probes::{ProbeActor, ProbeActorArgs};
use crate::settings::{Settings, SupervisionSettings};
use crate::wake::{WakeConsumer, WakeConsumerArgs};

/// Handles shared by every incarnation of the tree: what must survive restarts.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) settings: Arc<Settings>,
    pub(super) names: Names,
    pub(super) audit: AuditLog,
    pub(super) audit_args: AuditWriterArgs,
    pub(super) api_args: ApiServerArgs,
    pub(super) debouncer_args: DebouncerArgs,
    pub(super) wake_args: WakeConsumerArgs,
    pub(super) incidents_args: CommanderArgs,
    pub(super) probe_args: Vec<ProbeActorArgs>,
    pub(super) escalation: Arc<Escalation>,
    pub(super) observer: Arc<dyn Observer>,
    /// Whether this node runs the consumers (wake, incidents, escalation):
    /// always on one node; in cluster mode only while it holds the
    /// active-node lease, which sets it before it starts them.
    pub(super) leader: Arc<AtomicBool>,
    /// Cluster mode: the probes this node checks. Only their actors run
    /// here; `node.rs` starts and stops the rest as they move.
    pub(super) ownership: Option<crate::cluster::Ownership>,
}

/// The restart policy every supervisor in the tree uses: one rung, "restart
/// in place", whose exhaustion is a meltdown escalated to the parent.
/// Built like a managed process's ladder, from the same policy struct.
pub fn restart_ladder(settings: &SupervisionSettings) -> Ladder {
    crate::managed::restart_ladder(&settings.restart)
}

/// A worker that spawns a fresh `make()` registered as `name`, linked to its
/// supervisor, with a clone of `args` on every start; it gets `timeout` to
/// stop before it is killed.
fn worker<A>(
    id: impl Into<String>,
    name: String,
    make: fn() -> A,
    args: A::Arguments,
    timeout: Duration,
) -> ChildSpec
where
    A: Actor,
    A::Arguments: Clone + Sync,
{
    worker_after(id, name, make, args, timeout, || std::future::ready(()))
}

/// [`worker`] that awaits `before()` ahead of every start.
fn worker_after<A, B, F>(
    id: impl Into<String>,
    name: String,
    make: fn() -> A,
    args: A::Arguments,
    timeout: Duration,
    before: B,
) -> ChildSpec
where
    A: Actor,
    A::Arguments: Clone + Sync,
    B: Fn() -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    ChildSpec::worker(id, move |parent: ActorCell| {
        let (name, args, before) = (name.clone(), args.clone(), before());
        Box::pin(async move {
            before.await;
            let (actor, _) = Actor::spawn_linked(Some(name), make(), args, parent).await?;
            Ok(actor.get_cell())
        })
    })
    .shutdown(Shutdown::Timeout(timeout))
}

/// A child supervisor registered as `name`, started from `spec`.
fn supervisor(id: &str, name: String, spec: SupervisorSpec) -> ChildSpec {
    ChildSpec::supervisor(id, move |parent: ActorCell| {
        let (name, spec) = (name.clone(), spec.clone());
        Box::pin(async move {
            let (actor, _) = Supervisor::spawn_linked(Some(name), spec, parent).await?;
            Ok(actor.get_cell())
        })
    })
}

/// The root supervisor's spec, children in start order (see the module doc
/// of [`crate::app`]).
pub(super) fn root_spec(shared: &Shared) -> SupervisorSpec {
    let ladder = restart_ladder(&shared.settings.supervision);
    let timeout = shared.settings.supervision.child_shutdown_timeout;
    let names = &shared.names;

    let audit = worker(
        "audit",
        names.audit(),
        || AuditWriter,
        shared.audit_args.clone(),
        timeout,
    );
    let debouncer = worker(
        "debouncer",
        names.of("debouncer"),
        || Debouncer,
        shared.debouncer_args.clone(),
        timeout,
    );
    let probe_children = shared
        .probe_args
        .iter()
        .filter(|args| {
            shared
                .ownership
                .as_ref()
                .is_none_or(|ownership| ownership.owns(&args.probe.name))
        })
        .map(|args| probe_child(shared, args))
        .collect();
    let probes_spec = SupervisorSpec::new("probes", Strategy::OneForOne)
        .policy(ladder.clone())
        .children(probe_children)
        .observer(shared.observer.clone());
    let probes = supervisor("probes", names.probes(), probes_spec);
    let api = worker(
        "api",
        names.api(),
        || ApiServer,
        shared.api_args.clone(),
        timeout,
    );

    let children = if shared.leader.load(Ordering::SeqCst) {
        let [wake, incidents, escalation] = leader_children(shared);
        vec![audit, debouncer, wake, incidents, probes, escalation, api]
    } else {
        // A standby: the leader's children are started behind the API
        // (`SupervisorMsg::StartChild`) once it holds the lease.
        vec![audit, debouncer, probes, api]
    };
    SupervisorSpec::new("warden", Strategy::OneForOne)
        .policy(ladder)
        .children(children)
        .observer(shared.observer.clone())
}

/// The child spec of one probe's actor, under the `probes` supervisor.
pub(super) fn probe_child(shared: &Shared, args: &ProbeActorArgs) -> ChildSpec {
    let probe = &args.probe.name;
    worker(
        probe_child_id(probe),
        shared.names.of(&format!("probe.{probe}")),
        || ProbeActor,
        args.clone(),
        shared.settings.supervision.child_shutdown_timeout,
    )
}

/// The id of `probe`'s child under the `probes` supervisor.
pub(super) fn probe_child_id(probe: &str) -> String {
    format!("probe:{probe}")
}

/// The children only the active node runs, in start order: the wake
/// consumer, the incident commander and the escalation subtree.
pub(super) fn leader_children(shared: &Shared) -> [ChildSpec; 3] {
    let ladder = restart_ladder(&shared.settings.supervision);
    let timeout = shared.settings.supervision.child_shutdown_timeout;
    let names = &shared.names;
    let wake = worker(
        "wake",
        names.of("wake"),
        || WakeConsumer,
        shared.wake_args.clone(),
        timeout,
    );
    let incidents = worker(
        "incidents",
        names.of("incidents"),
        || IncidentCommander,
        shared.incidents_args.clone(),
        timeout,
    );
    [wake, incidents, escalation_spec(shared, &ladder, timeout)]
}

/// The `escalation` supervisor: managed processes first, in dependency order
/// (each waits, on its first start only, up to its `start_timeout` for the
/// probes of its `depends_on` to be healthy), then one coordinator per
/// component, then the intake that feeds them from the log. A coordinator
/// failing restarts only itself; a managed process has its own restart
/// ladder inside its actor.
fn escalation_spec(shared: &Shared, ladder: &Ladder, timeout: Duration) -> ChildSpec {
    let names = &shared.names;
    let mut children = Vec::new();
    for (args, dependency_probes) in &shared.escalation.managed {
        let component = args.component.clone();
        let first_start = Arc::new(AtomicBool::new(true));
        let latest = shared.escalation.latest.clone();
        let (probes, start_timeout) = (dependency_probes.clone(), args.settings.start_timeout);
        let before = move || {
            let (first, component, probes, latest) = (
                first_start.clone(),
                component.clone(),
                probes.clone(),
                latest.clone(),
            );
            async move {
                if first.swap(false, Ordering::SeqCst) {
                    wait_for_dependencies(&component, &probes, &latest, start_timeout).await;
                }
            }
        };
        children.push(worker_after(
            format!("managed:{}", args.component),
            names.of(&format!("managed.{}", args.component)),
            || ManagedProcess,
            args.clone(),
            // Its own stop sequence (signal, stop_timeout, kill) must fit.
            args.settings.stop_timeout + timeout,
            before,
        ));
    }
    for args in &shared.escalation.coordinators {
        let component = &args.ctx.component.name;
        children.push(worker(
            format!("coordinator:{component}"),
            names.of(&format!("coordinator.{component}")),
            || EscalationCoordinator,
            args.clone(),
            timeout,
        ));
    }
    // Last, so the coordinators it hands rows to are there; with no
    // component there is nobody to hand rows to, and nothing to read for.
    if !shared.escalation.coordinators.is_empty() {
        children.push(worker(
            "intake",
            names.of("escalation.intake"),
            || EscalationIntake,
            shared.escalation.intake.clone(),
            timeout,
        ));
    }
    let spec = SupervisorSpec::new("escalation", Strategy::OneForOne)
        .policy(ladder.clone())
        .children(children)
        .observer(shared.observer.clone());
    supervisor("escalation", names.of("escalation"), spec)
}
