//! `Debouncer`: applies observations to each probe's debounce state and turns
//! the resulting effects into durable audit rows, which every consumer reads
//! from the log.
//!
//! In: [`DebouncerMsg::Drain`] (probes pushed to the [`ObservationQueue`]),
//! [`DebouncerMsg::Tick`] (reminders, flap settling, suppression ending),
//! [`DebouncerMsg::OpenIssues`], [`DebouncerMsg::Acknowledged`]. Out: `probe.wake_requested`,
//! `probe.wake_suppressed`, `probe.flapping`, `probe.flapping_settled` and
//! `probe.resolved` rows, each appended (and durable) before its effect
//! leaves the store.
//!
//! Restart safety: the per-probe state and the effects not yet written live in
//! the shared [`DebounceStore`]; observations wait in the shared queue. A new
//! instance first writes any pending effects, then drains the queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tokio::time::Instant;
use tracing::Instrument;

use super::maintenance::{self, Window};
use super::rows::{effect_key, effect_labels, effect_row};
use super::state::{Context, Effect, Input, ProbeDebounce, RestoredIssue, WakeKind};
use crate::audit::{AuditLog, NewRow, SEQ_PLACEHOLDER};
use crate::messages::Observation;
use crate::observations::{LatestObservations, ObservationQueue};
use crate::settings::{DebounceSettings, Severity};
use crate::tasks::AbortOnDrop;

/// What the debouncer needs to know about one probe.
#[derive(Debug, Clone)]
pub struct ProbeRules {
    /// The probe's component.
    pub component: String,
    /// Category when unhealthy.
    pub category: String,
    /// Category when degraded.
    pub degraded_category: String,
    /// Severity when unhealthy.
    pub severity: Severity,
    /// Effective debounce settings.
    pub settings: DebounceSettings,
    /// The component's fix envelope: `enabled`, `disabled` or `absent`
    /// (`FixSettings::status`), written into every wake row.
    pub envelope_status: &'static str,
    /// What the envelope's fix does (`FixSettings::describe`), if configured.
    pub envelope_fix: Option<String>,
}

/// Per-instance configuration, built once from the settings.
#[derive(Debug, Default)]
pub struct DebounceConfig {
    /// Rules per probe name.
    pub rules: HashMap<String, ProbeRules>,
    /// `depends_on` per component.
    pub depends_on: HashMap<String, Vec<String>>,
    /// Maintenance windows.
    pub windows: Vec<Window>,
    /// Probe names per component, sorted; see [`DebounceConfig::probes_of`].
    pub by_component: HashMap<String, Vec<String>>,
}

impl DebounceConfig {
    /// A config with its per-component index built from `rules`.
    pub fn new(
        rules: HashMap<String, ProbeRules>,
        depends_on: HashMap<String, Vec<String>>,
        windows: Vec<Window>,
    ) -> Self {
        let mut by_component: HashMap<String, Vec<String>> = HashMap::new();
        for (probe, rule) in &rules {
            by_component
                .entry(rule.component.clone())
                .or_default()
                .push(probe.clone());
        }
        for probes in by_component.values_mut() {
            probes.sort();
        }
        Self {
            rules,
            depends_on,
            windows,
            by_component,
        }
    }

    /// The probes of `component`, so per-event lookups (the investigator's
    /// open issues on the same component) touch those probes, not all of them.
    pub fn probes_of(&self, component: &str) -> &[String] {
        self.by_component
            .get(component)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// One probe's debounce state plus what must survive a debouncer restart.
#[derive(Debug, Clone)]
pub struct DebounceEntry {
    /// The pure state machine.
    pub machine: ProbeDebounce,
    /// The open issue's `caller_session_id`, once its first row is written.
    pub session: Option<String>,
    /// Id of the last observation applied (so a replayed one is skipped).
    pub applied: u64,
    /// Effects computed but not yet durably written.
    pub pending: Vec<PendingEffect>,
    /// The operator acknowledged the open issue: no more reminders for it.
    pub acked: bool,
    /// `traceparent` of the open issue's root span: its later rows continue it.
    pub trace: Option<String>,
}

/// An effect waiting to be written, with the observation that caused it
/// (none for a tick). The row must show that observation, not whatever is
/// latest when the write finally happens: after an audit outage the latest
/// one may already be healthy.
#[derive(Debug, Clone)]
pub struct PendingEffect {
    /// The effect.
    pub effect: Effect,
    /// The observation it came from.
    pub observation: Option<Observation>,
}

/// Debounce state of every probe, made once per boot (`app/handles.rs`).
pub type DebounceStore = Arc<dashmap::DashMap<String, DebounceEntry>>;

/// Creates the store entry for a probe, or restores it from the audit log.
pub fn new_entry(rules: &ProbeRules) -> DebounceEntry {
    DebounceEntry {
        machine: ProbeDebounce::new(rules.settings.clone()),
        session: None,
        applied: 0,
        pending: Vec::new(),
        acked: false,
        trace: None,
    }
}

/// Seeds the store with an issue that was open when Warden last stopped.
pub fn restore_entry(
    store: &DebounceStore,
    probe: &str,
    rules: &ProbeRules,
    issue: RestoredIssue,
    session: Option<String>,
    trace: Option<String>,
) {
    let mut entry = store
        .entry(probe.to_owned())
        .or_insert_with(|| new_entry(rules));
    entry.machine.restore(issue, Instant::now());
    entry.session = session;
    entry.trace = trace;
}

/// Arguments, cloneable so the supervisor can respawn the debouncer.
#[derive(Clone)]
pub struct DebouncerArgs {
    /// Probe rules, dependencies, maintenance windows.
    pub config: Arc<DebounceConfig>,
    /// Shared per-probe state.
    pub store: DebounceStore,
    /// Shared observation queue.
    pub queue: ObservationQueue,
    /// Latest observation per probe (for the snapshot in wake rows).
    pub latest: LatestObservations,
    /// The audit log.
    pub audit: AuditLog,
    /// How often time-driven rules (reminders, settling) are evaluated.
    pub tick: Duration,
    /// Metrics (issue rows).
    pub metrics: crate::metrics::Metrics,
}

/// Messages to the debouncer.
#[derive(Debug)]
pub enum DebouncerMsg {
    /// New observations are waiting in the queue.
    Drain,
    /// Time passed: evaluate reminders, flap settling and ended suppressions.
    Tick,
    /// Every open issue, for the API.
    OpenIssues(RpcReplyPort<Vec<OpenIssueView>>),
    /// An operator acknowledged `session`'s issue of `probe` (its
    /// `issue.acknowledged` row is durable): no more reminders for it. The
    /// debouncer is the only writer of its store; the API tells it instead
    /// of writing there.
    Acknowledged {
        /// The probe.
        probe: String,
        /// The issue's story.
        session: String,
        /// Answered once the store says so, so the API's answer and its
        /// next `/api/issues` agree.
        applied: Option<RpcReplyPort<()>>,
    },
    /// Probes moved between nodes (cluster mode).
    Reassigned(Reassigned),
}

/// Cluster mode: probes that moved to or from this node (see
/// [`crate::cluster::Ownership`]).
#[derive(Debug, Default)]
pub struct Reassigned {
    /// Probes another node checks now: their state here is dropped, so this
    /// node neither reminds nor resolves for them.
    pub lost: Vec<String>,
    /// Probes this node checks now. Their state is rebuilt from the log
    /// (which every node copies whole): `open` holds the issues still open
    /// for them, so an outage that continues is neither lost nor woken again.
    pub gained: Vec<String>,
    /// The open issues of `gained`, as the log's end says.
    pub open: HashMap<String, super::OpenAtBoot>,
}

/// An open issue as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OpenIssueView {
    /// The probe.
    pub probe: String,
    /// Its component.
    pub component: String,
    /// The category.
    pub category: String,
    /// Its severity.
    pub severity: Severity,
    /// Whether the operator was woken for it.
    pub woken: bool,
    /// The issue's story id.
    pub caller_session_id: Option<String>,
    /// How long it has been open, in seconds.
    pub open_for_s: u64,
}

/// The debouncer's runtime state (rebuilt from args on every start).
pub struct DebouncerState {
    args: DebouncerArgs,
    /// A guard, not a handle: a killed debouncer skips post_stop, and its
    /// ticker must not outlive it.
    ticker: Option<AbortOnDrop>,
    /// Whether the effects a previous instance left unwritten were written.
    /// Only then can an entry hold pending effects outside a flush (a failed
    /// flush fails the actor), so only the first drain scans the whole store:
    /// a scan per drain cost every check O(probes).
    recovered: bool,
}

/// The debouncer actor.
pub struct Debouncer;

impl Actor for Debouncer {
    type Msg = DebouncerMsg;
    type State = DebouncerState;
    type Arguments = DebouncerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: DebouncerArgs,
    ) -> Result<DebouncerState, ActorProcessingErr> {
        let ticker = myself.send_interval(args.tick, || DebouncerMsg::Tick);
        // Work left by a previous instance: its unwritten effects, then the queue.
        myself.cast(DebouncerMsg::Drain)?;
        Ok(DebouncerState {
            args,
            ticker: Some(AbortOnDrop::new(&ticker)),
            recovered: false,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut DebouncerState,
    ) -> Result<(), ActorProcessingErr> {
        state.ticker = None;
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: DebouncerMsg,
        state: &mut DebouncerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            DebouncerMsg::Drain => {
                if !state.recovered {
                    flush_all(&state.args).await?;
                    state.recovered = true;
                }
                on_drain(&state.args).await
            }
            DebouncerMsg::Tick => on_tick(&state.args).await,
            DebouncerMsg::OpenIssues(reply) => {
                let _ = reply.send(open_issues(&state.args));
                Ok(())
            }
            DebouncerMsg::Reassigned(moved) => reassign(&state.args, moved).await,
            DebouncerMsg::Acknowledged {
                probe,
                session,
                applied,
            } => {
                // Only the story acknowledged: an issue that resolved and
                // fired again since is a new story, and wakes again.
                if let Some(mut entry) = state.args.store.get_mut(&probe)
                    && entry.session.as_deref() == Some(session.as_str())
                {
                    entry.acked = true;
                }
                if let Some(applied) = applied {
                    let _ = applied.send(());
                }
                Ok(())
            }
        }
    }
}

fn open_issues(args: &DebouncerArgs) -> Vec<OpenIssueView> {
    let now = Instant::now();
    let mut views: Vec<OpenIssueView> = args
        .store
        .iter()
        .filter_map(|entry| {
            let issue = entry.machine.open_issue()?;
            let component = args
                .config
                .rules
                .get(entry.key())
                .map(|r| r.component.clone())
                .unwrap_or_default();
            Some(OpenIssueView {
                probe: entry.key().clone(),
                component,
                category: issue.category.clone(),
                severity: issue.severity,
                woken: issue.woken,
                caller_session_id: entry.session.clone(),
                open_for_s: now.saturating_duration_since(issue.opened_at).as_secs(),
            })
        })
        .collect();
    views.sort_by(|a, b| a.probe.cmp(&b.probe));
    views
}

/// The context a probe's issue is judged in: is a dependency down, is a
/// maintenance window active.
fn context(args: &DebouncerArgs, component: &str) -> Context {
    let dependency_down = args.config.depends_on.get(component).and_then(|deps| {
        deps.iter().find(|dependency| {
            args.config.rules.iter().any(|(probe, rules)| {
                &rules.component == *dependency
                    && args.store.get(probe).is_some_and(|entry| {
                        entry
                            .machine
                            .open_issue()
                            .is_some_and(|issue| issue.severity == Severity::Critical)
                    })
            })
        })
    });
    let maintenance = maintenance::active(&args.config.windows, component, jiff::Timestamp::now())
        .map(str::to_owned);
    Context {
        dependency_down: dependency_down.cloned(),
        maintenance,
    }
}

/// Queues effects for writing. An acknowledged issue's reminders are dropped
/// (the operator knows); anything else still goes out, and the
/// acknowledgement ends with the issue.
fn accept(entry: &mut DebounceEntry, effects: Vec<Effect>, observation: Option<&Observation>) {
    for effect in effects {
        let reminder = matches!(
            effect,
            Effect::Wake {
                kind: WakeKind::Reminder,
                ..
            } | Effect::Suppressed {
                kind: WakeKind::Reminder,
                ..
            }
        );
        if entry.acked && reminder {
            continue;
        }
        if matches!(effect, Effect::Resolved { .. }) {
            entry.acked = false;
        }
        entry.pending.push(PendingEffect {
            effect,
            observation: observation.cloned(),
        });
    }
}

async fn on_drain(args: &DebouncerArgs) -> Result<(), ActorProcessingErr> {
    // Every queued observation is applied first and the rows they cause are
    // written together below, so a burst of issues shares fsyncs instead of
    // waiting for one each. Bounded: each round removes the front entry.
    let mut touched: Vec<String> = Vec::new();
    while let Some((id, observation)) = args.queue.front() {
        if let Some(rules) = args.config.rules.get(&observation.probe) {
            let ctx = context(args, &rules.component);
            let now = Instant::now();
            let mut entry = args
                .store
                .entry(observation.probe.clone())
                .or_insert_with(|| new_entry(rules));
            if entry.applied < id {
                let input = Input::Observed {
                    status: observation.status,
                    severity_if_unhealthy: rules.severity,
                    category: rules.category.clone(),
                    degraded_category: rules.degraded_category.clone(),
                    stage: observation.stage.clone(),
                    ctx,
                };
                let effects = entry.machine.step(input, now);
                entry.applied = id;
                accept(&mut entry, effects, Some(&observation));
                if !entry.pending.is_empty() && !touched.contains(&observation.probe) {
                    touched.push(observation.probe.clone());
                }
            }
        }
        args.queue.done(id);
    }
    flush(args, touched).await
}

async fn on_tick(args: &DebouncerArgs) -> Result<(), ActorProcessingErr> {
    let now = Instant::now();
    let probes: Vec<String> = args.store.iter().map(|entry| entry.key().clone()).collect();
    let mut touched = Vec::new();
    for probe in probes {
        let Some(rules) = args.config.rules.get(&probe) else {
            continue;
        };
        let ctx = context(args, &rules.component);
        if let Some(mut entry) = args.store.get_mut(&probe) {
            let effects = entry.machine.step(Input::Tick { ctx }, now);
            accept(&mut entry, effects, None);
            if !entry.pending.is_empty() {
                touched.push(probe);
            }
        }
    }
    flush(args, touched).await
}

async fn reassign(args: &DebouncerArgs, moved: Reassigned) -> Result<(), ActorProcessingErr> {
    // What this node decided about a probe it hands over is written first.
    flush_all(args).await?;
    for probe in &moved.lost {
        args.store.remove(probe);
    }
    for probe in &moved.gained {
        let Some(rules) = args.config.rules.get(probe) else {
            continue;
        };
        // A failure count in progress on the old owner is not carried over
        // (it never reached the log); an open issue is.
        args.store.insert(probe.clone(), new_entry(rules));
        if let Some(open) = moved.open.get(probe) {
            restore_entry(
                &args.store,
                probe,
                rules,
                open.issue.clone(),
                open.session.clone(),
                open.trace.clone(),
            );
        }
    }
    tracing::info!(
        gained = moved.gained.len(),
        lost = moved.lost.len(),
        reopened = moved.open.len(),
        "Probes moved between cluster nodes."
    );
    Ok(())
}

async fn flush_all(args: &DebouncerArgs) -> Result<(), ActorProcessingErr> {
    let probes: Vec<String> = args
        .store
        .iter()
        .filter(|entry| !entry.pending.is_empty())
        .map(|entry| entry.key().clone())
        .collect();
    flush(args, probes).await
}

/// One pending effect turned into a row, waiting for that row to be durable.
struct Prepared {
    probe: String,
    effect: Effect,
    starts_story: bool,
    flapping: bool,
    template: Option<String>,
    traceparent: Option<String>,
    span: tracing::Span,
}

/// Writes the pending effects of `probes`, each probe's in order and each
/// durable before it is removed from the entry and published. Every round
/// submits the first pending effect of every probe at once, so rows of
/// different probes share one write and fsync; a probe's next effect waits
/// for the previous one (it may need the story id that row's seq gives). An
/// append error fails the actor (its supervisor restarts it) with that
/// effect still pending: nothing is lost, and effects that did become
/// durable in the same round are still recorded first, so none is written twice.
async fn flush(args: &DebouncerArgs, mut probes: Vec<String>) -> Result<(), ActorProcessingErr> {
    while !probes.is_empty() {
        let mut submitted = Vec::with_capacity(probes.len());
        for probe in probes.drain(..) {
            if let Some((prepared, row)) = prepare(args, probe) {
                let durable = args.audit.submit(row);
                submitted.push((prepared, durable));
            }
        }
        let mut failed = None;
        for (prepared, durable) in submitted {
            let span =
                tracing::info_span!(parent: &prepared.span, "audit.append", actor = "debouncer");
            match durable.instrument(span).await {
                Ok(seq) => {
                    let probe = prepared.probe.clone();
                    if record(args, prepared, seq) {
                        probes.push(probe);
                    }
                }
                Err(error) => {
                    failed.get_or_insert(error);
                }
            }
        }
        if let Some(error) = failed {
            return Err(error.into());
        }
    }
    Ok(())
}

/// The row for `probe`'s first pending effect, if it has one.
fn prepare(args: &DebouncerArgs, probe: String) -> Option<(Prepared, NewRow)> {
    let (pending, session, trace) = {
        let entry = args.store.get(&probe)?;
        let pending = entry.pending.first()?.clone();
        (pending, entry.session.clone(), entry.trace.clone())
    };
    let PendingEffect {
        effect,
        observation,
    } = pending;
    let rules = args.config.rules.get(&probe)?;
    // One issue is one trace: its first row opens a root span (never a
    // child of whatever span the message arrived in), later rows continue it.
    let flapping = matches!(
        effect,
        Effect::Wake {
            kind: WakeKind::Flapping,
            ..
        } | Effect::FlappingSettled { .. }
    );
    let (category_label, _) = effect_key(&effect, rules);
    let mut opened = None;
    let row = effect_row(
        args,
        &probe,
        rules,
        &effect,
        observation,
        session.as_deref(),
        |seam, story| {
            let starts_story = story.contains(SEQ_PLACEHOLDER);
            let span = if starts_story {
                tracing::info_span!(parent: None, "issue", actor = "debouncer", probe = %probe, category = %category_label, seam = %seam)
            } else {
                let span = tracing::info_span!(parent: None, "issue.update", actor = "debouncer", probe = %probe, seam = %seam);
                crate::telemetry::trace::continue_from(&span, trace.as_deref());
                span
            };
            let traceparent = crate::telemetry::trace::traceparent(&span);
            opened = Some((span, starts_story, traceparent.clone()));
            traceparent
        },
    );
    let (span, starts_story, traceparent) = opened.unwrap_or_else(|| {
        let story = row.caller_session_id.as_deref().unwrap_or_default();
        (tracing::Span::none(), story.contains(SEQ_PLACEHOLDER), None)
    });
    let row = match traceparent
        .as_deref()
        .and_then(crate::telemetry::trace::trace_id)
    {
        Some(id) => row.trace(id),
        None => row,
    };
    let template = row.caller_session_id.clone();
    let prepared = Prepared {
        probe,
        effect,
        starts_story,
        flapping,
        template,
        traceparent,
        span,
    };
    Some((prepared, row))
}

/// The row of `prepared` is durable as `seq`: removes its effect from the
/// entry and updates the story (the consumers read the row from the log).
/// True if more effects wait.
fn record(args: &DebouncerArgs, prepared: Prepared, seq: u64) -> bool {
    let Prepared {
        probe,
        effect,
        starts_story,
        flapping,
        template,
        traceparent,
        span: _,
    } = prepared;
    let session = template.map(|id| id.replace(SEQ_PLACEHOLDER, &seq.to_string()));
    let mut more = false;
    if let Some(mut entry) = args.store.get_mut(&probe) {
        if !entry.pending.is_empty() {
            entry.pending.remove(0);
        }
        more = !entry.pending.is_empty();
        if starts_story && !flapping {
            entry.trace = traceparent.clone();
        }
        match &effect {
            Effect::Resolved { .. } => {
                entry.session = None;
                entry.trace = None;
            }
            // Flapping has its own story; it must not replace the issue's.
            Effect::Wake {
                kind: WakeKind::Flapping,
                ..
            }
            | Effect::FlappingSettled { .. } => {}
            Effect::Wake { .. } | Effect::Suppressed { .. } if starts_story => {
                entry.session = session.clone()
            }
            Effect::Wake { .. } | Effect::Suppressed { .. } => {}
        }
    }
    if args.config.rules.contains_key(&probe) {
        let (event, reason) = effect_labels(&effect);
        args.metrics.issue(event, reason);
    }
    more
}
