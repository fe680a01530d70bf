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

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::fix::{FixOutcome, RestartFailed, RestartHook, run_fix};
use super::history::{EscalationHistory, HistoryKind};
use super::ladder::{EscalationLadder, Step};
use super::patches::{self, PatchError, PatchHistory, PatchPolicy};
use super::snapshot::Snapshots;
use super::tier::{TierStatus, call_webhook};
use crate::audit::AuditLog;
use crate::control::{OperationalState, RunState};
use crate::debounce::{DebounceStore, LatestObservations};
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

/// One component's escalation progress.
#[derive(Debug, Clone, Default)]
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
    /// Automation stopped after a second exhaustion in a row; the operator takes over.
    pub automation_stopped: bool,
    /// When the envelope's fix last ran (for the cooldown).
    pub last_fix_at: Option<Instant>,
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
pub(super) fn note_resolved(store: &CycleStore, component: &str, probe: &str) {
    if let Some(mut record) = store.get_mut(component)
        && record.active
    {
        record.history.record(
            HistoryKind::Observation,
            "resolved",
            0,
            format!("{probe} recovered"),
            json!({}),
        );
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
    /// Open issues per probe.
    pub debounce: DebounceStore,
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
            self.metrics.clone(),
            "escalation",
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

    /// Whether none of the component's probes has an open issue.
    fn issues_closed(&self) -> bool {
        self.probes().iter().all(|probe| {
            self.debounce
                .get(probe)
                .is_none_or(|entry| entry.machine.open_issue().is_none())
        })
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
) {
    let name = ctx.component.name.clone();
    let save = |record: &CycleRecord| {
        store.insert(name.clone(), record.clone());
    };
    // Bounded: every iteration either consumes a ladder step or waits while
    // paused, and the ladder has a finite number of steps.
    loop {
        if resolved(&ctx, &mut signal) {
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
        record.ladder = Some(ladder);
        save(&record);
        let outcome = match step {
            Step::Fix { attempt, skipped } => {
                fix_step(&ctx, &mut record, attempt, skipped, warn, &mut signal).await
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

fn resolved(ctx: &CycleContext, signal: &mut watch::Receiver<Signal>) -> bool {
    let _ = signal.borrow_and_update();
    // A component no probe watches (only its process is) never "recovers" on
    // its own: only a verified step ends its cycle.
    let probes = ctx.probes();
    !probes.is_empty()
        && ctx.issues_closed()
        && ctx.probes().iter().all(|p| {
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

/// Appends a row under the cycle's story.
async fn emit<E: Event>(ctx: &CycleContext, record: &CycleRecord, event: &E) -> Option<u64> {
    let seam = event.seam();
    let mut row = events::row(event).component(ctx.component.name.clone());
    if let Some(session) = &record.session {
        row = row.session(session.clone());
    }
    match ctx.audit.append(row).await {
        Ok(seq) => Some(seq),
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

async fn fix_step(
    ctx: &CycleContext,
    record: &mut CycleRecord,
    attempt: u32,
    disabled: bool,
    warn: bool,
    signal: &mut watch::Receiver<Signal>,
) -> Outcome {
    let fix = &ctx.component.fix;
    let action = fix.action.kind.map(|kind| kind.as_str().to_owned());
    let enabled = !disabled && fix.enabled && fix.action.kind.is_some();
    let skip = if enabled {
        record
            .last_fix_at
            .filter(|at| at.elapsed() < fix.cooldown)
            .map(|last| {
                format!(
                    "cooldown: the fix ran {} ago (cooldown {})",
                    humantime::format_duration(Duration::from_secs(last.elapsed().as_secs())),
                    humantime::format_duration(fix.cooldown)
                )
            })
    } else {
        Some("the fix envelope is disabled".to_owned())
    };
    if let Some(reason) = skip {
        if warn {
            warn_operator(ctx, record).await;
        }
        ctx.metrics
            .escalation(&ctx.component.name, "fix", "skipped");
        record.history.record(
            HistoryKind::Fix,
            "fix",
            attempt,
            format!("skipped: {reason}"),
            json!({ "action": action }),
        );
        let _ = emit(
            ctx,
            record,
            &esc::FixAttempted {
                component: ctx.component.name.clone(),
                attempt,
                action: action.clone(),
                outcome: "skipped".to_owned(),
                reason: Some(reason.clone()),
                started_seq: None,
                duration_ms: None,
                output_excerpt: None,
                error: None,
            },
        )
        .await;
        ctx.timeline(
            record,
            "fix",
            format!("fix skipped: {reason}"),
            json!({ "attempt": attempt, "action": action, "outcome": "skipped", "reason": reason }),
        );
        return Outcome::Next;
    }
    let started = match start_action(
        ctx,
        record,
        esc::ActionStarted {
            attempt: Some(attempt),
            kind: action.clone(),
            ..action_started(ctx, "fix")
        },
        enabled,
    )
    .await
    {
        Ok(seq) => seq,
        Err(reason) => return Outcome::Held(reason),
    };
    if warn {
        warn_operator(ctx, record).await;
    }
    let hook = ManagedRestart {
        name: ctx.managed.clone(),
    };
    let outcome: FixOutcome = run_fix(&fix.action, &ctx.http, &hook).await;
    record.last_fix_at = Some(Instant::now());
    let result = if outcome.ok { "succeeded" } else { "failed" };
    ctx.metrics.escalation(&ctx.component.name, "fix", result);
    record.history.record(
        HistoryKind::Fix,
        "fix",
        attempt,
        format!("{} {result}", action.clone().unwrap_or_default()),
        json!({ "output": outcome.output_excerpt, "error": outcome.error }),
    );
    let _ = emit(
        ctx,
        record,
        &esc::FixAttempted {
            component: ctx.component.name.clone(),
            attempt,
            action: action.clone(),
            outcome: result.to_owned(),
            reason: None,
            started_seq: Some(started),
            duration_ms: Some(outcome.duration_ms),
            output_excerpt: Some(outcome.output_excerpt.clone()),
            error: outcome.error.clone(),
        },
    )
    .await;
    let fix_timeline = |record: &CycleRecord, outcome_name: &str, text: String| {
        ctx.timeline(
            record,
            "fix",
            text,
            json!({ "attempt": attempt, "action": action, "outcome": outcome_name, "ran": result, "duration_ms": outcome.duration_ms }),
        );
    };
    let action_name = action.clone().unwrap_or_default();
    if !outcome.ok {
        fix_timeline(record, "failed", format!("fix {action_name} failed"));
        return Outcome::Next;
    }
    let healthy = verify(ctx, fix.verify_timeout, signal).await;
    let _ = emit(
        ctx,
        record,
        &esc::Verified {
            component: ctx.component.name.clone(),
            after: "fix".to_owned(),
            attempt,
            healthy,
            claimed: None,
        },
    )
    .await;
    if healthy {
        fix_timeline(
            record,
            "verified_healthy",
            format!("fix {action_name} ran and the probes were verified healthy"),
        );
        Outcome::Healed("fix".into())
    } else if ctx.issues_closed() {
        fix_timeline(
            record,
            "resolved",
            format!("fix {action_name} ran; the issue resolved without a verified healthy check"),
        );
        Outcome::Resolved
    } else {
        fix_timeline(
            record,
            "not_healed",
            format!("fix {action_name} ran but the probes did not recover"),
        );
        record.history.record(
            HistoryKind::Rejection,
            "fix",
            attempt,
            "the fix ran but the probes did not recover",
            json!({}),
        );
        Outcome::Next
    }
}

async fn tier_step(
    ctx: &CycleContext,
    record: &mut CycleRecord,
    index: usize,
    attempt: u32,
    warn: bool,
    signal: &mut watch::Receiver<Signal>,
) -> Outcome {
    let Some(tier) = ctx.component.tiers.get(index).cloned() else {
        return Outcome::Next;
    };
    if !tier.is_enabled() {
        if warn {
            warn_operator(ctx, record).await;
        }
        let reason = "the tier is disabled";
        ctx.metrics
            .escalation(&ctx.component.name, &tier.name, "skipped");
        record.history.record(
            HistoryKind::Tier,
            &tier.name,
            attempt,
            format!("skipped: {reason}"),
            json!({}),
        );
        let _ = emit(
            ctx,
            record,
            &esc::TierCalled {
                reason: Some(reason.to_owned()),
                ..tier_called(ctx, &tier.name, attempt, "skipped")
            },
        )
        .await;
        ctx.timeline(
            record,
            "tier",
            format!("{} skipped: {reason}", tier.name),
            json!({ "attempt": attempt, "outcome": "skipped" }),
        );
        return Outcome::Next;
    }
    let Some(kind) = tier.kind.map(TierKind::as_str) else {
        return Outcome::Next;
    };
    let started = match start_action(
        ctx,
        record,
        esc::ActionStarted {
            attempt: Some(attempt),
            kind: Some(kind.to_owned()),
            tier: Some(tier.name.clone()),
            ..action_started(ctx, "tier")
        },
        tier.is_enabled(),
    )
    .await
    {
        Ok(seq) => seq,
        Err(reason) => return Outcome::Held(reason),
    };
    if warn {
        warn_operator(ctx, record).await;
    }
    let context = json!({
        "component": ctx.component.name,
        "description": ctx.component.description,
        "caller_session_id": record.session,
        "tier": tier.name,
        "attempt": attempt,
        "history": record.history.to_context(None),
    });
    match tier.kind {
        Some(TierKind::Webhook) => {
            let url = tier.url.clone().unwrap_or_else(|| SecretUrl::new(""));
            let key = format!(
                "{}:{}:{attempt}",
                record.session.clone().unwrap_or_default(),
                tier.name
            );
            let answer = call_webhook(
                &url,
                &tier.headers,
                tier.timeout(),
                &ctx.http,
                &key,
                &context,
            )
            .await;
            let status = match answer.status {
                TierStatus::Fixed => "fixed",
                TierStatus::Rejected => "rejected",
                TierStatus::InProgress => "in_progress",
                TierStatus::Failed => "failed",
            }
            .to_owned();
            ctx.metrics
                .escalation(&ctx.component.name, &tier.name, &status);
            record.history.record(HistoryKind::Tier,
                &tier.name,
                attempt,
                format!("{} answered {status}", tier.name),
                json!({ "notes": answer.notes, "error": answer.error, "patch": answer.patch.is_some() }),
            );
            let _ = emit(
                ctx,
                record,
                &esc::TierCalled {
                    kind: Some("webhook".to_owned()),
                    started_seq: Some(started),
                    notes: answer.notes.clone(),
                    http_status: answer.http_status,
                    error: answer.error.clone(),
                    duration_ms: Some(answer.duration_ms),
                    context_entries: Some(record.history.entries().len()),
                    ..tier_called(ctx, &tier.name, attempt, &status)
                },
            )
            .await;
            let tier_timeline = |record: &CycleRecord, outcome: &str, text: String| {
                ctx.timeline(
                    record,
                    "tier",
                    text,
                    json!({ "attempt": attempt, "tier": tier.name, "answer": status, "outcome": outcome, "notes": answer.notes }),
                );
            };
            if let Some(patch) = &answer.patch
                && answer.status == TierStatus::Fixed
            {
                let patch_start = esc::ActionStarted {
                    tier: Some(tier.name.clone()),
                    ..action_started(ctx, "patch")
                };
                match start_action(ctx, record, patch_start, true).await {
                    Ok(patch_started) => {
                        apply_patch(ctx, record, &tier.name, patch, patch_started).await;
                    }
                    Err(reason) => {
                        let _ = emit(
                            ctx,
                            record,
                            &esc::StepSkipped {
                                component: ctx.component.name.clone(),
                                reason: reason.clone(),
                                waiting: false,
                                action: Some("patch".to_owned()),
                                tier: Some(tier.name.clone()),
                            },
                        )
                        .await;
                        ctx.timeline(
                            record,
                            "patch",
                            format!("patch from {} not applied: {reason}", tier.name),
                            json!({ "tier": tier.name, "outcome": "skipped", "reason": reason }),
                        );
                    }
                }
            }
            match answer.status {
                TierStatus::Fixed | TierStatus::InProgress => {
                    // "fixed" is believed only once the probes agree.
                    let healthy = verify(ctx, ctx.component.fix.verify_timeout, signal).await;
                    let _ = emit(
                        ctx,
                        record,
                        &esc::Verified {
                            component: ctx.component.name.clone(),
                            after: tier.name.clone(),
                            attempt,
                            healthy,
                            claimed: Some(status.clone()),
                        },
                    )
                    .await;
                    if healthy {
                        tier_timeline(
                            record,
                            "verified_healthy",
                            format!(
                                "{} answered {status}; the probes were verified healthy",
                                tier.name
                            ),
                        );
                        return Outcome::Healed(tier.name.clone());
                    }
                    tier_timeline(
                        record,
                        "not_healed",
                        format!(
                            "{} answered {status} but the probes did not recover",
                            tier.name
                        ),
                    );
                    record.history.record(
                        HistoryKind::Rejection,
                        &tier.name,
                        attempt,
                        format!("{} said {status} but the probes did not recover", tier.name),
                        json!({}),
                    );
                    Outcome::Next
                }
                _ => {
                    tier_timeline(record, &status, format!("{} answered {status}", tier.name));
                    Outcome::Next
                }
            }
        }
        Some(TierKind::Notifier) => {
            let name = tier.notifier.clone().unwrap_or_default();
            ctx.metrics
                .escalation(&ctx.component.name, &tier.name, "paged");
            let seq = emit(
                ctx,
                record,
                &esc::TierCalled {
                    kind: Some("notifier".to_owned()),
                    notifier: Some(name.clone()),
                    started_seq: Some(started),
                    ..tier_called(ctx, &tier.name, attempt, "paging")
                },
            )
            .await;
            let notice = notice(
                ctx,
                record,
                seq.unwrap_or(0),
                "escalation",
                Severity::Critical,
                format!("{}: escalated to {}", ctx.component.name, tier.name),
                format!(
                    "Self-heal did not restore {}. Escalation history: {}",
                    ctx.component.name,
                    summary_line(&record.history)
                ),
            );
            let delivered = ctx
                .outbox()
                .send(&notice, Route::Only(&name))
                .await
                .iter()
                .any(|delivery| delivery.outcome == DeliveryOutcome::Sent);
            let paged = if delivered { "sent" } else { "failed" };
            record.history.record(
                HistoryKind::Tier,
                &tier.name,
                attempt,
                format!("paged through {name}: {paged}"),
                json!({}),
            );
            // A person needs time: give them the verification window before climbing on.
            let healthy = verify(ctx, ctx.component.fix.verify_timeout, signal).await;
            let outcome = match (healthy, delivered) {
                (true, _) => "verified_healthy",
                (false, true) => "paged",
                (false, false) => "page_failed",
            };
            ctx.timeline(
                record,
                "tier",
                format!("{} paged through {name} ({paged})", tier.name),
                json!({ "attempt": attempt, "tier": tier.name, "notifier": name, "delivered": delivered, "outcome": outcome }),
            );
            if healthy {
                return Outcome::Healed(tier.name.clone());
            }
            Outcome::Next
        }
        None => Outcome::Next,
    }
}

/// Applies a tier's patch if the component's `patch` settings allow it,
/// at most once per cycle. Rows carry paths, sizes and digests, never content.
async fn apply_patch(
    ctx: &CycleContext,
    record: &mut CycleRecord,
    tier: &str,
    patch: &Value,
    started: u64,
) {
    let digest = patches::digest(patch);
    let files = patches::describe(patch);
    if record.applied_patches.contains(&digest) {
        let _ = emit(
            ctx,
            record,
            &esc::PatchRejected {
                component: ctx.component.name.clone(),
                tier: tier.to_owned(),
                started_seq: started,
                digest: digest.clone(),
                files: files.clone(),
                reason: "this patch was already applied in this cycle".to_owned(),
            },
        )
        .await;
        patch_timeline(
            ctx,
            record,
            tier,
            started,
            "rejected",
            format!("patch from {tier} refused: already applied in this cycle"),
        );
        return;
    }
    let state_dir = ctx.state_dir.clone();
    let component = ctx.component.name.clone();
    let settings = ctx.component.patch.clone();
    let (tier_name, body) = (tier.to_owned(), patch.clone());
    let result = tokio::task::spawn_blocking(move || {
        let policy = PatchPolicy::new(&settings)?;
        PatchHistory::open(&state_dir)?.apply_patch(&component, &tier_name, &body, &policy)
    })
    .await
    .unwrap_or_else(|error| {
        Err(PatchError::Io {
            path: ctx.state_dir.clone(),
            source: std::io::Error::other(error.to_string()),
        })
    });
    match result {
        Ok(entry) => {
            record.applied_patches.insert(digest.clone());
            record.history.record(
                HistoryKind::Note,
                tier,
                0,
                format!("patch from {tier} applied to {} file(s)", entry.files.len()),
                json!({ "digest": digest }),
            );
            let _ = emit(
                ctx,
                record,
                &esc::PatchApplied {
                    component: ctx.component.name.clone(),
                    tier: tier.to_owned(),
                    applied: true,
                    started_seq: started,
                    entry: Some(entry.id),
                    digest: digest.clone(),
                    files: serde_json::to_value(&entry.files).unwrap_or_default(),
                    error: None,
                },
            )
            .await;
            patch_timeline(
                ctx,
                record,
                tier,
                started,
                "applied",
                format!("patch from {tier} applied"),
            );
        }
        Err(error @ (PatchError::Refused(_) | PatchError::Invalid(_))) => {
            record.history.record(
                HistoryKind::Rejection,
                tier,
                0,
                format!("Warden did not apply the patch from {tier}: {error}"),
                json!({ "digest": digest }),
            );
            let _ = emit(
                ctx,
                record,
                &esc::PatchRejected {
                    component: ctx.component.name.clone(),
                    tier: tier.to_owned(),
                    started_seq: started,
                    digest: digest.clone(),
                    files: files.clone(),
                    reason: error.to_string(),
                },
            )
            .await;
            patch_timeline(
                ctx,
                record,
                tier,
                started,
                "rejected",
                format!("patch from {tier} refused: {error}"),
            );
        }
        Err(error) => {
            let _ = emit(
                ctx,
                record,
                &esc::PatchApplied {
                    component: ctx.component.name.clone(),
                    tier: tier.to_owned(),
                    applied: false,
                    started_seq: started,
                    entry: None,
                    digest: digest.clone(),
                    files: files.clone(),
                    error: Some(error.to_string()),
                },
            )
            .await;
            patch_timeline(
                ctx,
                record,
                tier,
                started,
                "failed",
                format!("patch from {tier} failed: {error}"),
            );
        }
    }
}

/// The incident timeline's entry for a patch step, with its real outcome.
fn patch_timeline(
    ctx: &CycleContext,
    record: &CycleRecord,
    tier: &str,
    started: u64,
    outcome: &str,
    text: String,
) {
    ctx.timeline(
        record,
        "patch",
        text,
        json!({ "tier": tier, "outcome": outcome, "started_seq": started }),
    );
}

fn notice(
    ctx: &CycleContext,
    record: &CycleRecord,
    seq: u64,
    kind: &str,
    severity: Severity,
    title: String,
    summary: String,
) -> Notice {
    Notice {
        idempotency_key: format!("warden-{seq}"),
        seq,
        caller_session_id: record.session.clone(),
        group: None,
        probe: String::new(),
        component: ctx.component.name.clone(),
        severity,
        category: "escalation".into(),
        kind: kind.into(),
        status: NoticeStatus::Firing,
        title,
        summary,
        actions: Vec::new(),
        runbook: None,
        at: jiff::Timestamp::now().to_string(),
        details: json!({ "history": record.history.to_context(None) }),
    }
}

/// Sends a notice to every notifier whose `min_severity` it reaches; each
/// delivery is recorded and counted by the outbox.
async fn broadcast(ctx: &CycleContext, notice: &Notice) {
    ctx.outbox().send(notice, Route::Subscribed).await;
}

async fn warn_operator(ctx: &CycleContext, record: &CycleRecord) {
    let attempts = record.ladder.as_ref().map_or(0, EscalationLadder::attempts);
    let seq = emit(
        ctx,
        record,
        &esc::Warning {
            component: ctx.component.name.clone(),
            attempts,
            threshold: ctx.component.warning_threshold,
        },
    )
    .await;
    let notice = notice(
        ctx,
        record,
        seq.unwrap_or(0),
        "escalation_warning",
        Severity::Warning,
        format!("{}: escalating", ctx.component.name),
        format!(
            "{} escalation step(s) so far for {}: {}",
            attempts,
            ctx.component.name,
            summary_line(&record.history)
        ),
    );
    broadcast(ctx, &notice).await;
}

/// The ladder is exhausted: roll back (first time) or stop automation
/// (second time in a row). Returns the hold that kept the rollback from
/// starting, with the record untouched, so the cycle waits and tries again.
async fn exhausted(ctx: &CycleContext, record: &mut CycleRecord, warn: bool) -> Option<String> {
    let stopping = record.exhaustions_in_row + 1 >= 2;
    if !stopping && ctx.component.rollback.snapshot.is_empty() {
        return nothing_to_roll_back(ctx, record, warn).await;
    }
    let started = if stopping {
        None
    } else {
        let rollback = esc::ActionStarted {
            managed_restart: Some(ctx.managed.is_some()),
            ..action_started(ctx, "rollback")
        };
        match start_action(ctx, record, rollback, true).await {
            Ok(seq) => Some(seq),
            Err(reason) => return Some(reason),
        }
    };
    if warn {
        warn_operator(ctx, record).await;
    }
    record.active = false;
    record.exhaustions_in_row += 1;
    if stopping {
        record.automation_stopped = true;
        ctx.metrics
            .escalation(&ctx.component.name, "rollback", "automation_stopped");
        let seq = emit(
            ctx,
            record,
            &esc::AutomationStopped {
                component: ctx.component.name.clone(),
                exhaustions_in_row: record.exhaustions_in_row,
                history: record.history.to_context(None),
            },
        )
        .await;
        let notice = notice(
            ctx,
            record,
            seq.unwrap_or(0),
            "automation_stopped",
            Severity::Critical,
            format!(
                "{}: ladder exhausted twice; automation stopped",
                ctx.component.name
            ),
            format!(
                "The escalation ladder of {} was exhausted twice in a row without a verified heal. Warden will not act on it again until restarted; it needs a person now.",
                ctx.component.name
            ),
        );
        broadcast(ctx, &notice).await;
        ctx.timeline(
            record,
            "rollback",
            "ladder exhausted twice in a row; automation stopped".into(),
            json!({ "seq": seq, "outcome": "automation_stopped" }),
        );
        return None;
    }
    ctx.metrics
        .escalation(&ctx.component.name, "rollback", "rolled_back");
    let restore = Snapshots::restore(&ctx.state_dir, &ctx.component.name);
    let restored = match &restore {
        Ok(report) => {
            json!({ "restored": report.restored, "missing": report.missing, "taken_at": report.taken_at })
        }
        Err(error) => json!({ "error": error.to_string() }),
    };
    let restart = if ctx.managed.is_some() {
        Some(
            ManagedRestart {
                name: ctx.managed.clone(),
            }
            .restart()
            .await,
        )
    } else {
        None
    };
    let seq = emit(
        ctx,
        record,
        &esc::RolledBack {
            component: ctx.component.name.clone(),
            restored,
            restarted: restart.as_ref().map(|r| match r {
                Ok(done) => done.clone(),
                Err(error) => format!("failed: {error}"),
            }),
            started_seq: started,
            history: record.history.to_context(None),
        },
    )
    .await;
    let notice = notice(
        ctx,
        record,
        seq.unwrap_or(0),
        "rolled_back",
        Severity::Critical,
        format!(
            "{}: ladder exhausted; configuration rolled back to last-known-good",
            ctx.component.name
        ),
        format!(
            "Every rung of {}'s escalation ladder was tried without a verified heal. Its snapshot was restored{}. History: {}",
            ctx.component.name,
            if restart.is_some() {
                " and the process restarted"
            } else {
                ""
            },
            summary_line(&record.history)
        ),
    );
    broadcast(ctx, &notice).await;
    let (outcome, text) = match (&restore, &restart) {
        (Err(error), _) => (
            "failed",
            format!("ladder exhausted; restoring last-known-good failed: {error}"),
        ),
        (Ok(_), Some(Err(error))) => (
            "restart_failed",
            format!("ladder exhausted; last-known-good restored, but the restart failed: {error}"),
        ),
        (Ok(_), _) => (
            "rolled_back",
            "ladder exhausted; last-known-good restored".to_owned(),
        ),
    };
    ctx.timeline(
        record,
        "rollback",
        text,
        json!({ "seq": seq, "outcome": outcome }),
    );
    ctx.tell_commander(crate::incidents::IncidentMsg::Open {
        trigger: crate::incidents::OpenTrigger::LadderExhausted {
            component: ctx.component.name.clone(),
            history: record.history.to_context(None),
            session: record.session.clone(),
        },
        reply: None,
    });
    record.ladder = None;
    None
}

/// The ladder is exhausted and the component has no `rollback.snapshot`:
/// there is nothing to restore, so no rollback happens. A managed process
/// is still restarted, the ladder's last resort (the restart is an action
/// and waits out a hold like any other). The operator hears it as a
/// warning, not as a rollback that never happened.
async fn nothing_to_roll_back(
    ctx: &CycleContext,
    record: &mut CycleRecord,
    warn: bool,
) -> Option<String> {
    let started = if ctx.managed.is_some() {
        let restart = esc::ActionStarted {
            managed_restart: Some(true),
            ..action_started(ctx, "restart")
        };
        match start_action(ctx, record, restart, true).await {
            Ok(seq) => Some(seq),
            Err(reason) => return Some(reason),
        }
    } else {
        None
    };
    if warn {
        warn_operator(ctx, record).await;
    }
    record.active = false;
    record.exhaustions_in_row += 1;
    ctx.metrics
        .escalation(&ctx.component.name, "rollback", "nothing_to_roll_back");
    let restart = match started {
        Some(_) => Some(
            ManagedRestart {
                name: ctx.managed.clone(),
            }
            .restart()
            .await,
        ),
        None => None,
    };
    let restarted = restart.as_ref().map(|r| match r {
        Ok(done) => done.clone(),
        Err(error) => format!("failed: {error}"),
    });
    let seq = emit(
        ctx,
        record,
        &esc::Exhausted {
            component: ctx.component.name.clone(),
            rolled_back: false,
            reason: "nothing was snapshotted".to_owned(),
            restarted,
            started_seq: started,
            history: record.history.to_context(None),
        },
    )
    .await;
    let (did, outcome) = match &restart {
        Some(Ok(_)) => ("Its process was restarted", "restarted"),
        Some(Err(_)) => ("Restarting its process failed", "restart_failed"),
        None => ("Nothing was restarted", "nothing_to_roll_back"),
    };
    let tried = if record.history.entries().next().is_some() {
        format!(" History: {}", summary_line(&record.history))
    } else {
        String::new()
    };
    let notice = notice(
        ctx,
        record,
        seq.unwrap_or(0),
        "exhausted",
        Severity::Warning,
        format!(
            "{}: ladder exhausted; no rollback (nothing was snapshotted)",
            ctx.component.name
        ),
        format!(
            "Warden has tried everything configured for {}. No rollback.snapshot is configured, so no rollback happened. {did}; if it is still unhealthy it needs a person.{tried}",
            ctx.component.name
        ),
    );
    broadcast(ctx, &notice).await;
    ctx.timeline(
        record,
        "rollback",
        format!("ladder exhausted; nothing was snapshotted, so no rollback happened. {did}"),
        json!({ "seq": seq, "outcome": outcome }),
    );
    ctx.tell_commander(crate::incidents::IncidentMsg::Open {
        trigger: crate::incidents::OpenTrigger::LadderExhausted {
            component: ctx.component.name.clone(),
            history: record.history.to_context(None),
            session: record.session.clone(),
        },
        reply: None,
    });
    record.ladder = None;
    None
}

/// The last few history entries in one line, for notices.
fn summary_line(history: &EscalationHistory) -> String {
    let entries: Vec<String> = history.entries().map(|e| e.summary.clone()).collect();
    let start = entries.len().saturating_sub(6);
    entries[start..].join("; ")
}

#[cfg(test)]
mod tests;
