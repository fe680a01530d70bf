//! One escalation cycle of a component, from the first wake to a verified heal,
//! a rollback, or a stop of automation. Runs as a task owned by the
//! coordinator; after every step its record is written back to the shared
//! [`CycleStore`], so a coordinator restarted mid-cycle resumes at the same
//! rung with the same history.
//!
//! Rules (DESIGN §5): nothing acts unless the operational state is RUNNING,
//! no incident froze the component, and the envelope (or tier) is enabled.
//! While held the cycle records the step as `skipped` (once) and waits on
//! the same step; it does not use up the ladder. A disabled envelope or tier
//! is recorded as `skipped` and the ladder moves on.
//!
//! The holds are checked where each action starts, not only between steps:
//! every action (fix, tier call, patch, rollback with its restart) first
//! queues an `escalation.action_started` row through
//! [`AuditLog::submit_if`], which checks the holds under the audit queue's
//! lock. A pause or freeze changes the shared state before it queues the row
//! that records it, so an action either starts before that row in the log or
//! sees the hold and does not start. An action already running when the hold
//! lands finishes; its result row names its `started_seq`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::fix::{FixOutcome, RestartFailed, RestartHook, run_fix};
use super::history::{EscalationHistory, HistoryKind};
use super::ladder::{EscalationLadder, Step};
use super::patches::{self, PatchError, PatchHistory, PatchPolicy};
use super::saved::SavedFile;
use super::snapshot::Snapshots;
use super::tier::{TierStatus, call_webhook};
use crate::audit::AuditLog;
use crate::control::{OperationalState, RunState};
use crate::debounce::LatestObservations;
use crate::events::{self, Event, escalation as esc};
use crate::managed::ManagedMsg;
use crate::messages::{Health, IssueEvent};
use crate::notify::{DeliveryOutcome, Notice, NoticeStatus, Notifiers, Outbox, Route};
use crate::settings::{ComponentSettings, SecretUrl, Severity, TierKind};

/// Cycle progress per component, made once in `app.rs`.
pub type CycleStore = Arc<dashmap::DashMap<String, CycleRecord>>;

/// How often a waiting cycle looks at the probes and the operational state.
const POLL: Duration = Duration::from_millis(100);
/// Longest an action waits for the incident's evidence snapshot.
const EVIDENCE_WAIT: Duration = Duration::from_secs(3);

/// What started (or joined) a cycle.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// A wake row of one of the component's probes.
    Issue(IssueEvent),
    /// The managed process exhausted its restart ladder.
    ManagedFatal(String),
}

/// What the coordinator tells a running cycle.
#[derive(Debug, Clone)]
pub enum Signal {
    /// Nothing yet.
    None,
    /// An issue of this probe resolved.
    Resolved(String),
    /// Another trigger arrived while the cycle runs.
    Trigger(Trigger),
}

/// One component's escalation progress. Saved to
/// `<state_dir>/escalation/<component>.cycle.json` after every step (see
/// [`SavedFile`](super::SavedFile)), so a cycle resumes on the same rung with the same history
/// after a restart of the coordinator or of Warden.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CycleRecord {
    /// A cycle is running (or must be resumed).
    pub active: bool,
    /// The `caller_session_id` of the issue that started it.
    pub session: Option<String>,
    /// The ladder position.
    pub ladder: Option<EscalationLadder>,
    /// Everything tried so far, carried to every tier.
    pub history: EscalationHistory,
    /// Exhaustions without a verified heal in between.
    pub exhaustions_in_row: u32,
    /// Automation stopped after a second exhaustion in a row; the operator
    /// takes over. Not saved: a restart of Warden is how the operator hands
    /// the component back (the notice says so).
    #[serde(skip)]
    pub automation_stopped: bool,
    /// When the envelope's fix last ran (for the cooldown), in Unix
    /// milliseconds: wall time, so the cooldown holds across a restart.
    pub last_fix_at_ms: Option<i64>,
    /// Steps recorded as skipped because Warden was paused (recorded once per step).
    pub paused_noted: bool,
    /// The incident's evidence was awaited before the first action.
    pub evidence_awaited: bool,
    /// `traceparent` of the issue that started the cycle: the cycle's spans
    /// and its outbound calls belong to that issue's trace.
    pub traceparent: Option<String>,
    /// Digests of the patches applied in this cycle: a tier repeating the
    /// same patch on every attempt gets it written once.
    pub applied_patches: BTreeSet<String>,
}

impl CycleRecord {
    /// Takes a trigger into account: starts a cycle unless one runs or automation stopped.
    pub fn begin(&mut self, trigger: &Trigger, ctx: &CycleContext) {
        let summary = match trigger {
            Trigger::Issue(event) => format!(
                "{} {} ({}, {:?})",
                event.probe, event.seam, event.category, event.severity
            ),
            Trigger::ManagedFatal(reason) => format!("managed process FATAL: {reason}"),
        };
        if self.active {
            self.history
                .record(HistoryKind::Observation, "trigger", 0, &summary, json!({}));
            return;
        }
        if self.automation_stopped {
            return;
        }
        self.active = true;
        self.paused_noted = false;
        self.applied_patches.clear();
        self.evidence_awaited = false;
        self.traceparent = match trigger {
            Trigger::Issue(event) => event.traceparent.clone(),
            Trigger::ManagedFatal(_) => None,
        };
        self.session = match trigger {
            Trigger::Issue(event) => event.caller_session_id.clone(),
            Trigger::ManagedFatal(_) => Some(format!(
                "component:{}:fatal:{}",
                ctx.component.name,
                jiff::Timestamp::now().as_second()
            )),
        };
        self.ladder = Some(EscalationLadder::new(&ctx.component));
        self.history = EscalationHistory::new(ctx.component.name.clone(), self.session.clone());
        self.history
            .record(HistoryKind::Observation, "trigger", 0, &summary, json!({}));
    }
}

/// Notes a resolution that arrived while no cycle task was running.
pub(super) fn note_resolved(store: &CycleStore, ctx: &CycleContext, probe: &str) {
    if let Some(mut record) = store.get_mut(&ctx.component.name)
        && record.active
    {
        record.history.record(
            HistoryKind::Observation,
            "resolved",
            0,
            format!("{probe} recovered"),
            json!({}),
        );
        ctx.saved.save(&record);
    }
}

/// Everything a cycle needs; built once per component in `app.rs`.
pub struct CycleContext {
    /// The component's settings.
    pub component: ComponentSettings,
    /// Append side of the audit log.
    pub audit: AuditLog,
    /// Shared HTTP client (fixes, tiers).
    pub http: reqwest::Client,
    /// Notifiers (notifier tiers, warnings, rollback alerts).
    pub notifiers: Notifiers,
    /// Operational state: only RUNNING acts.
    pub state: OperationalState,
    /// Latest observation per probe, for verification.
    pub latest: LatestObservations,
    /// Where the cycle record is saved after every step.
    pub saved: SavedFile<CycleRecord>,
    /// `service.state_dir` (snapshots, patch history).
    pub state_dir: PathBuf,
    /// Registry name of the component's managed process, if it has one.
    pub managed: Option<String>,
    /// Metrics (escalation steps).
    pub metrics: crate::metrics::Metrics,
    /// Incidents (evidence first: actions wait briefly for it).
    pub incidents: crate::incidents::IncidentStore,
    /// Components whose automation an incident froze.
    pub freeze: crate::incidents::FreezeSet,
    /// Registry name of the incident commander.
    pub commander: String,
}

impl CycleContext {
    /// Where this component's notices go out (cheap: shared handles).
    fn outbox(&self) -> Outbox {
        Outbox::new(
            self.notifiers.clone(),
            self.audit.clone(),
            crate::audit::audit_dir(&self.state_dir),
        )
    }

    /// The probes whose health is the component's health.
    fn probes(&self) -> BTreeSet<String> {
        let mut probes: BTreeSet<String> = self.component.probes.iter().cloned().collect();
        for entry in self.latest.iter() {
            if entry.component == self.component.name {
                probes.insert(entry.key().clone());
            }
        }
        probes
    }

    /// Why automation may not act now: PAUSED/STOPPED, or frozen by an incident.
    fn held(&self) -> Option<String> {
        hold_reason(&self.state, &self.freeze, &self.component.name)
    }

    /// Tells the incident commander (found by name at send time).
    fn tell_commander(&self, message: crate::incidents::IncidentMsg) {
        if let Some(commander) =
            ractor::ActorRef::<crate::incidents::IncidentMsg>::where_is(self.commander.clone())
        {
            let _ = commander.cast(message);
        }
    }

    /// Adds an entry to the timeline of the incident this cycle belongs to.
    fn timeline(&self, record: &CycleRecord, kind: &str, text: String, details: Value) {
        self.tell_commander(crate::incidents::IncidentMsg::Timeline {
            session: record.session.clone(),
            component: Some(self.component.name.clone()),
            kind: kind.to_owned(),
            text,
            details,
        });
    }

    /// Evidence first: before the first action of a cycle, give the commander
    /// a bounded moment to open its incident and snapshot the evidence.
    async fn await_evidence(&self) {
        let deadline = Instant::now() + EVIDENCE_WAIT;
        while !crate::incidents::evidence_ready(&self.incidents, &self.component.name)
            && Instant::now() < deadline
        {
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Why automation may not act on `component` now: the operational state is
/// not RUNNING, or an incident froze the component. Quick and lock-light: it
/// runs under the audit queue's lock (`AuditLog::submit_if`).
pub fn hold_reason(
    state: &OperationalState,
    freeze: &crate::incidents::FreezeSet,
    component: &str,
) -> Option<String> {
    let run = state.state();
    if run != RunState::Running {
        return Some(format!("operational state is {run:?}"));
    }
    if state.is_hold_pending() {
        return Some("a pause is being recorded".to_owned());
    }
    crate::incidents::frozen_by(freeze, component)
        .map(|incident| format!("automation frozen by incident {incident}"))
}

/// How a step ended.
enum Outcome {
    /// Verified healthy: the cycle is over.
    Healed(String),
    /// Did not heal; climb on.
    Next,
    /// The issue resolved by itself meanwhile.
    Resolved,
    /// A hold (pause, freeze) stopped the action from starting; the step is
    /// not used up.
    Held(String),
}

/// Runs the cycle until it heals, resolves, or the ladder is exhausted.
pub(super) async fn run(
    ctx: Arc<CycleContext>,
    store: CycleStore,
    mut record: CycleRecord,
    mut signal: watch::Receiver<Signal>,
    open: watch::Receiver<BTreeSet<String>>,
) {
    let name = ctx.component.name.clone();
    let save = |record: &CycleRecord| {
        store.insert(name.clone(), record.clone());
        ctx.saved.save(record);
    };
    // Bounded: every iteration either consumes a ladder step or waits while
    // paused, and the ladder has a finite number of steps.
    loop {
        if resolved(&ctx, &mut signal, &open) {
            finish(&ctx, &mut record, "resolved", None).await;
            save(&record);
            return;
        }
        if let Some(reason) = ctx.held() {
            note_hold(&ctx, &mut record, reason).await;
            save(&record);
            tokio::time::sleep(POLL).await;
            continue;
        }
        record.paused_noted = false;
        let Some(mut ladder) = record.ladder.clone() else {
            record.active = false;
            save(&record);
            return;
        };
        if !record.evidence_awaited {
            ctx.await_evidence().await;
            record.evidence_awaited = true;
        }
        // Kept to put the step back if a hold stops its action from starting.
        let before = ladder.clone();
        let step = ladder.next();
        let warn = ladder.should_warn();
        // Not saved until the step ends: a Warden killed in the middle of
        // it takes the same step again (tier calls carry an idempotency key
        // per rung and attempt) instead of skipping it.
        record.ladder = Some(ladder);
        let outcome = match step {
            Step::Fix { attempt, skipped } => {
                fix_step(
                    &ctx,
                    &mut record,
                    attempt,
                    skipped,
                    warn,
                    &mut signal,
                    &open,
                )
                .await
            }
            Step::Tier { index, attempt, .. } => {
                tier_step(&ctx, &mut record, index, attempt, warn, &mut signal).await
            }
            Step::Exhausted => match exhausted(&ctx, &mut record, warn).await {
                Some(reason) => Outcome::Held(reason),
                None => {
                    save(&record);
                    return;
                }
            },
        };
        save(&record);
        match outcome {
            Outcome::Held(reason) => {
                record.ladder = Some(before);
                note_hold(&ctx, &mut record, reason).await;
                save(&record);
                tokio::time::sleep(POLL).await;
            }
            Outcome::Next => {}
            Outcome::Healed(by) => {
                finish(&ctx, &mut record, "healed", Some(by)).await;
                save(&record);
                return;
            }
            Outcome::Resolved => {
                finish(&ctx, &mut record, "resolved", None).await;
                save(&record);
                return;
            }
        }
    }
}

/// Records a hold once (one `escalation.step_skipped` per hold, not per poll).
async fn note_hold(ctx: &CycleContext, record: &mut CycleRecord, reason: String) {
    if record.paused_noted {
        return;
    }
    record.paused_noted = true;
    let _ = emit(
        ctx,
        record,
        &esc::StepSkipped {
            component: ctx.component.name.clone(),
            reason,
            waiting: true,
            action: None,
            tier: None,
        },
    )
    .await;
}

/// Records that `action` starts, checking the holds (and `enabled`) at the
/// moment the row takes its place in the log, and waits until the row is
/// durable: the action is on record before it happens. `Ok` is the row's
/// seq; `Err` says why the action must not start.
async fn start_action(
    ctx: &CycleContext,
    record: &CycleRecord,
    started: esc::ActionStarted,
    enabled: bool,
) -> Result<u64, String> {
    let action = started.action.clone();
    let mut row = events::row(&started).component(ctx.component.name.clone());
    if let Some(session) = &record.session {
        row = row.session(session.clone());
    }
    let durable = ctx.audit.submit_if(row, || match ctx.held() {
        Some(reason) => Err(reason),
        None if !enabled => Err(format!("the {action} is disabled")),
        None => Ok(()),
    })?;
    durable
        .await
        .map_err(|error| format!("the start of the {action} could not be recorded: {error}"))
}

/// Whether the component recovered by itself: none of its probes has an
/// open issue (as the coordinator read the log) and each one's latest
/// observation is healthy.
fn resolved(
    ctx: &CycleContext,
    signal: &mut watch::Receiver<Signal>,
    open: &watch::Receiver<BTreeSet<String>>,
) -> bool {
    let _ = signal.borrow_and_update();
    // A component no probe watches (only its process is) never "recovers" on
    // its own: only a verified step ends its cycle.
    let probes = ctx.probes();
    !probes.is_empty()
        && open.borrow().is_empty()
        && probes.iter().all(|p| {
            ctx.latest
                .get(p)
                .is_none_or(|o| o.status == Health::Healthy)
        })
}

async fn finish(ctx: &CycleContext, record: &mut CycleRecord, outcome: &str, by: Option<String>) {
    record.active = false;
    record.exhaustions_in_row = 0;
    let attempts = record.ladder.as_ref().map_or(0, EscalationLadder::attempts);
    let _ = emit(
        ctx,
        record,
        &esc::CycleEnded {
            component: ctx.component.name.clone(),
            outcome: outcome.to_owned(),
            healed_by: by,
            attempts,
        },
    )
    .await;
    record.ladder = None;
}

/// Reports one step, once: appends its row under the cycle's story, counts
/// it in its metric ([`Event::count`]) and records it as an event of the
/// cycle's span (so the trace shows the step with its seq).
async fn emit<E: Event>(ctx: &CycleContext, record: &CycleRecord, event: &E) -> Option<u64> {
    let seam = event.seam();
    let mut row = events::row(event).component(ctx.component.name.clone());
    if let Some(session) = &record.session {
        row = row.session(session.clone());
    }
    event.count(&ctx.metrics);
    match ctx.audit.append(row).await {
        Ok(seq) => {
            tracing::info!(seam, seq, component = %ctx.component.name, "escalation step");
            Some(seq)
        }
        Err(error) => {
            tracing::error!(error = %error, seam, "Could not record an escalation step.");
            None
        }
    }
}

/// An `escalation.action_started` for `action` with nothing else set.
fn action_started(ctx: &CycleContext, action: &str) -> esc::ActionStarted {
    esc::ActionStarted {
        component: ctx.component.name.clone(),
        action: action.to_owned(),
        source: None,
        attempt: None,
        kind: None,
        tier: None,
        managed_restart: None,
    }
}

/// An `escalation.tier_called` with only the always-present fields set.
fn tier_called(ctx: &CycleContext, tier: &str, attempt: u32, outcome: &str) -> esc::TierCalled {
    esc::TierCalled {
        component: ctx.component.name.clone(),
        tier: tier.to_owned(),
        kind: None,
        notifier: None,
        attempt,
        outcome: outcome.to_owned(),
        reason: None,
        started_seq: None,
        notes: None,
        http_status: None,
        error: None,
        duration_ms: None,
        context_entries: None,
    }
}

/// Waits up to `timeout` for every probe of the component to report healthy
/// in an observation made after `since`.
async fn verify(
    ctx: &CycleContext,
    timeout: Duration,
    signal: &mut watch::Receiver<Signal>,
) -> bool {
    let since = jiff::Timestamp::now();
    let deadline = Instant::now() + timeout;
    let probes = ctx.probes();
    loop {
        let healthy = !probes.is_empty()
            && probes.iter().all(|probe| {
                ctx.latest.get(probe).is_some_and(|o| {
                    o.status == Health::Healthy
                        && o.at.parse::<jiff::Timestamp>().is_ok_and(|at| at > since)
                })
            });
        if healthy {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = signal.changed() => {}
        }
    }
}

struct ManagedRestart {
    name: Option<String>,
}

impl RestartHook for ManagedRestart {
    fn restart(
        &self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<String, RestartFailed>> + Send + '_>,
    > {
        Box::pin(async move {
            let name = self.name.clone().ok_or(RestartFailed::NotManaged)?;
            let actor = ractor::ActorRef::<ManagedMsg>::where_is(name.clone())
                .ok_or(RestartFailed::NotRunning(name))?;
            let result = ractor::call_t!(
                actor,
                |reply| ManagedMsg::Restart {
                    reason: "fix envelope".into(),
                    reply: Some(reply)
                },
                60_000
            )
            .map_err(|error| RestartFailed::Call(error.to_string()))?;
            Ok(format!("restarted, pid {}", result?))
        })
    }
}

mod ending;
mod patch;
mod steps;

use ending::*;
use patch::*;
use steps::*;

#[cfg(test)]
mod tests;
