//! `ProbeActor`: one per configured probe. Runs its check on a fixed cadence,
//! classifies the result, stores it as the probe's latest observation and
//! hands it to the debouncer.
//!
//! In: [`ProbeMsg::Tick`] (its own schedule). Out: an [`Observation`] pushed to
//! the shared [`ObservationQueue`], then a `Drain` cast to the debouncer found
//! by name at send time (a restarted debouncer is never a stale ref).
//!
//! Cadence: the first check runs after a random offset within one interval,
//! so probes started together do not fire in lockstep; each next deadline is
//! the previous one plus the interval (no drift when a check is slow), and
//! deadlines that passed while a check ran are skipped rather than queued.

use std::time::{Duration, SystemTime};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use rand::Rng;
use tokio::time::Instant;

use super::check::{Check, CheckContext};
use super::classify::{self, Condition};
use crate::debounce::{DebouncerMsg, LatestObservations, ObservationHistory, ObservationQueue};
use crate::messages::Observation;
use crate::settings::{ProbeDefaults, ProbeSettings};

/// Extra time past the probe's own timeout before the actor gives up on a
/// check that did not enforce it (a bug guard, not the normal path).
const TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// Arguments, cloneable so the supervisor can respawn the probe.
#[derive(Clone)]
pub struct ProbeActorArgs {
    /// The probe's settings; shared, since the args are cloned into the
    /// supervisor's child spec and every instance.
    pub probe: std::sync::Arc<ProbeSettings>,
    /// Defaults for interval and timeout.
    pub defaults: ProbeDefaults,
    /// Shared HTTP client and heartbeat store.
    pub ctx: CheckContext,
    /// Latest observation per probe (survives restarts).
    pub latest: LatestObservations,
    /// Recent observations per probe, for the investigator.
    pub history: ObservationHistory,
    /// How many observations `history` keeps per probe.
    pub history_len: usize,
    /// Metrics (checks and latency).
    pub metrics: crate::metrics::Metrics,
    /// Where observations go.
    pub queue: ObservationQueue,
    /// Registered name of the debouncer.
    pub debouncer: String,
    /// Cluster mode: which probes this node checks. A probe another node
    /// owns keeps its schedule here but skips the check, so it resumes at
    /// its own phase the moment it moves to this node.
    pub owner: Option<crate::cluster::Ownership>,
}

/// Messages to a probe.
#[derive(Debug)]
pub enum ProbeMsg {
    /// Time for the next check.
    Tick,
}

/// A probe's runtime state, rebuilt from its args on every start.
pub struct ProbeState {
    args: ProbeActorArgs,
    check: Check,
    unhealthy_if: Vec<Condition>,
    degraded_if: Vec<Condition>,
    interval: Duration,
    next_at: Instant,
}

/// The probe actor.
pub struct ProbeActor;

/// Why a probe could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProbeStartError {
    /// The probe has no kind (check-config rejects this).
    #[error("probe {0} has no kind")]
    NoKind(String),
    /// A condition does not parse (check-config rejects this).
    #[error("probe {probe}: invalid condition {expression:?}: {reason}")]
    Condition {
        /// The probe.
        probe: String,
        /// The expression.
        expression: String,
        /// Why.
        reason: String,
    },
}

fn parse_all(probe: &str, expressions: &[String]) -> Result<Vec<Condition>, ProbeStartError> {
    expressions
        .iter()
        .map(|expression| {
            classify::parse(expression).map_err(|error| ProbeStartError::Condition {
                probe: probe.to_owned(),
                expression: expression.clone(),
                reason: error.to_string(),
            })
        })
        .collect()
}

impl Actor for ProbeActor {
    type Msg = ProbeMsg;
    type State = ProbeState;
    type Arguments = ProbeActorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ProbeActorArgs,
    ) -> Result<ProbeState, ActorProcessingErr> {
        if args.probe.kind.is_none() {
            return Err(ProbeStartError::NoKind(args.probe.name.clone()).into());
        }
        let check = Check::build(&args.probe, &args.defaults, &args.ctx)?;
        let unhealthy_if = parse_all(&args.probe.name, &args.probe.unhealthy_if)?;
        let degraded_if = parse_all(&args.probe.name, &args.probe.degraded_if)?;
        let interval = args.probe.interval.unwrap_or(args.defaults.interval);
        let offset = rand::rng().random_range(Duration::ZERO..interval);
        let next_at = Instant::now() + offset;
        myself.send_after(offset, || ProbeMsg::Tick);
        Ok(ProbeState {
            args,
            check,
            unhealthy_if,
            degraded_if,
            interval,
            next_at,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: ProbeMsg,
        state: &mut ProbeState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ProbeMsg::Tick => on_tick(&myself, state).await,
        }
    }
}

async fn on_tick(
    myself: &ActorRef<ProbeMsg>,
    state: &mut ProbeState,
) -> Result<(), ActorProcessingErr> {
    if let Some(owner) = &state.args.owner
        && !owner.owns(&state.args.probe.name)
    {
        schedule_next(myself, state);
        return Ok(());
    }
    let limit = state.check.timeout() + TIMEOUT_GRACE;
    let started = Instant::now();
    let outcome = match tokio::time::timeout(limit, state.check.run()).await {
        Ok(outcome) => outcome,
        Err(_) => super::CheckOutcome::with(
            super::Facts {
                latency: started.elapsed(),
                error: Some(format!(
                    "timed out after {}",
                    humantime::format_duration(limit)
                )),
                ..super::Facts::default()
            },
            crate::messages::Health::Unhealthy,
            format!(
                "check timed out after {}",
                humantime::format_duration(limit)
            ),
        ),
    };
    let latency = outcome.facts.latency;
    let details = outcome.facts.to_details();
    let stage = outcome.stage.clone();
    let (status, mut reasons) =
        classify::classify(outcome, &state.unhealthy_if, &state.degraded_if);
    // Conditions saw the raw text; displays get it escaped.
    for reason in &mut reasons {
        if let std::borrow::Cow::Owned(escaped) = super::escape_line(reason) {
            *reason = escaped;
        }
    }
    let probe = &state.args.probe;
    let observation = Observation {
        probe: probe.name.clone(),
        component: probe.component_name().to_owned(),
        status,
        latency_ms: latency.as_millis() as u64,
        reasons,
        stage,
        details,
        at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
    };
    state
        .args
        .metrics
        .probe_checked(&probe.name, status, latency);
    crate::observations::record(
        &state.args.latest,
        &state.args.history,
        &observation,
        state.args.history_len,
    );
    state.args.queue.push(observation);
    if let Some(debouncer) = ActorRef::<DebouncerMsg>::where_is(state.args.debouncer.clone()) {
        // A debouncer that is restarting drains the queue when it starts.
        let _ = debouncer.cast(DebouncerMsg::Drain);
    }
    schedule_next(myself, state);
    Ok(())
}

fn schedule_next(myself: &ActorRef<ProbeMsg>, state: &mut ProbeState) {
    let now = Instant::now();
    state.next_at += state.interval;
    if state.next_at <= now {
        // The check overran one or more deadlines: skip them, keep the phase.
        let behind = now.duration_since(state.next_at);
        let skipped = behind.as_nanos() / state.interval.as_nanos().max(1) + 1;
        state.next_at += state.interval * u32::try_from(skipped).unwrap_or(u32::MAX);
    }
    myself.send_after(state.next_at.saturating_duration_since(now), || {
        ProbeMsg::Tick
    });
}
