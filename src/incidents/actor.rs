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

mod commands;
mod issues;
mod notices;
mod opening;

use commands::*;
use issues::*;
use notices::*;
use opening::*;

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
