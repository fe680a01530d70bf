//! `EscalationCoordinator`: one per component. It watches the component's
//! issues (the issue bus) and its managed process (FATAL), and runs one
//! escalation cycle at a time: the self-heal envelope, then the tiers in order,
//! then rollback to the last-known-good snapshot. The cycle itself runs in a
//! task the actor owns (`cycle.rs`); its progress (ladder position, history)
//! is written to the shared [`CycleStore`] after every step, so a restarted
//! coordinator resumes the cycle where it stopped instead of starting over.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;
use tracing::Instrument;

use super::cycle::{self, CycleContext, CycleStore, Signal};
use crate::debounce::IssueBus;
use crate::managed::ManagedEvent;
use crate::messages::IssueEvent;
use crate::tasks::AbortOnDrop;

/// Arguments, cloneable so the supervisor can respawn the coordinator.
#[derive(Clone)]
pub struct CoordinatorArgs {
    /// Everything a cycle needs (settings, audit, notifiers, state, ...).
    pub ctx: Arc<CycleContext>,
    /// Cycle progress per component, shared across restarts.
    pub store: CycleStore,
    /// Issue events.
    pub issues: IssueBus,
    /// Events of managed processes.
    pub managed: Arc<ractor::OutputPort<ManagedEvent>>,
}

/// Messages to a coordinator.
#[derive(Debug)]
pub enum CoordinatorMsg {
    /// An issue row of one of the component's probes became durable.
    Issue(IssueEvent),
    /// The component's managed process reported something.
    Managed(ManagedEvent),
    /// The running cycle ended.
    CycleEnded,
}

/// Runtime state.
pub struct CoordinatorState {
    args: CoordinatorArgs,
    /// A guard, not a handle: a killed coordinator skips post_stop, and its
    /// cycle task must not outlive it.
    cycle: Option<(AbortOnDrop, watch::Sender<Signal>)>,
}

/// The coordinator actor.
pub struct EscalationCoordinator;

impl Actor for EscalationCoordinator {
    type Msg = CoordinatorMsg;
    type State = CoordinatorState;
    type Arguments = CoordinatorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: CoordinatorArgs,
    ) -> Result<CoordinatorState, ActorProcessingErr> {
        let component = args.ctx.component.name.clone();
        let probes = args.ctx.component.probes.clone();
        args.issues
            .subscribe(myself.clone(), move |event: IssueEvent| {
                (event.component == component || probes.contains(&event.probe))
                    .then_some(CoordinatorMsg::Issue(event))
            });
        let component = args.ctx.component.name.clone();
        args.managed
            .subscribe(myself.clone(), move |event: ManagedEvent| {
                (event.component() == component).then_some(CoordinatorMsg::Managed(event))
            });
        let mut state = CoordinatorState { args, cycle: None };
        let name = state.args.ctx.component.name.clone();
        // The record outlives instances: its presence means an earlier
        // instance ran in this process, so this one is a restart.
        let restarted = state.args.store.contains_key(&name);
        let resume = state.args.store.entry(name).or_default().value().active;
        if resume {
            // A cycle that was running when the previous instance died goes on.
            start_cycle(&myself, &mut state, None);
        } else if restarted {
            // Issue events published while no instance was subscribed are
            // gone from the bus; the debounce store still shows the issues.
            for event in missed_issues(&state) {
                on_issue(&myself, &mut state, event);
            }
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut CoordinatorState,
    ) -> Result<(), ActorProcessingErr> {
        state.cycle = None;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: CoordinatorMsg,
        state: &mut CoordinatorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CoordinatorMsg::Issue(event) => on_issue(&myself, state, event),
            CoordinatorMsg::Managed(event) => {
                if let ManagedEvent::Fatal { reason, .. } = &event {
                    let trigger = cycle::Trigger::ManagedFatal(reason.clone());
                    start_cycle(&myself, state, Some(trigger));
                }
            }
            CoordinatorMsg::CycleEnded => {
                if state
                    .cycle
                    .as_ref()
                    .is_some_and(|(task, _)| task.is_finished())
                {
                    state.cycle = None;
                }
            }
        }
        Ok(())
    }
}

/// Open, woken issues of the component's probes whose story no cycle has
/// taken up: the last cycle was for another session (or there was none).
/// After a restart of the whole process the store starts empty and this is
/// not called: issues restored from the log were handled (or not) by the
/// previous process, and the operator was woken either way.
fn missed_issues(state: &CoordinatorState) -> Vec<IssueEvent> {
    let ctx = &state.args.ctx;
    let handled = state
        .args
        .store
        .get(&ctx.component.name)
        .and_then(|record| record.session.clone());
    ctx.component
        .probes
        .iter()
        .filter_map(|probe| {
            ctx.debounce
                .get(probe)?
                .open_wake_event(probe, &ctx.component.name)
        })
        .filter(|event| event.caller_session_id != handled)
        .collect()
}

fn on_issue(myself: &ActorRef<CoordinatorMsg>, state: &mut CoordinatorState, event: IssueEvent) {
    match event.seam.as_str() {
        "probe.wake_requested" => start_cycle(myself, state, Some(cycle::Trigger::Issue(event))),
        "probe.resolved" => {
            if let Some((_, signal)) = &state.cycle {
                let _ = signal.send(Signal::Resolved(event.probe.clone()));
            } else {
                cycle::note_resolved(
                    &state.args.store,
                    &state.args.ctx.component.name,
                    &event.probe,
                );
            }
        }
        _ => {}
    }
}

/// Starts a cycle unless one is running (a running cycle takes note of the
/// new trigger through the store instead).
fn start_cycle(
    myself: &ActorRef<CoordinatorMsg>,
    state: &mut CoordinatorState,
    trigger: Option<cycle::Trigger>,
) {
    let name = state.args.ctx.component.name.clone();
    if let Some((task, signal)) = &state.cycle
        && !task.is_finished()
    {
        if let Some(trigger) = trigger {
            let _ = signal.send(Signal::Trigger(trigger));
        }
        return;
    }
    let record = {
        let mut entry = state.args.store.entry(name).or_default();
        if let Some(trigger) = &trigger {
            entry.begin(trigger, &state.args.ctx);
        }
        if !entry.active {
            return;
        }
        entry.clone()
    };
    let (tx, rx) = watch::channel(Signal::None);
    let (ctx, store, me) = (
        state.args.ctx.clone(),
        state.args.store.clone(),
        myself.clone(),
    );
    let span = tracing::info_span!(parent: None, "escalation.cycle", actor = "coordinator", component = %state.args.ctx.component.name);
    crate::telemetry::trace::continue_from(&span, record.traceparent.as_deref());
    let task = tokio::spawn(
        async move {
            cycle::run(ctx, store, record, rx).await;
            let _ = me.cast(CoordinatorMsg::CycleEnded);
        }
        .instrument(span),
    );
    state.cycle = Some((AbortOnDrop::new(&task), tx));
}
