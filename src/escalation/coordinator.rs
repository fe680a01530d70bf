//! `EscalationCoordinator`: one per component. It takes in the component's
//! issue rows, which the escalation intake (`intake.rs`) reads from the log
//! after its cursor, and its managed process's FATAL, and runs one
//! escalation cycle at a time: the self-heal envelope, then the tiers in
//! order, then rollback to the last-known-good snapshot. The cycle itself
//! runs in a task the actor owns (`cycle.rs`).
//!
//! What it knows of the world it has read from the log (which probes have
//! an open issue) or kept itself (the cycle's record), never another
//! actor's maps; both are saved under `<state_dir>/escalation/` (`saved.rs`)
//! before the intake is told a batch is taken in, so a restarted coordinator,
//! or a Warden restarted after `kill -9`, resumes the cycle on the rung where
//! it stopped and judges replayed rows by the state they were written in.

use std::collections::BTreeSet;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::watch;
use tracing::Instrument;

use super::cycle::{self, CycleContext, CycleRecord, CycleStore, Signal};
use super::ladder::EscalationLadder;
use super::saved::{IssueView, SavedFile};
use crate::managed::ManagedEvent;
use crate::messages::IssueEvent;
use crate::tasks::AbortOnDrop;

/// Arguments, cloneable so the supervisor can respawn the coordinator.
#[derive(Clone)]
pub struct CoordinatorArgs {
    /// Everything a cycle needs (settings, audit, notifiers, state, ...).
    pub ctx: Arc<CycleContext>,
    /// Cycle progress per component, shared across restarts of the actor
    /// (the saved file carries it across restarts of Warden).
    pub store: CycleStore,
    /// Events of managed processes.
    pub managed: Arc<ractor::OutputPort<ManagedEvent>>,
}

/// Messages to a coordinator.
#[derive(Debug)]
pub enum CoordinatorMsg {
    /// Issue rows of the component's probes, in log order, from the
    /// escalation intake; the reply comes once they are taken in and saved.
    Issues(Vec<IssueEvent>, RpcReplyPort<()>),
    /// The component's managed process reported something.
    Managed(ManagedEvent),
    /// The running cycle ended.
    CycleEnded,
}

/// Runtime state.
pub struct CoordinatorState {
    args: CoordinatorArgs,
    /// Open issues as read from the log, and the last row taken in.
    view: IssueView,
    view_file: SavedFile<IssueView>,
    /// The open probes, for the running cycle ("has it recovered?").
    open: watch::Sender<BTreeSet<String>>,
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
        args.managed
            .subscribe(myself.clone(), move |event: ManagedEvent| {
                (event.component() == component).then_some(CoordinatorMsg::Managed(event))
            });
        let ctx = args.ctx.clone();
        let name = ctx.component.name.clone();
        // The in-memory record outlives instances of the actor: its absence
        // means this is the first start in this process, and the saved file
        // is where an earlier Warden left the cycle.
        if !args.store.contains_key(&name) {
            let record = ctx.saved.load().map(|record| fit(record, &ctx));
            args.store.insert(name.clone(), record.unwrap_or_default());
        }
        let view_file = SavedFile::<IssueView>::new(&ctx.state_dir, &name, ".json");
        let view = view_file.load().unwrap_or_default();
        let (open, _) = watch::channel(view.open.clone());
        let resume = args.store.get(&name).is_some_and(|record| record.active);
        let mut state = CoordinatorState {
            args,
            view,
            view_file,
            open,
            cycle: None,
        };
        if resume {
            // A cycle that was running when the previous instance died goes on.
            start_cycle(&myself, &mut state, None);
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
            CoordinatorMsg::Issues(events, reply) => {
                for event in events {
                    // Delivered again after a crash of the intake: taken in already.
                    if event.seq > state.view.seq {
                        state.view.seq = event.seq;
                        on_issue(&myself, state, event);
                    }
                }
                state.open.send_replace(state.view.open.clone());
                state.view_file.save(&state.view);
                let _ = reply.send(());
            }
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

/// A record saved by an earlier Warden, fitted to today's configuration:
/// a cycle whose rungs changed starts over on a fresh ladder, and a stop of
/// automation is not carried over (a restart hands the component back).
fn fit(mut record: CycleRecord, ctx: &CycleContext) -> CycleRecord {
    let fresh = EscalationLadder::new(&ctx.component);
    if record
        .ladder
        .as_ref()
        .is_some_and(|ladder| !ladder.same_rungs(&fresh))
    {
        tracing::warn!(component = %ctx.component.name, "The saved escalation cycle was for other rungs; it starts again at the bottom of the ladder.");
        record.ladder = Some(fresh);
    }
    record.exhaustions_in_row = 0;
    record
}

/// Takes in one issue row: the open set follows wakes, suppressed wakes and
/// resolutions; a wake starts (or joins) a cycle. Flapping has a story of
/// its own and starts none.
fn on_issue(myself: &ActorRef<CoordinatorMsg>, state: &mut CoordinatorState, event: IssueEvent) {
    match event.seam.as_str() {
        "probe.wake_requested" => {
            state.view.open.insert(event.probe.clone());
            start_cycle(myself, state, Some(cycle::Trigger::Issue(event)));
        }
        "probe.wake_suppressed" => {
            state.view.open.insert(event.probe);
        }
        "probe.resolved" => {
            state.view.open.remove(&event.probe);
            state.open.send_replace(state.view.open.clone());
            match &state.cycle {
                Some((_, signal)) => {
                    let _ = signal.send(Signal::Resolved(event.probe));
                }
                None => cycle::note_resolved(&state.args.store, &state.args.ctx, &event.probe),
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
            state.args.ctx.saved.save(&entry);
        }
        if !entry.active {
            return;
        }
        entry.clone()
    };
    // The open set as of this row: the cycle judges recovery by it.
    state.open.send_replace(state.view.open.clone());
    let open = state.open.subscribe();
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
            cycle::run(ctx, store, record, rx, open).await;
            let _ = me.cast(CoordinatorMsg::CycleEnded);
        }
        .instrument(span),
    );
    state.cycle = Some((AbortOnDrop::new(&task), tx));
}
