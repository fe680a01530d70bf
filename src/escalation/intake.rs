//! `EscalationIntake`: the escalation subtree's one reader of the log. It
//! reads the issue rows after its durable cursor (`cursors/escalation`) and
//! hands each component's rows to that component's coordinator, in log
//! order, as one call per batch.
//!
//! The cursor moves past a batch only once every coordinator it concerns
//! has answered, and a coordinator answers once it has saved what the rows
//! changed (`saved.rs`). A coordinator that is restarting (not registered,
//! or not answering) holds the batch back: the intake offers it again on its
//! next tick, and the coordinators that took it already recognise the rows
//! by seq. So a `kill -9` anywhere replays rows, never skips them, and a
//! replay changes nothing.
//!
//! This replaces the in-memory issue bus and the catch-up from the
//! debouncer's store: an issue published while a coordinator restarted is
//! no longer lost, and one kept in the store is no longer judged by today's
//! memory.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::coordinator::CoordinatorMsg;
use crate::audit::{AuditLog, Follower};
use crate::events;
use crate::messages::IssueEvent;
use crate::tasks::AbortOnDrop;

/// Name of the intake's cursor under `<state_dir>/cursors/`.
pub const CURSOR_NAME: &str = "escalation";

/// Seams a coordinator takes in; every other row only moves the cursor.
pub(super) const SEAMS: [&str; 3] = [
    "probe.wake_requested",
    "probe.wake_suppressed",
    "probe.resolved",
];

/// Rows read per batch.
const BATCH: usize = 256;
/// Longest a coordinator may take to answer for a batch before the intake
/// offers it again later (its handler only saves two small files).
const ANSWER: Duration = Duration::from_secs(10);

/// Where one component's rows go.
#[derive(Debug, Clone)]
pub struct Route {
    /// The component.
    pub component: String,
    /// Registry name of its coordinator.
    pub coordinator: String,
    /// Probes listed under the component (`components[].probes`), whose
    /// rows it takes in whatever component the probe names.
    pub probes: BTreeSet<String>,
}

impl Route {
    fn wants(&self, event: &IssueEvent) -> bool {
        event.component == self.component || self.probes.contains(&event.probe)
    }
}

/// Arguments, cloneable so the supervisor can respawn the intake.
#[derive(Debug, Clone)]
pub struct IntakeArgs {
    /// Append side of the log: its durable seq wakes the intake.
    pub audit: AuditLog,
    /// The log's directory.
    pub audit_dir: PathBuf,
    /// `<state_dir>/cursors`.
    pub cursor_dir: PathBuf,
    /// One route per component with a coordinator.
    pub routes: Vec<Route>,
    /// How often a held batch is offered again and an idle cursor stored.
    pub tick: Duration,
}

/// Messages to the intake.
#[derive(Debug)]
pub enum IntakeMsg {
    /// Rows may have become durable, or the tick came: read on.
    Pump,
}

/// Runtime state.
pub struct IntakeState {
    args: IntakeArgs,
    follower: Follower,
    /// A batch read but not yet taken in by every coordinator it concerns.
    held: Option<(u64, Vec<IssueEvent>)>,
    _watcher: AbortOnDrop,
}

/// The intake actor.
pub struct EscalationIntake;

impl Actor for EscalationIntake {
    type Msg = IntakeMsg;
    type State = IntakeState;
    type Arguments = IntakeArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<IntakeMsg>,
        args: IntakeArgs,
    ) -> Result<IntakeState, ActorProcessingErr> {
        let (follower, seq) = Follower::open(
            &args.audit_dir,
            &args.cursor_dir,
            CURSOR_NAME,
            "escalation intake",
        )?;
        let watcher = args
            .audit
            .wake_on_durable(myself.clone(), || IntakeMsg::Pump);
        myself.send_interval(args.tick, || IntakeMsg::Pump);
        let _ = myself.send_message(IntakeMsg::Pump);
        tracing::info!(cursor = seq, "Escalation intake started.");
        Ok(IntakeState {
            args,
            follower,
            held: None,
            _watcher: AbortOnDrop::new(&watcher),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<IntakeMsg>,
        state: &mut IntakeState,
    ) -> Result<(), ActorProcessingErr> {
        store(state, true);
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<IntakeMsg>,
        message: IntakeMsg,
        state: &mut IntakeState,
    ) -> Result<(), ActorProcessingErr> {
        let IntakeMsg::Pump = message;
        // Bounded: each pass reads at most a batch, and a full batch is the
        // only reason to go round again.
        loop {
            let (last, events, full) = match state.held.take() {
                Some((last, events)) => (last, events, true),
                None => {
                    let batch = state
                        .follower
                        .next_batch(BATCH, &SEAMS, |row| events::issue_event(row));
                    let Some(&(last, _)) = batch.last() else {
                        break;
                    };
                    let full = batch.len() >= BATCH;
                    (
                        last,
                        batch.into_iter().filter_map(|(_, e)| e).collect(),
                        full,
                    )
                }
            };
            if !deliver(&state.args.routes, &events).await {
                state.held = Some((last, events));
                break;
            }
            state.follower.handled(last);
            store(state, false);
            if !full {
                break;
            }
        }
        store(state, false);
        Ok(())
    }
}

/// Hands each route its rows of `events`; false when a coordinator could
/// not take them now.
async fn deliver(routes: &[Route], events: &[IssueEvent]) -> bool {
    for route in routes {
        let mine: Vec<IssueEvent> = events.iter().filter(|e| route.wants(e)).cloned().collect();
        if mine.is_empty() {
            continue;
        }
        let Some(coordinator) = ActorRef::<CoordinatorMsg>::where_is(route.coordinator.clone())
        else {
            tracing::debug!(component = %route.component, "The coordinator is not running; its rows wait.");
            return false;
        };
        let answer = ractor::call_t!(
            coordinator,
            |reply| CoordinatorMsg::Issues(mine, reply),
            u64::try_from(ANSWER.as_millis()).unwrap_or(u64::MAX)
        );
        if let Err(error) = answer {
            tracing::warn!(component = %route.component, %error, "The coordinator did not take its rows; they are offered again.");
            return false;
        }
    }
    true
}

/// Writes the cursor if it is due ([`Follower::due`]; at once with `now`).
fn store(state: &mut IntakeState, now: bool) {
    if let Some(seq) = state.follower.due(now)
        && let Err(error) = state.follower.store(seq)
    {
        tracing::error!(%error, "Could not store the escalation intake's cursor; rows after the last stored one are replayed after a restart.");
    }
}
