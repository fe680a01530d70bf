//! `IncidentCommander`: owns the incidents of one Warden instance.
//!
//! In: the issue rows of the audit log, read after the commander's own
//! durable cursor (`intake.rs`; `Pump` when rows become durable), `Open`
//! (escalation, the root supervisor, the API), `Note`, `SetSeverity`,
//! `Resolve` (the API), `Timeline` (escalation's fix attempts and tier
//! calls), `Tick` (cadence and auto-resolve). Out: `incident.*` audit rows,
//! incident notices to every notifier, the shared [`IncidentStore`] and
//! [`FreezeSet`], and the files under `<state_dir>/incidents/`.
//!
//! Restart safety: incidents live on disk and in the shared store; a new
//! instance reloads the disk, keeps the clock marks the store held, rebuilds
//! the freeze set and resumes the log after its cursor. Handlers never return
//! `Err` for an I/O failure (a restart would not fix a full disk): they log
//! it at ERROR and answer the caller with the error.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;
use tracing::Instrument;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::disk;
use super::intake::{Intake, Progress};
use super::model::{
    Incident, IncidentStatus, OpenTrigger, SeverityChange, TimelineEntry, now_rfc3339,
};
use super::severity::{Sev, SeverityFacts, freezes, is_important, rate};
use super::state::{auto_resolvable, best, cadence_due, impact_stopped, joins};
use super::{CommandError, FreezeSet, IncidentError, IncidentStore, postmortem};
use crate::audit::{AuditLog, AuditReader, NewRow};
use crate::debounce::{LatestObservations, ObservationHistory};
use crate::messages::IssueEvent;
use crate::notify::{DeliveryOutcome, Notice, NoticeStatus, Outbox, Route};
use crate::settings::{Criticality, IncidentSettings, Severity};
use crate::tasks::AbortOnDrop;

/// The effective configuration for incident evidence, rendered (secrets
/// redacted) only when an incident is written: kept as a JSON tree it would
/// cost kilobytes per configured probe for the life of the process. The
/// rendering is stored once per version in the state dir
/// ([`crate::storage::store_config`]) and evidence names its digest.
#[derive(Clone)]
pub struct EffectiveConfig {
    render: std::sync::Arc<dyn Fn() -> Value + Send + Sync>,
    /// The version this process already stored: later incidents only check
    /// that the file is still there instead of rendering it again.
    stored: std::sync::Arc<std::sync::Mutex<Option<crate::storage::StoredConfig>>>,
}

impl EffectiveConfig {
    /// Renders `settings` when asked; secrets serialise redacted.
    pub fn of(settings: std::sync::Arc<crate::settings::Settings>) -> Self {
        Self::from_fn(move || serde_json::to_value(&*settings).unwrap_or_default())
    }

    /// A fixed value (tests).
    pub fn fixed(value: Value) -> Self {
        Self::from_fn(move || value.clone())
    }

    fn from_fn(render: impl Fn() -> Value + Send + Sync + 'static) -> Self {
        Self {
            render: std::sync::Arc::new(render),
            stored: std::sync::Arc::default(),
        }
    }

    /// The configuration as JSON.
    pub fn render(&self) -> Value {
        (self.render)()
    }

    /// Stores this configuration version under `state_dir` (once per
    /// digest) and says where. Blocks on file I/O.
    pub fn store(
        &self,
        state_dir: &std::path::Path,
    ) -> Result<crate::storage::StoredConfig, crate::storage::config_versions::StoreError> {
        let mut stored = self
            .stored
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(known) = stored.as_ref()
            && std::fs::metadata(state_dir.join(&known.path))
                .is_ok_and(|meta| meta.len() == known.size)
        {
            return Ok(known.clone());
        }
        let bytes = serde_json::to_vec_pretty(&self.render()).unwrap_or_default();
        let fresh = crate::storage::store_config(state_dir, &bytes)?;
        *stored = Some(fresh.clone());
        Ok(fresh)
    }
}

impl std::fmt::Debug for EffectiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EffectiveConfig")
    }
}

/// Arguments, cloneable so a supervisor can respawn the commander.
#[derive(Clone)]
pub struct CommanderArgs {
    /// `[incidents]`.
    pub settings: IncidentSettings,
    /// `service.state_dir`; incidents live in its `incidents/` folder.
    pub state_dir: PathBuf,
    /// The audit log (append side).
    pub audit: AuditLog,
    /// The audit log's directory, read for evidence.
    pub audit_dir: PathBuf,
    /// Where incident notices go (routing, delivery rows, metrics).
    pub outbox: Outbox,
    /// Latest observation per probe (current impact).
    pub latest: LatestObservations,
    /// Recent observations per probe (evidence, resolution).
    pub history: ObservationHistory,
    /// Criticality per component.
    pub criticality: HashMap<String, Criticality>,
    /// `depends_on` per component.
    pub depends_on: HashMap<String, Vec<String>>,
    /// Every incident, shared with the API.
    pub store: IncidentStore,
    /// Where the commander keeps its cursor (`<state_dir>/cursors`).
    pub cursor_dir: PathBuf,
    /// Components whose automation is frozen.
    pub freeze: FreezeSet,
    /// The effective configuration, secrets redacted, copied into evidence.
    pub effective_config: EffectiveConfig,
    /// How often cadence and auto-resolution are checked.
    pub tick: Duration,
}

/// Messages to the commander.
#[derive(Debug)]
pub enum IncidentMsg {
    /// An issue row, as the intake read it from the log (also sent by
    /// tests that drive the commander without a log).
    Issue(IssueEvent),
    /// New rows may be durable: read the log after the cursor.
    Pump,
    /// Open an incident (or join the open one the trigger belongs to);
    /// replies with the incident id.
    Open {
        /// What asks for it.
        trigger: OpenTrigger,
        /// The id, once evidence and the `incident.opened` row are written.
        reply: Option<RpcReplyPort<String>>,
    },
    /// Add an operator note to the timeline.
    Note {
        /// The incident.
        id: String,
        /// The note.
        text: String,
        /// Who wrote it.
        author: Option<String>,
        /// `Err` names what is wrong (unknown id, disk).
        reply: RpcReplyPort<Result<(), CommandError>>,
    },
    /// Change the severity (operator; audited).
    SetSeverity {
        /// The incident.
        id: String,
        /// The new severity.
        severity: Sev,
        /// Why.
        reason: String,
        /// `Err` names what is wrong (unknown id, resolved, disk).
        reply: RpcReplyPort<Result<(), CommandError>>,
    },
    /// Resolve: refused while an affected probe is unhealthy unless forced.
    Resolve {
        /// The incident.
        id: String,
        /// The operator's note.
        note: String,
        /// Resolve even though impact has not stopped.
        force: bool,
        /// [`CommandError::ImpactOngoing`] when refused.
        reply: RpcReplyPort<Result<(), CommandError>>,
    },
    /// Append to the timeline of the open incident of `session` (else of
    /// `component`); dropped when no open incident matches.
    Timeline {
        /// A `caller_session_id`.
        session: Option<String>,
        /// A component.
        component: Option<String>,
        /// `fix`, `tier`, `rollback`, ...
        kind: String,
        /// One line.
        text: String,
        /// Anything else (`outcome` feeds the postmortem).
        details: Value,
    },
    /// Time passed: send due updates, resolve incidents whose impact stopped.
    Tick,
}

/// Runtime state, rebuilt from args on every start.
pub struct CommanderState {
    args: CommanderArgs,
    root: PathBuf,
    /// Open critical issue sessions per component, for the "several
    /// important components" rule. Kept with the cursor, so a restart
    /// resumes with the tally as of the last row handled.
    open_critical: HashMap<String, BTreeSet<String>>,
    /// The log after the commander's cursor.
    intake: Intake,
    /// The last row handled.
    handled: u64,
    /// The last row on disk, and when it was stored.
    stored: (u64, Instant),
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
        let now = Instant::now();
        let wall_now = std::time::SystemTime::now();
        for mut incident in incidents {
            let kept = args
                .store
                .get(&incident.id)
                .map(|old| (old.last_update_tick, old.opened_tick));
            match kept {
                Some((last, opened)) => {
                    incident.last_update_tick = last;
                    incident.opened_tick = opened;
                }
                None => {
                    incident.last_update_tick = Some(now);
                    let age = humantime::parse_rfc3339(&incident.opened_at)
                        .ok()
                        .and_then(|t| wall_now.duration_since(t).ok())
                        .unwrap_or_default();
                    incident.opened_tick = Some(now.checked_sub(age).unwrap_or(now));
                }
            }
            if incident.status == IncidentStatus::Open
                && freezes(incident.severity, args.settings.freeze_automation_at)
            {
                for component in &incident.components {
                    args.freeze
                        .entry(component.clone())
                        .or_insert_with(|| incident.id.clone());
                }
            }
            args.store.insert(incident.id.clone(), incident);
        }
        let (intake, progress) = Intake::open(&args.audit_dir, &args.cursor_dir, &root)?;
        let mut durable = args.audit.subscribe();
        let pump = myself.clone();
        let watcher = tokio::spawn(async move {
            // Bounded by the actor: aborted when its state drops.
            while durable.changed().await.is_ok() {
                if pump.cast(IncidentMsg::Pump).is_err() {
                    return;
                }
            }
        });
        let _ = myself.send_message(IncidentMsg::Pump);
        let ticker = myself.send_interval(args.tick, || IncidentMsg::Tick);
        tracing::info!(
            incidents = args.store.len(),
            cursor = progress.seq,
            "Incident commander started."
        );
        Ok(CommanderState {
            args,
            root,
            open_critical: progress.open_critical,
            intake,
            handled: progress.seq,
            stored: (progress.seq, Instant::now()),
            ticker: Some(ticker),
            _watcher: AbortOnDrop::new(&watcher),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<IncidentMsg>,
        state: &mut CommanderState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(ticker) = state.ticker.take() {
            ticker.abort();
        }
        store_progress(state, true)?;
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<IncidentMsg>,
        message: IncidentMsg,
        state: &mut CommanderState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            IncidentMsg::Pump => pump(state).await?,
            IncidentMsg::Issue(event) => issue(state, event).await,
            IncidentMsg::Open { trigger, reply } => {
                let result = on_open(state, trigger).await;
                if let Some(reply) = reply
                    && let Ok(id) = &result
                {
                    let _ = reply.send(id.clone());
                }
                logged(result.map(|_| ()));
            }
            IncidentMsg::Note {
                id,
                text,
                author,
                reply,
            } => {
                let _ = reply.send(on_note(state, &id, text, author).await);
            }
            IncidentMsg::SetSeverity {
                id,
                severity,
                reason,
                reply,
            } => {
                let _ = reply.send(on_set_severity(state, &id, severity, reason).await);
            }
            IncidentMsg::Resolve {
                id,
                note,
                force,
                reply,
            } => {
                let _ = reply.send(on_resolve(state, &id, note, force, "operator").await);
            }
            IncidentMsg::Timeline {
                session,
                component,
                kind,
                text,
                details,
            } => logged(on_timeline(state, session, component, kind, text, details)),
            IncidentMsg::Tick => {
                on_tick(state).await;
                store_progress(state, true)?;
            }
        }
        Ok(())
    }
}

fn logged(result: Result<(), IncidentError>) {
    if let Err(error) = result {
        tracing::error!(error = %error, "Incident bookkeeping failed.");
    }
}

/// Applies `change` to the stored incident and returns a copy, or `None`
/// for an unknown id. The map guard is dropped before the caller awaits.
fn update(store: &IncidentStore, id: &str, change: impl FnOnce(&mut Incident)) -> Option<Incident> {
    let mut entry = store.get_mut(id)?;
    change(&mut entry);
    entry.updated_at = now_rfc3339();
    Some(entry.clone())
}

fn timeline(state: &CommanderState, id: &str, entry: TimelineEntry) -> Result<(), IncidentError> {
    disk::append_timeline(&state.root, id, &entry)
}

fn save(state: &CommanderState, incident: &Incident) -> Result<(), IncidentError> {
    disk::save(&state.root, incident)
}

async fn audit(state: &CommanderState, row: NewRow) -> Option<u64> {
    match state.args.audit.append(row).await {
        Ok(seq) => Some(seq),
        Err(error) => {
            tracing::error!(error = %error, "Could not append an incident row to the audit log.");
            None
        }
    }
}

fn row(seam: &str, incident: &Incident, details: Value) -> NewRow {
    let mut row = NewRow::new(seam, details);
    if let Some(component) = incident.components.iter().next() {
        row = row.component(component.clone());
    }
    row
}

// ---------------------------------------------------------------- issues

fn criticality(state: &CommanderState, component: &str) -> Criticality {
    state
        .args
        .criticality
        .get(component)
        .copied()
        .unwrap_or_default()
}

/// The active incident an issue on `component` (with `session`) belongs to.
fn related(state: &CommanderState, session: Option<&str>, component: &str) -> Option<String> {
    let now = Instant::now();
    let window = state.args.settings.related_window;
    let candidates: Vec<Incident> = state
        .args
        .store
        .iter()
        .filter(|incident| {
            let since = incident
                .opened_tick
                .map_or(Duration::MAX, |t| now.saturating_duration_since(t));
            joins(
                incident,
                session,
                component,
                &state.args.depends_on,
                since,
                window,
            )
        })
        .map(|incident| incident.clone())
        .collect();
    best(&candidates).map(|incident| incident.id.clone())
}

/// Handles one issue row inside a span that continues its trace.
async fn issue(state: &mut CommanderState, event: IssueEvent) {
    let span = tracing::info_span!(parent: None, "incident.issue", actor = "incidents", probe = %event.probe);
    crate::telemetry::trace::continue_from(&span, event.traceparent.as_deref());
    logged(on_issue(state, event).instrument(span).await)
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
        let full = batch.len() >= super::intake::BATCH;
        for (_, event) in batch {
            if let Some(event) = event {
                issue(state, event).await;
            }
        }
        state.handled = last;
        store_progress(state, false)?;
        if !full {
            return Ok(());
        }
    }
}

/// How often, at most, the cursor and the tally are written during a burst:
/// each write is two fsyncs on the disk the audit log syncs on, and a crash
/// only replays what the cursor has not passed (harmlessly, see [`pump`]).
const STORE_EVERY: Duration = Duration::from_millis(200);

/// Writes the cursor and the tally if they moved and `STORE_EVERY` passed
/// (or `now`: at stop, and on the tick so a quiet log is not left behind).
fn store_progress(state: &mut CommanderState, now: bool) -> Result<(), ActorProcessingErr> {
    let (seq, at) = state.stored;
    if state.handled > seq && (now || at.elapsed() >= STORE_EVERY) {
        state.intake.store(&Progress {
            seq: state.handled,
            open_critical: state.open_critical.clone(),
        })?;
        state.stored = (state.handled, Instant::now());
    }
    Ok(())
}

async fn on_issue(state: &mut CommanderState, event: IssueEvent) -> Result<(), IncidentError> {
    let session = event.caller_session_id.as_deref();
    match event.seam.as_str() {
        "probe.wake_requested" => {
            if event.severity == Severity::Critical
                && let Some(session) = session
            {
                state
                    .open_critical
                    .entry(event.component.clone())
                    .or_default()
                    .insert(session.to_owned());
            }
            let important_down = state
                .open_critical
                .iter()
                .filter(|(component, sessions)| {
                    !sessions.is_empty() && is_important(criticality(state, component))
                })
                .count();
            let severity = rate(&SeverityFacts {
                category: &event.category,
                issue: event.severity,
                criticality: criticality(state, &event.component),
                ladder_exhausted: false,
                important_components_down: important_down,
            });
            let reason = format!(
                "{} issue {} on {} ({})",
                event.severity.as_str(),
                event.category,
                event.component,
                event.probe
            );
            if let Some(id) = related(state, session, &event.component) {
                join(state, &id, &event, Some((severity, reason))).await
            } else if severity <= Sev::Sev3 {
                let trigger = OpenTrigger::Issue {
                    caller_session_id: event.caller_session_id.clone(),
                    probe: event.probe.clone(),
                    component: event.component.clone(),
                    category: event.category.clone(),
                    severity: event.severity,
                    seq: event.seq,
                };
                open(state, trigger, severity, reason).await.map(|_| ())
            } else {
                Ok(())
            }
        }
        // Recorded or unstable issues join what is open but never open anything.
        "probe.wake_suppressed" | "probe.flapping" => {
            match related(state, session, &event.component) {
                Some(id) => join(state, &id, &event, None).await,
                None => Ok(()),
            }
        }
        "probe.resolved" => {
            if let Some(session) = session {
                for sessions in state.open_critical.values_mut() {
                    sessions.remove(session);
                }
                issue_resolved(state, session, &event).await?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Attaches an issue to incident `id`, raising its severity when the issue
/// rates worse, and snapshots evidence for a probe new to the incident.
async fn join(
    state: &mut CommanderState,
    id: &str,
    event: &IssueEvent,
    rating: Option<(Sev, String)>,
) -> Result<(), IncidentError> {
    let mut new_probe = false;
    let mut known_session = false;
    let Some(incident) = update(&state.args.store, id, |incident| {
        new_probe = incident.probes.insert(event.probe.clone());
        incident.components.insert(event.component.clone());
        if let Some(session) = &event.caller_session_id {
            known_session = !incident.sessions.insert(session.clone());
            incident.resolved_sessions.remove(session);
        }
        if incident.status == IncidentStatus::Mitigated {
            // A new wake means impact is back.
            incident.status = IncidentStatus::Open;
        }
    }) else {
        return Ok(());
    };
    let (kind, text) = if known_session {
        (
            "wake",
            format!("{} woke again ({})", event.probe, event.seam),
        )
    } else {
        (
            "joined",
            format!(
                "{} on {} joined: {} ({})",
                event.probe, event.component, event.category, event.seam
            ),
        )
    };
    timeline(
        state,
        id,
        TimelineEntry::now(kind, text, serde_json::to_value(event).unwrap_or_default()),
    )?;
    save(state, &incident)?;
    if new_probe {
        let sessions: Vec<String> = event.caller_session_id.iter().cloned().collect();
        let file = format!("joined-{}", event.probe);
        let written = snapshot(
            state,
            id,
            std::slice::from_ref(&event.probe),
            &sessions,
            &file,
            false,
        )
        .await?;
        if let Some(incident) = update(&state.args.store, id, |i| i.evidence.extend(written)) {
            save(state, &incident)?;
        }
    }
    if !known_session
        && let Some(seq) = audit(
            state,
            row(
                "incident.joined",
                &incident,
                json!({ "id": id, "probe": event.probe, "issue_seq": event.seq, "seam": event.seam }),
            )
            .session(event.caller_session_id.clone().unwrap_or_default()),
        )
        .await
    {
        tracing::debug!(seq, id, "Issue joined an incident.");
    }
    if let Some((severity, reason)) = rating
        && severity < incident.severity
    {
        change_severity(state, id, severity, reason).await?;
    }
    apply_freeze(state, id).await
}

async fn issue_resolved(
    state: &mut CommanderState,
    session: &str,
    event: &IssueEvent,
) -> Result<(), IncidentError> {
    let ids: Vec<String> = state
        .args
        .store
        .iter()
        .filter(|i| i.is_active() && i.sessions.contains(session))
        .map(|i| i.id.clone())
        .collect();
    for id in ids {
        let mut mitigated = false;
        let Some(incident) = update(&state.args.store, &id, |incident| {
            incident.resolved_sessions.insert(session.to_owned());
            if incident.status == IncidentStatus::Open
                && incident.sessions.is_subset(&incident.resolved_sessions)
            {
                incident.status = IncidentStatus::Mitigated;
                mitigated = true;
            }
        }) else {
            continue;
        };
        timeline(
            state,
            &id,
            TimelineEntry::now(
                "issue_resolved",
                format!("{} recovered ({})", event.probe, event.category),
                json!({ "caller_session_id": session, "seq": event.seq }),
            ),
        )?;
        save(state, &incident)?;
        if mitigated {
            timeline(
                state,
                &id,
                TimelineEntry::now(
                    "mitigated",
                    "every issue of the incident has resolved; waiting for the probes to stay healthy",
                    Value::Null,
                ),
            )?;
            audit(
                state,
                row("incident.mitigated", &incident, json!({ "id": id })),
            )
            .await;
            apply_freeze(state, &id).await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- opening

async fn on_open(
    state: &mut CommanderState,
    trigger: OpenTrigger,
) -> Result<String, IncidentError> {
    let (severity, reason) = match &trigger {
        OpenTrigger::Issue {
            severity,
            category,
            component,
            ..
        } => (
            rate(&SeverityFacts {
                category,
                issue: *severity,
                criticality: criticality(state, component),
                ladder_exhausted: false,
                important_components_down: 1,
            }),
            format!("issue {category} on {component}"),
        ),
        OpenTrigger::LadderExhausted {
            component,
            history,
            session,
        } => {
            let severity = rate(&SeverityFacts {
                category: "ladder_exhausted",
                issue: Severity::Critical,
                criticality: criticality(state, component),
                ladder_exhausted: true,
                important_components_down: 1,
            });
            let reason = format!("escalation ladder exhausted on {component}");
            // The ladder belongs to whatever incident already covers the component.
            if let Some(id) = related(state, session.as_deref(), component) {
                let incident = update(&state.args.store, &id, |_| {});
                timeline(
                    state,
                    &id,
                    TimelineEntry::now("ladder_exhausted", reason.clone(), history.clone()),
                )?;
                if let Some(incident) = incident
                    && severity < incident.severity
                {
                    change_severity(state, &id, severity, reason).await?;
                    apply_freeze(state, &id).await?;
                }
                return Ok(id);
            }
            (severity, reason)
        }
        OpenTrigger::Meltdown { .. } => (Sev::Sev1, "the supervision tree melted down".to_owned()),
        OpenTrigger::Substrate { detail } => (Sev::Sev1, format!("substrate failure: {detail}")),
        OpenTrigger::Operator { severity, .. } => (
            severity.unwrap_or(Sev::Sev3),
            "opened by an operator".to_owned(),
        ),
    };
    open(state, trigger, severity, reason).await
}

fn title_of(trigger: &OpenTrigger) -> String {
    match trigger {
        OpenTrigger::Issue {
            probe,
            component,
            category,
            ..
        } => format!("{component}: {category} ({probe})"),
        OpenTrigger::LadderExhausted { component, .. } => {
            format!("{component}: escalation ladder exhausted")
        }
        OpenTrigger::Meltdown { .. } => "Warden's supervision tree melted down".to_owned(),
        OpenTrigger::Substrate { detail } => format!("substrate: {detail}"),
        OpenTrigger::Operator { title, .. } => title.clone(),
    }
}

/// Opens a new incident: claim an id, write the record, write the evidence,
/// publish it in the store, and only then append `incident.opened`.
async fn open(
    state: &mut CommanderState,
    trigger: OpenTrigger,
    severity: Sev,
    reason: String,
) -> Result<String, IncidentError> {
    let date = jiff::Timestamp::now().strftime("%Y%m%d").to_string();
    let root = state.root.clone();
    let id = tokio::task::spawn_blocking(move || disk::claim_id(&root, &date))
        .await
        .map_err(|error| IncidentError::Io {
            path: state.root.clone(),
            source: std::io::Error::other(error.to_string()),
        })??;
    let now = now_rfc3339();
    let mut components = BTreeSet::new();
    let mut probes = BTreeSet::new();
    let mut sessions = BTreeSet::new();
    match &trigger {
        OpenTrigger::Issue {
            caller_session_id,
            probe,
            component,
            ..
        } => {
            components.insert(component.clone());
            probes.insert(probe.clone());
            sessions.extend(caller_session_id.iter().cloned());
        }
        OpenTrigger::LadderExhausted { component, .. } => {
            components.insert(component.clone());
        }
        OpenTrigger::Operator {
            components: named, ..
        } => components.extend(named.iter().cloned()),
        OpenTrigger::Meltdown { .. } | OpenTrigger::Substrate { .. } => {}
    }
    let tick = Instant::now();
    let mut incident = Incident {
        id: id.clone(),
        severity,
        status: IncidentStatus::Open,
        title: title_of(&trigger),
        components,
        probes,
        sessions,
        resolved_sessions: BTreeSet::new(),
        opened_at: now.clone(),
        updated_at: now.clone(),
        resolved_at: None,
        trigger,
        last_update_at: now.clone(),
        severity_history: vec![SeverityChange {
            at: now,
            from: None,
            to: severity,
            reason: reason.clone(),
        }],
        evidence: Vec::new(),
        opened_seq: 0,
        notices_sent: 0,
        last_update_tick: Some(tick),
        opened_tick: Some(tick),
    };
    save(state, &incident)?;
    if let OpenTrigger::Issue { .. } = &incident.trigger {
        timeline(
            state,
            &id,
            TimelineEntry::now(
                "wake",
                format!("wake requested: {}", incident.title),
                serde_json::to_value(&incident.trigger).unwrap_or_default(),
            ),
        )?;
    }
    timeline(
        state,
        &id,
        TimelineEntry::now(
            "opened",
            format!("opened as {severity}: {reason}"),
            json!({ "severity": severity, "title": incident.title }),
        ),
    )?;

    // Evidence first: nothing else sees the incident before this is on disk.
    let mut probes: Vec<String> = incident.probes.iter().cloned().collect();
    for observation in state.args.latest.iter() {
        if incident.components.contains(&observation.component)
            && !probes.contains(&observation.probe)
        {
            probes.push(observation.probe.clone());
        }
    }
    let sessions: Vec<String> = incident.sessions.iter().cloned().collect();
    incident.evidence = snapshot(state, &id, &probes, &sessions, "issue", true).await?;
    save(state, &incident)?;
    timeline(
        state,
        &id,
        TimelineEntry::now(
            "evidence",
            format!("{} evidence file(s) written", incident.evidence.len()),
            json!({ "files": incident.evidence }),
        ),
    )?;
    // A freezing incident freezes its components before it becomes visible:
    // an action waiting for this incident's evidence then sees the freeze
    // together with the evidence, never the evidence alone. The freeze is
    // recorded right after `incident.opened`.
    let (freezing, frozen) = mark_freeze(state, &incident);
    state.args.store.insert(id.clone(), incident.clone());

    let opened = row(
        "incident.opened",
        &incident,
        json!({
            "id": id,
            "severity": severity,
            "title": incident.title,
            "reason": reason,
            "evidence": incident.evidence,
            "trigger": incident.trigger,
        }),
    );
    let opened = match incident.sessions.iter().next() {
        Some(session) => opened.session(session.clone()),
        None => opened,
    };
    if let Some(seq) = audit(state, opened).await
        && let Some(updated) = update(&state.args.store, &id, |i| i.opened_seq = seq)
    {
        save(state, &updated)?;
    }
    tracing::info!(id = %id, severity = %severity, "Incident opened.");
    record_freeze(state, &incident, freezing, frozen).await?;
    if let Some(incident) = state.args.store.get(&id).map(|i| i.clone()) {
        let summary = format!(
            "{} opened as {severity}: {reason}. Components: {}.",
            incident.id,
            join_set(&incident.components)
        );
        notify(state, &incident, "incident_opened", summary, Vec::new()).await?;
    }
    Ok(id)
}

fn join_set(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "none".to_owned()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Writes evidence files for `probes` and `sessions` (and the effective
/// config when `with_config`), returning their relative paths.
async fn snapshot(
    state: &CommanderState,
    id: &str,
    probes: &[String],
    sessions: &[String],
    label: &str,
    with_config: bool,
) -> Result<Vec<String>, IncidentError> {
    let observations: serde_json::Map<String, Value> = probes
        .iter()
        .map(|probe| {
            let history = state
                .args
                .history
                .get(probe)
                .map(|h| h.iter().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            let latest = state.args.latest.get(probe).map(|o| o.clone());
            (
                probe.clone(),
                json!({ "latest": latest, "history": history }),
            )
        })
        .collect();
    let root = state.root.clone();
    let id = id.to_owned();
    let audit_dir = state.args.audit_dir.clone();
    let sessions = sessions.to_vec();
    let max_rows = state.args.settings.evidence_rows;
    let config = with_config.then(|| state.args.effective_config.clone());
    let state_dir = state.args.state_dir.clone();
    let label = label.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut written = Vec::new();
        written.push(disk::write_evidence(
            &root,
            &id,
            &format!("{label}-observations"),
            &Value::Object(observations),
        )?);
        written.push(disk::write_evidence(
            &root,
            &id,
            &format!("{label}-audit"),
            &audit_rows(&audit_dir, &sessions, max_rows),
        )?);
        if let Some(config) = config {
            // A reference, not a copy: the version is stored once per digest.
            let reference = match config.store(&state_dir) {
                Ok(stored) => json!({
                    "config_digest": stored.digest,
                    "path": stored.path,
                    "size": stored.size,
                    "note": "the effective configuration (secrets shown as ***) is stored once per version; path is relative to the state dir",
                }),
                Err(error) => json!({ "error": error.to_string() }),
            };
            written.push(disk::write_evidence(
                &root,
                &id,
                "effective-config",
                &reference,
            )?);
        }
        Ok(written)
    })
    .await
    .map_err(|error| IncidentError::Io {
        path: state.root.clone(),
        source: std::io::Error::other(error.to_string()),
    })?
}

/// Rows scanned when a session id does not say where its story starts.
const UNBOUNDED_SCAN_ROWS: u64 = 50_000;

/// The first seq worth reading for `sessions`: a story id ends in the seq of
/// its first row (`probe:<probe>:<category>:<seq>`), and no row of the story
/// comes before it. Ids without one fall back to the log's last rows.
fn scan_start(reader: &AuditReader, sessions: &[String]) -> u64 {
    let starts: Option<Vec<u64>> = sessions
        .iter()
        .map(|s| s.rsplit(':').next().and_then(|tail| tail.parse().ok()))
        .collect();
    match starts.and_then(|starts| starts.into_iter().min()) {
        Some(first) => first,
        None => reader
            .last_seq()
            .ok()
            .flatten()
            .map_or(1, |last| last.saturating_sub(UNBOUNDED_SCAN_ROWS).max(1)),
    }
}

/// The last `max_rows` audit rows of `sessions`, read from where the oldest
/// story begins (not the whole log: an incident storm must not cost a full
/// scan per incident).
fn audit_rows(audit_dir: &std::path::Path, sessions: &[String], max_rows: usize) -> Value {
    if sessions.is_empty() {
        return json!({ "sessions": sessions, "rows": [], "note": "no caller session joined" });
    }
    let reader = match AuditReader::open(audit_dir) {
        Ok(reader) => reader,
        Err(error) => {
            return json!({ "sessions": sessions, "rows": [], "error": error.to_string() });
        }
    };
    let mut rows = VecDeque::new();
    let mut corrupt = 0u64;
    let mut dropped = 0u64;
    for row in reader.rows_from(scan_start(&reader, sessions), None) {
        match row {
            Ok(row)
                if row
                    .caller_session_id
                    .as_ref()
                    .is_some_and(|s| sessions.contains(s)) =>
            {
                rows.push_back(row);
                if rows.len() > max_rows {
                    rows.pop_front();
                    dropped += 1;
                }
            }
            Ok(_) => {}
            Err(_) => corrupt += 1,
        }
    }
    json!({ "sessions": sessions, "rows": rows, "older_rows_dropped": dropped, "corrupt_rows_skipped": corrupt })
}

// ---------------------------------------------------------------- severity, freeze, notes

async fn change_severity(
    state: &mut CommanderState,
    id: &str,
    severity: Sev,
    reason: String,
) -> Result<(), IncidentError> {
    let mut from = None;
    let Some(incident) = update(&state.args.store, id, |incident| {
        from = Some(incident.severity);
        incident.severity = severity;
        incident.severity_history.push(SeverityChange {
            at: now_rfc3339(),
            from: Some(from.unwrap_or(severity)),
            to: severity,
            reason: reason.clone(),
        });
    }) else {
        return Ok(());
    };
    let from = from.unwrap_or(severity);
    save(state, &incident)?;
    timeline(
        state,
        id,
        TimelineEntry::now(
            "severity",
            format!("severity {from} → {severity}: {reason}"),
            json!({ "from": from, "to": severity }),
        ),
    )?;
    audit(
        state,
        row(
            "incident.severity_changed",
            &incident,
            json!({ "id": id, "from": from, "to": severity, "reason": reason }),
        ),
    )
    .await;
    Ok(())
}

/// Freezes the incident's components while it is open at a freezing
/// severity; unfreezes them otherwise.
async fn apply_freeze(state: &mut CommanderState, id: &str) -> Result<(), IncidentError> {
    let Some(incident) = state.args.store.get(id).map(|i| i.clone()) else {
        return Ok(());
    };
    let (should, changed) = mark_freeze(state, &incident);
    record_freeze(state, &incident, should, changed).await
}

/// Updates the `FreezeSet` for `incident` (not yet recorded): whether it
/// freezes, and the components whose state changed.
fn mark_freeze(state: &CommanderState, incident: &Incident) -> (bool, Vec<String>) {
    let id = incident.id.as_str();
    let should = incident.status == IncidentStatus::Open
        && freezes(incident.severity, state.args.settings.freeze_automation_at);
    let freeze = &state.args.freeze;
    let mut changed = Vec::new();
    if should {
        for component in &incident.components {
            if !freeze.contains_key(component) {
                freeze.insert(component.clone(), id.to_owned());
                changed.push(component.clone());
            }
        }
    } else {
        freeze.retain(|component, owner| {
            let mine = owner == id;
            if mine {
                changed.push(component.clone());
            }
            !mine
        });
    }
    (should, changed)
}

/// Records a change [`mark_freeze`] made: timeline entry and audit row.
async fn record_freeze(
    state: &mut CommanderState,
    incident: &Incident,
    should: bool,
    changed: Vec<String>,
) -> Result<(), IncidentError> {
    let id = incident.id.as_str();
    if changed.is_empty() {
        return Ok(());
    }
    let (kind, seam, verb) = if should {
        ("freeze", "incident.automation_frozen", "frozen")
    } else {
        ("unfreeze", "incident.automation_unfrozen", "unfrozen")
    };
    timeline(
        state,
        id,
        TimelineEntry::now(
            kind,
            format!("automation {verb} on {}", changed.join(", ")),
            json!({ "components": changed }),
        ),
    )?;
    audit(
        state,
        row(seam, incident, json!({ "id": id, "components": changed })),
    )
    .await;
    Ok(())
}

async fn on_note(
    state: &mut CommanderState,
    id: &str,
    text: String,
    author: Option<String>,
) -> Result<(), CommandError> {
    let incident = update(&state.args.store, id, |_| {})
        .ok_or_else(|| CommandError::Unknown(id.to_owned()))?;
    let by = author.as_deref().unwrap_or("operator");
    timeline(
        state,
        id,
        TimelineEntry::now("note", format!("{by}: {text}"), json!({ "author": author })),
    )?;
    save(state, &incident)?;
    audit(
        state,
        row(
            "incident.note",
            &incident,
            json!({ "id": id, "text": text, "author": author }),
        ),
    )
    .await;
    Ok(())
}

async fn on_set_severity(
    state: &mut CommanderState,
    id: &str,
    severity: Sev,
    reason: String,
) -> Result<(), CommandError> {
    let current = state
        .args
        .store
        .get(id)
        .map(|i| (i.severity, i.status))
        .ok_or_else(|| CommandError::Unknown(id.to_owned()))?;
    if current.1 == IncidentStatus::Resolved {
        return Err(CommandError::Resolved {
            id: id.to_owned(),
            already: false,
        });
    }
    if current.0 == severity {
        return Ok(());
    }
    change_severity(state, id, severity, format!("operator: {reason}")).await?;
    Ok(apply_freeze(state, id).await?)
}

fn on_timeline(
    state: &mut CommanderState,
    session: Option<String>,
    component: Option<String>,
    kind: String,
    text: String,
    details: Value,
) -> Result<(), IncidentError> {
    let store = &state.args.store;
    let by_session = session.as_ref().and_then(|session| {
        store
            .iter()
            .find(|i| i.is_active() && i.sessions.contains(session))
            .map(|i| i.id.clone())
    });
    let id = by_session.or_else(|| {
        component.as_ref().and_then(|component| {
            let found: Vec<Incident> = store
                .iter()
                .filter(|i| i.is_active() && i.components.contains(component))
                .map(|i| i.clone())
                .collect();
            best(&found).map(|i| i.id.clone())
        })
    });
    let Some(id) = id else {
        tracing::debug!(kind = %kind, "No open incident for a timeline entry; dropped.");
        return Ok(());
    };
    timeline(state, &id, TimelineEntry::now(kind, text, details))?;
    if let Some(incident) = update(&state.args.store, &id, |_| {}) {
        save(state, &incident)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- notices, cadence, resolution

/// Sends a notice about `incident` to every notifier that wants it and
/// records the deliveries in the timeline.
async fn notify(
    state: &mut CommanderState,
    incident: &Incident,
    kind: &str,
    summary: String,
    actions: Vec<String>,
) -> Result<u32, IncidentError> {
    let resolved = incident.status == IncidentStatus::Resolved;
    let count = incident.notices_sent;
    let notice = Notice {
        idempotency_key: format!("warden-{}-{kind}-{count}", incident.id),
        seq: incident.opened_seq,
        caller_session_id: Some(incident.id.clone()),
        group: Some(conversation(incident)),
        probe: incident.probes.iter().next().cloned().unwrap_or_default(),
        component: incident
            .components
            .iter()
            .next()
            .cloned()
            .unwrap_or_default(),
        severity: incident.severity.notice_severity(),
        category: "incident".to_owned(),
        kind: kind.to_owned(),
        status: if resolved {
            NoticeStatus::Resolved
        } else {
            NoticeStatus::Firing
        },
        title: format!("[{}] {} {}", incident.severity, incident.id, incident.title),
        summary,
        actions,
        runbook: None,
        at: now_rfc3339(),
        details: json!({
            "incident": incident.id,
            "severity": incident.severity,
            "status": incident.status,
            "components": incident.components,
            "probes": incident.probes,
        }),
    };
    let deliveries = state.args.outbox.send(&notice, Route::Subscribed).await;
    let sent = deliveries
        .iter()
        .filter(|d| d.outcome == DeliveryOutcome::Sent)
        .count() as u32;
    if deliveries.is_empty() {
        return Ok(0);
    }
    timeline(
        state,
        &incident.id,
        TimelineEntry::now(
            "notification",
            format!("{kind} sent to {sent} of {} notifier(s)", deliveries.len()),
            serde_json::to_value(&deliveries).unwrap_or_default(),
        ),
    )?;
    if let Some(updated) = update(&state.args.store, &incident.id, |i| i.notices_sent += sent) {
        save(state, &updated)?;
    }
    Ok(sent)
}

/// The conversation an incident's notices belong to: that of the issue
/// that opened it, so each notifier hears the issue and its incident as one
/// story (one PagerDuty alert); otherwise the incident's own id.
fn conversation(incident: &Incident) -> String {
    match &incident.trigger {
        OpenTrigger::Issue {
            caller_session_id: Some(session),
            ..
        }
        | OpenTrigger::LadderExhausted {
            session: Some(session),
            ..
        } => session.clone(),
        _ => incident.id.clone(),
    }
}

async fn on_tick(state: &mut CommanderState) {
    let now = Instant::now();
    let active: Vec<Incident> = state
        .args
        .store
        .iter()
        .filter(|i| i.is_active())
        .map(|i| i.clone())
        .collect();
    for incident in active {
        let cycles = state.args.settings.resolve_after_healthy_cycles;
        if auto_resolvable(&incident)
            && impact_stopped(&incident.probes, &state.args.history, cycles).is_ok()
        {
            let note = format!(
                "impact stopped: every affected probe healthy for {cycles} observation(s) in a row"
            );
            if let Err(error) = on_resolve(state, &incident.id, note, false, "warden").await {
                tracing::error!(error = %error, id = %incident.id, "Could not auto-resolve an incident.");
            }
            continue;
        }
        let last = incident.last_update_tick.unwrap_or(now);
        if cadence_due(&state.args.settings.cadence, incident.severity, last, now) {
            logged(send_update(state, &incident.id, now).await);
        }
    }
}

/// The scheduled update: what changed since the last one, current impact,
/// mitigation status and next actions.
async fn send_update(
    state: &mut CommanderState,
    id: &str,
    now: Instant,
) -> Result<(), IncidentError> {
    let Some(incident) = state.args.store.get(id).map(|i| i.clone()) else {
        return Ok(());
    };
    let changes: Vec<TimelineEntry> = disk::read_timeline(&state.root, id)?
        .into_iter()
        .filter(|e| e.at > incident.last_update_at && e.kind != "update")
        .collect();
    let unhealthy: Vec<String> = incident
        .probes
        .iter()
        .filter_map(|probe| {
            let latest = state.args.latest.get(probe)?;
            latest
                .status
                .is_failing()
                .then(|| format!("{probe} ({})", latest.status.as_str()))
        })
        .collect();
    let frozen: Vec<String> = state
        .args
        .freeze
        .iter()
        .filter(|e| e.value() == id)
        .map(|e| e.key().clone())
        .collect();
    let change_text = if changes.is_empty() {
        "nothing new".to_owned()
    } else {
        changes
            .iter()
            .map(|e| format!("{} {}", e.kind, e.text))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let impact = if unhealthy.is_empty() {
        "no affected probe is failing now".to_owned()
    } else {
        format!("failing now: {}", unhealthy.join(", "))
    };
    let mitigation = format!(
        "status {}; automation frozen on {}",
        incident.status.as_str(),
        if frozen.is_empty() {
            "nothing".to_owned()
        } else {
            frozen.join(", ")
        }
    );
    let cycles = state.args.settings.resolve_after_healthy_cycles;
    let actions = if unhealthy.is_empty() {
        vec![format!(
            "confirm recovery; the incident resolves once every probe is healthy for {cycles} observations"
        )]
    } else {
        unhealthy
            .iter()
            .map(|p| format!("restore {p}"))
            .chain(std::iter::once(format!(
                "add findings with `warden incidents note {id} <text>`"
            )))
            .collect()
    };
    let summary = format!(
        "Since the last update: {change_text}. Impact: {impact}. Mitigation: {mitigation}."
    );
    let sent = notify(
        state,
        &incident,
        "incident_update",
        summary,
        actions.clone(),
    )
    .await?;
    let stamp = now_rfc3339();
    let Some(updated) = update(&state.args.store, id, |i| {
        i.last_update_at = stamp.clone();
        i.last_update_tick = Some(now);
    }) else {
        return Ok(());
    };
    save(state, &updated)?;
    timeline(
        state,
        id,
        TimelineEntry::now(
            "update",
            format!("update sent ({} change(s), {impact})", changes.len()),
            json!({ "changes": changes.len(), "unhealthy": unhealthy, "actions": actions }),
        ),
    )?;
    audit(
        state,
        row(
            "incident.update_sent",
            &updated,
            json!({
                "id": id,
                "severity": updated.severity,
                "changes": changes.len(),
                "unhealthy": unhealthy,
                "delivered": sent,
            }),
        ),
    )
    .await;
    Ok(())
}

async fn on_resolve(
    state: &mut CommanderState,
    id: &str,
    note: String,
    force: bool,
    by: &str,
) -> Result<(), CommandError> {
    let incident = state
        .args
        .store
        .get(id)
        .map(|i| i.clone())
        .ok_or_else(|| CommandError::Unknown(id.to_owned()))?;
    if incident.status == IncidentStatus::Resolved {
        return Err(CommandError::Resolved {
            id: id.to_owned(),
            already: true,
        });
    }
    if !force {
        impact_stopped(
            &incident.probes,
            &state.args.history,
            state.args.settings.resolve_after_healthy_cycles,
        )?;
    }
    let stamp = now_rfc3339();
    let Some(incident) = update(&state.args.store, id, |i| {
        i.status = IncidentStatus::Resolved;
        i.resolved_at = Some(stamp.clone());
    }) else {
        return Err(CommandError::Unknown(id.to_owned()));
    };
    save(state, &incident)?;
    apply_freeze(state, id).await?;
    timeline(
        state,
        id,
        TimelineEntry::now(
            "resolved",
            format!(
                "resolved by {by}{}: {note}",
                if force { " (forced)" } else { "" }
            ),
            json!({ "force": force, "by": by }),
        ),
    )?;
    // The packet exists before the row that says the incident is resolved,
    // so whoever reacts to the row finds it; it is written again below once
    // the resolution notice is in the timeline.
    write_packet(state, id, &incident)?;
    audit(
        state,
        row(
            "incident.resolved",
            &incident,
            json!({
                "id": id,
                "severity": incident.severity,
                "note": note,
                "force": force,
                "by": by,
                "duration_s": postmortem::duration_s(&incident),
            }),
        ),
    )
    .await;
    notify(
        state,
        &incident,
        "incident_resolved",
        format!("{id} resolved: {note}"),
        vec![format!(
            "fill in the postmortem under incidents/{id}/postmortem.md"
        )],
    )
    .await?;
    let incident = state
        .args
        .store
        .get(id)
        .map(|i| i.clone())
        .unwrap_or(incident);
    write_packet(state, id, &incident)?;
    tracing::info!(id = %id, force, "Incident resolved; postmortem written.");
    Ok(())
}

/// Writes the postmortem packet (markdown and JSON) from the timeline on disk.
fn write_packet(
    state: &CommanderState,
    id: &str,
    incident: &Incident,
) -> Result<(), IncidentError> {
    let entries = disk::read_timeline(&state.root, id)?;
    let (markdown, json) = postmortem::build(incident, &entries);
    disk::write_postmortem(&state.root, id, &markdown, &json)
}
