//! `IncidentCommander`: the actor around the commander's pure core
//! ([`super::core`]). It turns each message into a core input, carries out
//! the effects the core returns, in order, and answers the effects that
//! need an answer (an id, evidence, a row's seq, deliveries, the timeline)
//! with the next input. Every decision is the core's; the actor owns the
//! I/O: the intake of issue rows after its cursor, the files under
//! `<state_dir>/incidents/`, the shared store and freeze set, `incident.*`
//! rows and notices.
//!
//! Restart safety: incidents live on disk and in the shared store; a new
//! instance reloads the disk, keeps the clock marks the store held, rebuilds
//! the freeze set and resumes the log after its cursor. Handlers never return
//! `Err` for an I/O failure (a restart would not fix a full disk): a failed
//! effect ends its chain, is logged at ERROR and answers the caller.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use tracing::Instrument;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::clock::Clock;
use super::core::{CommanderCore, Effect, Input, Log, ProbeNow, Probes, Reply};
use super::intake::{BATCH, Intake, Row};
use super::model::Incident;
use super::state::healthy_run;
use super::{CommandError, CommanderArgs, IncidentError, IncidentMsg};
use super::{disk, evidence, postmortem};
use crate::messages::IssueEvent;
use crate::notify::Route;
use crate::tasks::AbortOnDrop;

/// Runtime state, rebuilt from args on every start.
pub struct CommanderState {
    args: CommanderArgs,
    root: PathBuf,
    /// Every decision and what it rests on.
    core: CommanderCore,
    clock: Clock,
    /// The log after the commander's cursor.
    intake: Intake,
    ticker: Option<ractor::concurrency::JoinHandle<()>>,
    /// Wakes the actor when rows become durable; aborted with the state.
    _watcher: AbortOnDrop,
}

impl Drop for CommanderState {
    fn drop(&mut self) {
        // A killed commander skips post_stop; its ticker must not outlive it.
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
    }
}

/// The incident commander actor.
pub struct IncidentCommander;

impl Actor for IncidentCommander {
    type Msg = IncidentMsg;
    type State = CommanderState;
    type Arguments = CommanderArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<IncidentMsg>,
        args: CommanderArgs,
    ) -> Result<CommanderState, ActorProcessingErr> {
        let root = disk::incidents_root(&args.state_dir);
        let (incidents, skipped) = disk::load_all(&root)?;
        for path in skipped {
            tracing::warn!(path = %path.display(), "Skipped an incident directory without a readable incident.json.");
        }
        let (intake, progress) = Intake::open(&args.audit_dir, &args.cursor_dir, &root)?;
        let mut core = CommanderCore::new(args.core_config(), progress.open_critical);
        for entry in args.freeze.iter() {
            core.keep_frozen(entry.key().clone(), entry.value().clone());
        }
        // The store outlives a commander: its clock marks are kept, and so
        // is an incident it holds that the disk lost.
        let kept: HashMap<String, Incident> = (args.store.iter())
            .map(|entry| (entry.key().clone(), entry.value().clone()))
            .collect();
        let clock = Clock::start();
        for incident in incidents.into_iter().chain(kept.values().cloned()) {
            let old = kept.get(&incident.id);
            let opened = old.and_then(|old| old.opened_tick).map(|t| clock.at(t));
            let update = old.and_then(|o| o.last_update_tick).map(|t| clock.at(t));
            if core.incident(&incident.id).is_none() {
                core.restore(incident, (opened, update), clock.now());
            }
        }
        // Before the replay: incidents only the log knows (opened by another
        // node just before it handed over) are rebuilt, so the replay joins
        // them instead of opening them again.
        let adopted = super::adopt::from_log(&args.audit_dir, progress.seq, |id| {
            core.incident(id).is_some()
        });
        for incident in adopted {
            tracing::warn!(id = %incident.id, "Adopted an incident from the audit log that this node's disk does not hold.");
            disk::save(&root, &incident)?;
            core.restore(incident, (None, None), clock.now());
        }
        for (component, id) in core.frozen() {
            args.freeze.insert(component.clone(), id.clone());
        }
        let watcher = args
            .audit
            .wake_on_durable(myself.clone(), || IncidentMsg::Pump);
        let _ = myself.send_message(IncidentMsg::Pump);
        let ticker = myself.send_interval(args.tick, || IncidentMsg::Tick);
        let state = CommanderState {
            root,
            core,
            clock,
            intake,
            ticker: Some(ticker),
            _watcher: AbortOnDrop::new(&watcher),
            args,
        };
        for incident in state.core.incidents() {
            let published = state.marked(incident.clone());
            state.args.store.insert(incident.id.clone(), published);
        }
        tracing::info!(
            incidents = state.args.store.len(),
            cursor = progress.seq,
            "Incident commander started."
        );
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<IncidentMsg>,
        state: &mut CommanderState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(ticker) = state.ticker.take() {
            ticker.abort();
        }
        state
            .intake
            .store_due(|| state.core.open_critical(), true)?;
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<IncidentMsg>,
        message: IncidentMsg,
        state: &mut CommanderState,
    ) -> Result<(), ActorProcessingErr> {
        let done = |reply| Some(Waiting::Done(reply));
        let (input, waiting) = match message {
            IncidentMsg::Pump => return pump(state).await,
            IncidentMsg::Issue(event) => {
                issue(state, event).await;
                return Ok(());
            }
            IncidentMsg::Tick => {
                for id in state.core.active() {
                    let probes = state.probes(&id);
                    run(state, Input::Tick { id, probes }, None).await;
                }
                return Ok(state
                    .intake
                    .store_due(|| state.core.open_critical(), true)?);
            }
            IncidentMsg::Open { trigger, reply } => {
                (Input::Open(trigger), reply.map(Waiting::Opened))
            }
            IncidentMsg::Note {
                id,
                text,
                author,
                reply,
            } => (Input::Note { id, text, author }, done(reply)),
            IncidentMsg::SetSeverity {
                id,
                severity,
                reason,
                reply,
            } => {
                let input = Input::SetSeverity {
                    id,
                    severity,
                    reason,
                };
                (input, done(reply))
            }
            IncidentMsg::Resolve {
                id,
                note,
                force,
                reply,
            } => {
                let probes = state.probes(&id);
                let input = Input::Resolve {
                    id,
                    note,
                    force,
                    probes,
                };
                (input, done(reply))
            }
            IncidentMsg::Timeline {
                session,
                component,
                kind,
                text,
                details,
            } => {
                let input = Input::Timeline {
                    session,
                    component,
                    kind,
                    text,
                    details,
                };
                (input, None)
            }
        };
        run(state, input, waiting).await;
        Ok(())
    }
}

/// The caller waiting for the end of a chain.
enum Waiting {
    Opened(RpcReplyPort<String>),
    Done(RpcReplyPort<Result<(), CommandError>>),
}

/// Handles the issue rows after the cursor, a batch at a time, and moves
/// the cursor (with the critical tally) after each batch. A crash replays
/// at most one batch, which is harmless: a session an incident holds joins
/// it again instead of opening another. A cursor that cannot be written
/// fails the actor, so its supervisor restarts it from the last good one.
async fn pump(state: &mut CommanderState) -> Result<(), ActorProcessingErr> {
    loop {
        let batch = state.intake.next_batch();
        let Some(&(last, _)) = batch.last() else {
            return Ok(());
        };
        let full = batch.len() >= BATCH;
        for (seq, row) in batch {
            match row {
                Some(Row::Issue(event)) => issue(state, event).await,
                Some(Row::Delivery { id, delivered }) => {
                    let input = Input::Delivery { seq, id, delivered };
                    run(state, input, None).await;
                }
                None => {}
            }
        }
        state.intake.handled(last);
        state
            .intake
            .store_due(|| state.core.open_critical(), false)?;
        if !full {
            return Ok(());
        }
    }
}

/// Handles one issue row inside a span that continues its trace.
async fn issue(state: &mut CommanderState, event: IssueEvent) {
    let span = tracing::info_span!(parent: None, "incident.issue", actor = "incidents", probe = %event.probe);
    crate::telemetry::trace::continue_from(&span, event.traceparent.as_deref());
    run(state, Input::Issue(event), None).instrument(span).await
}

/// Steps the core with `input` and carries out its effects in order; an
/// effect's answer is stepped at once and its effects run before the rest.
/// The first failed effect ends the chain: logged, and `waiting` hears it.
async fn run(state: &mut CommanderState, input: Input, mut waiting: Option<Waiting>) {
    let mut queue = VecDeque::from(state.core.step(input, state.clock.now()));
    while let Some(effect) = queue.pop_front() {
        match execute(state, effect, &mut waiting).await {
            Ok(None) => {}
            Ok(Some(answer)) => {
                let next = state.core.step(answer, state.clock.now());
                for effect in next.into_iter().rev() {
                    queue.push_front(effect);
                }
            }
            Err(error) => {
                tracing::error!(error = %error, "Incident bookkeeping failed.");
                if let Some(Waiting::Done(reply)) = waiting {
                    let _ = reply.send(Err(CommandError::Files(error)));
                }
                return;
            }
        }
    }
}

/// Carries out one effect; `Some` is the core's next input.
async fn execute(
    state: &mut CommanderState,
    effect: Effect,
    waiting: &mut Option<Waiting>,
) -> Result<Option<Input>, IncidentError> {
    let root = &state.root;
    match effect {
        Effect::ClaimId { date, draft } => {
            let dir = root.clone();
            let id = disk::blocking(root, move || disk::claim_id(&dir, &date)).await?;
            return Ok(Some(Input::IdClaimed { id, draft }));
        }
        // File effects fsync; on a blocking thread they cannot hold one of
        // the runtime's workers (two on a small host) while the probes and
        // the wake consumer wait behind it: a burst of incidents did that.
        Effect::Save(incident) => {
            let dir = root.clone();
            disk::blocking(root, move || disk::save(&dir, &incident)).await?;
        }
        Effect::Publish(incident) => {
            let incident = state.marked(*incident);
            state.args.store.insert(incident.id.clone(), incident);
        }
        Effect::Timeline { id, entry } => {
            let dir = root.clone();
            disk::blocking(root, move || disk::append_timeline(&dir, &id, &entry)).await?;
        }
        Effect::Snapshot(snapshot) => {
            let files = evidence::capture(&state.args, root, &snapshot).await?;
            let then = snapshot.then;
            return Ok(Some(Input::EvidenceWritten { files, then }));
        }
        Effect::Freeze { id, components } => {
            for component in components {
                state.args.freeze.insert(component, id.clone());
            }
        }
        Effect::Unfreeze { id, components } => {
            for component in components {
                state
                    .args
                    .freeze
                    .remove_if(&component, |_, owner| *owner == id);
            }
        }
        Effect::Append { row, then } => {
            let seq = state.args.audit.append(row).await;
            // The row records what the files already say: a failure is not fatal.
            if let Err(error) = &seq {
                tracing::error!(error = %error, "Could not append an incident row to the audit log.");
            }
            let seq = seq.ok();
            return Ok(then.map(|then| Input::Appended { seq, then }));
        }
        Effect::Notify { notice, then } => {
            // The wake consumer delivers it from the log; its delivery rows
            // come back through the intake, into the incident's timeline.
            let seq = match state.args.outbox.request(&notice, Route::Subscribed).await {
                Ok(seq) => seq,
                Err(error) => {
                    tracing::error!(error = %error, kind = %notice.kind, "Could not request an incident notice.");
                    None
                }
            };
            return Ok(Some(Input::Requested { seq, then }));
        }
        Effect::ReadTimeline(then) => {
            let (dir, id) = (root.clone(), then.id.clone());
            let entries = disk::blocking(root, move || disk::read_timeline(&dir, &id)).await?;
            return Ok(Some(Input::TimelineRead { entries, then }));
        }
        Effect::Postmortem(incident) => {
            let dir = root.clone();
            disk::blocking(root, move || postmortem::write(&dir, &incident)).await?;
        }
        Effect::Reply(reply) => match (reply, waiting.take()) {
            (Reply::Opened(id), Some(Waiting::Opened(port))) => {
                let _ = port.send(id);
            }
            (Reply::Done(done), Some(Waiting::Done(port))) => {
                let _ = port.send(done.map_err(CommandError::from));
            }
            // Nobody asked (an issue, a tick).
            (_, other) => *waiting = other,
        },
        Effect::Log(Log::Opened { id, severity }) => {
            tracing::info!(id = %id, severity = %severity, "Incident opened.");
        }
        Effect::Log(Log::Resolved { id, force }) => {
            tracing::info!(id = %id, force, "Incident resolved; postmortem written.");
        }
        Effect::Log(Log::Dropped { kind }) => {
            tracing::debug!(kind = %kind, "No open incident for a timeline entry; dropped.");
        }
    }
    Ok(None)
}

impl CommanderState {
    /// The probes of incident `id` as the observation maps hold them now.
    fn probes(&self, id: &str) -> Probes {
        let probes = self.core.incident(id).map(|i| &i.probes).into_iter();
        probes
            .flatten()
            .map(|probe| {
                let now = ProbeNow {
                    healthy_run: healthy_run(&self.args.history, probe),
                    latest: self.args.latest.get(probe).map(|o| o.status),
                };
                (probe.clone(), now)
            })
            .collect()
    }

    /// `incident` with the core's clock marks as tokio instants, for the
    /// store (a restarted commander takes them back).
    fn marked(&self, mut incident: Incident) -> Incident {
        if let Some((opened, last_update)) = self.core.clock_marks(&incident.id) {
            incident.opened_tick = Some(self.clock.instant(opened));
            incident.last_update_tick = Some(self.clock.instant(last_update));
        }
        incident
    }
}
