//! The [`ManagedProcess`] actor: owns one managed process (see the module
//! docs of [`crate::managed`]). In: [`ManagedMsg`]. Out: [`ManagedEvent`]s on
//! the `events` port and as `managed.*` audit rows; [`ManagedStatus`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use ractor::{Actor, ActorProcessingErr, ActorRef, OutputPort, RpcReplyPort};
use tokio::time::Instant;
use warden_supervisors::{LadderState, LadderStep};

use super::output::{OutputTx, spawn_writer};
use super::process::{ExitInfo, Running, parse_signal, spawn};
use super::records;
use super::status::{LastExit, ManagedSnapshot, ManagedStatus, ProcessState, now};
use super::{ManagedEvent, RestartError, millis, restart_ladder};
use crate::audit::AuditLog;
use crate::settings::ComponentSettings;
use crate::tasks::AbortOnDrop;

/// How long reaping may take once the group got SIGKILL.
const REAP_GRACE: Duration = Duration::from_secs(2);

/// Everything a [`ManagedProcess`] needs; cheap to clone, so an owner can
/// respawn the actor from it.
#[derive(Clone)]
pub struct ManagedArgs {
    /// Component name (audit rows, events).
    pub component: String,
    /// The component's settings (`run`, `env`, `cwd`, signals, ladder, logs).
    pub settings: ComponentSettings,
    /// Where output goes: `<state_dir>/logs/<component>`.
    pub log_dir: PathBuf,
    /// Where the running group's record goes: `<state_dir>/managed`
    /// (see [`crate::managed::stop_previous`]).
    pub records_dir: PathBuf,
    /// The audit log.
    pub audit: AuditLog,
    /// Where events are published.
    pub events: Arc<OutputPort<ManagedEvent>>,
    /// The shared status, made once by the owner.
    pub status: ManagedStatus,
    /// Whether an automatic (ladder-driven) restart may start now.
    pub hold: AutomationHold,
}

/// Why automation may not act on a component now (PAUSED, frozen by an
/// incident), or `None`. The default never holds.
#[derive(Clone, Default)]
pub struct AutomationHold(Option<Arc<dyn Fn() -> Option<String> + Send + Sync>>);

impl AutomationHold {
    /// A hold that asks `check` each time.
    pub fn new(check: impl Fn() -> Option<String> + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(check)))
    }

    /// Why automation is held now, if it is.
    pub fn reason(&self) -> Option<String> {
        self.0.as_ref().and_then(|check| check())
    }
}

/// How often a held automatic restart looks at the hold again.
const HOLD_POLL: Duration = Duration::from_millis(250);

/// An exit noticed by the waiter task (internal).
#[derive(Debug, Clone, Copy)]
pub struct ChildExit {
    pub(crate) generation: u64,
    pub(crate) pid: u32,
    pub(crate) info: ExitInfo,
}

/// Messages of a [`ManagedProcess`].
pub enum ManagedMsg {
    /// Stop gracefully, start again, reply with the new pid. Clears FATAL.
    Restart {
        /// Who asked and why (audit).
        reason: String,
        /// Gets the new pid, or why the start failed.
        reply: Option<RpcReplyPort<Result<u32, RestartError>>>,
    },
    /// Stop gracefully; no restart until a `Restart`.
    Stop(Option<RpcReplyPort<()>>),
    /// A copy of the status.
    Status(RpcReplyPort<ManagedSnapshot>),
    /// Internal: the waiter saw the process exit.
    Exited(ChildExit),
    /// Internal: a scheduled restart is due (`token` guards against stale timers).
    StartDue {
        /// The schedule this timer belongs to.
        token: u64,
        /// Ladder attempt, for the `Started` event.
        attempt: u32,
    },
    /// Internal: `stop_timeout` passed for run `generation`; SIGKILL it.
    StopTimeout {
        /// The run being stopped.
        generation: u64,
    },
}

/// A stop in progress, and what follows it.
struct Pending {
    /// `Some(reason)`: start again after the exit; `None`: stay stopped.
    restart: Option<String>,
    stop_replies: Vec<RpcReplyPort<()>>,
    restart_replies: Vec<RpcReplyPort<Result<u32, RestartError>>>,
    /// Whether the group had to be SIGKILLed.
    forced: bool,
    _timer: AbortOnDrop,
}

/// State of a [`ManagedProcess`]. Dropping it kills the process group and
/// aborts the helper tasks.
pub struct ManagedState {
    args: ManagedArgs,
    ladder: LadderState,
    stop_signal: Signal,
    output: OutputTx,
    child: Option<Running>,
    /// Increases with every spawn; stale exits are ignored.
    generation: u64,
    pending: Option<Pending>,
    /// Token of the scheduled restart, if any, with its timer.
    scheduled: Option<(u64, Option<AbortOnDrop>)>,
    /// A due automatic restart is held; its `managed.restart_held` row is written.
    held_noted: bool,
    next_token: u64,
    _writer: AbortOnDrop,
}

/// One managed process (stateless: everything lives in [`ManagedState`]).
pub struct ManagedProcess;

impl Actor for ManagedProcess {
    type Msg = ManagedMsg;
    type State = ManagedState;
    type Arguments = ManagedArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<ManagedMsg>,
        args: ManagedArgs,
    ) -> Result<ManagedState, ActorProcessingErr> {
        let settings = &args.settings;
        let (output, writer) = spawn_writer(
            &args.log_dir,
            settings.log_max_bytes.as_u64(),
            settings.log_files,
            &args.component,
        )?;
        let stop_signal = parse_signal(&settings.stop_signal).unwrap_or_else(|| {
            tracing::warn!(component = %args.component, stop_signal = %settings.stop_signal, "Unknown stop signal; using TERM.");
            Signal::SIGTERM
        });
        Ok(ManagedState {
            ladder: restart_ladder(&settings.restart).state(),
            stop_signal,
            output,
            child: None,
            generation: 0,
            pending: None,
            scheduled: None,
            held_noted: false,
            next_token: 0,
            _writer: writer,
            args,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<ManagedMsg>,
        state: &mut ManagedState,
    ) -> Result<(), ActorProcessingErr> {
        if let Err(error) = start(&myself, state, 0) {
            on_start_failed(&myself, state, &error);
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ManagedMsg>,
        message: ManagedMsg,
        state: &mut ManagedState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ManagedMsg::Restart { reason, reply } => on_restart(&myself, state, reason, reply),
            ManagedMsg::Stop(reply) => on_stop(&myself, state, reply),
            ManagedMsg::Status(reply) => {
                let _ = reply.send(state.args.status.snapshot());
            }
            ManagedMsg::Exited(exit) => on_exited(&myself, state, exit),
            ManagedMsg::StartDue { token, attempt } => on_start_due(&myself, state, token, attempt),
            ManagedMsg::StopTimeout { generation } => on_stop_timeout(state, generation),
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ManagedMsg>,
        state: &mut ManagedState,
    ) -> Result<(), ActorProcessingErr> {
        state.scheduled = None;
        let pending = state.pending.take();
        if let Some(mut child) = state.child.take() {
            child.group.signal(state.stop_signal);
            let timeout = state.args.settings.stop_timeout;
            let mut exit = child.exit.clone();
            let mut info = tokio::time::timeout(timeout, exit.wait_for(Option::is_some))
                .await
                .ok()
                .and_then(|seen| seen.ok().and_then(|info| *info));
            if info.is_none() {
                child.group.kill();
                info = tokio::time::timeout(REAP_GRACE, exit.wait_for(Option::is_some))
                    .await
                    .ok()
                    .and_then(|seen| seen.ok().and_then(|info| *info));
            }
            child.group.kill();
            let info = info.unwrap_or(ExitInfo {
                code: None,
                signal: Some(Signal::SIGKILL as i32),
            });
            record_exit(state, &child, info, true, None);
        }
        if let Some(pending) = pending {
            for reply in pending.stop_replies {
                let _ = reply.send(());
            }
            for reply in pending.restart_replies {
                let _ = reply.send(Err(RestartError::ActorStopping));
            }
        }
        state.args.status.set_state(ProcessState::Stopped, None);
        emit(
            state,
            ManagedEvent::Stopped {
                component: state.args.component.clone(),
                reason: "actor stopped".to_owned(),
            },
        );
        Ok(())
    }
}

/// Publishes `event` and appends its audit row.
fn emit(state: &ManagedState, event: ManagedEvent) {
    state
        .args
        .audit
        .append_nowait(crate::events::row(&event).component(state.args.component.clone()));
    state.args.events.send(event);
}

/// Spawns a new run. `attempt` goes into the `Started` event.
fn start(
    myself: &ActorRef<ManagedMsg>,
    state: &mut ManagedState,
    attempt: u32,
) -> Result<u32, RestartError> {
    state.scheduled = None;
    state.generation += 1;
    state.args.status.set_state(ProcessState::Starting, None);
    match spawn(
        &state.args.settings,
        state.generation,
        myself.clone(),
        &state.output,
    ) {
        Ok(child) => {
            let pid = child.pid;
            if let Err(error) = records::write(
                &state.args.records_dir,
                &state.args.component,
                pid,
                &state.args.settings.stop_signal,
                state.args.settings.stop_timeout,
            ) {
                tracing::warn!(component = %state.args.component, pid, error = %error, "Could not record the managed process group; after a crash the next start may not find it.");
            }
            let first = state.generation == 1;
            state.child = Some(child);
            state.args.status.update(|snapshot| {
                if !first || snapshot.last_exit.is_some() {
                    snapshot.restarts = snapshot.restarts.saturating_add(1);
                }
                snapshot.last_error = None;
            });
            state
                .args
                .status
                .set_state(ProcessState::Running, Some(pid));
            tracing::info!(component = %state.args.component, pid, attempt, "Managed process started.");
            emit(
                state,
                ManagedEvent::Started {
                    component: state.args.component.clone(),
                    pid,
                    attempt,
                },
            );
            Ok(pid)
        }
        Err(source) => Err(RestartError::Spawn {
            program: state.args.settings.run.first().cloned().unwrap_or_default(),
            source: Arc::new(source),
        }),
    }
}

/// A spawn failed: record it and let the ladder decide, like an exit.
fn on_start_failed(myself: &ActorRef<ManagedMsg>, state: &mut ManagedState, error: &RestartError) {
    let error = error.to_string();
    tracing::warn!(component = %state.args.component, error = %error, "Managed process could not start.");
    state
        .args
        .status
        .update(|snapshot| snapshot.last_error = Some(error.clone()));
    emit(
        state,
        ManagedEvent::StartFailed {
            component: state.args.component.clone(),
            error,
        },
    );
    on_failure(myself, state, Duration::ZERO);
}

/// An unexpected exit or failed start: step the ladder.
fn on_failure(myself: &ActorRef<ManagedMsg>, state: &mut ManagedState, uptime: Duration) {
    let now = Instant::now();
    let restart = &state.args.settings.restart;
    if uptime >= restart.stable_after {
        state.ladder.reset();
    }
    match state.ladder.on_failure(now) {
        LadderStep::Retry { attempt, delay, .. } => {
            state.args.status.set_state(ProcessState::Backoff, None);
            emit(
                state,
                ManagedEvent::RestartScheduled {
                    component: state.args.component.clone(),
                    attempt,
                    delay_ms: millis(delay),
                },
            );
            state.next_token += 1;
            let token = state.next_token;
            if delay.is_zero() {
                let _ = myself.cast(ManagedMsg::StartDue { token, attempt });
                state.scheduled = Some((token, None));
            } else {
                let timer =
                    myself.send_after(delay, move || ManagedMsg::StartDue { token, attempt });
                state.scheduled = Some((token, Some(AbortOnDrop::new(&timer))));
            }
        }
        LadderStep::Escalate { .. } | LadderStep::Exhausted => {
            let restarts = state.ladder.attempts_in_window(now);
            let period = restart.period;
            let reason = format!(
                "{restarts} failures within {}; not restarting until asked",
                humantime::format_duration(period)
            );
            tracing::error!(component = %state.args.component, restarts, "Managed process is FATAL: too many restarts.");
            state.args.status.set_state(ProcessState::Fatal, None);
            emit(
                state,
                ManagedEvent::Fatal {
                    component: state.args.component.clone(),
                    restarts,
                    within_ms: millis(period),
                    reason,
                },
            );
        }
    }
}

fn on_start_due(myself: &ActorRef<ManagedMsg>, state: &mut ManagedState, token: u64, attempt: u32) {
    if state.scheduled.as_ref().map(|(current, _)| *current) != Some(token) || state.child.is_some()
    {
        return;
    }
    // A ladder-driven restart is automation: it checks the holds where it
    // starts, in the same step that queues its start row (see
    // `AuditLog::submit_if`), so it never starts after a pause or freeze row.
    let hold = state.args.hold.clone();
    let row = crate::events::row(&crate::events::escalation::ActionStarted {
        component: state.args.component.clone(),
        action: "restart".to_owned(),
        source: Some("managed".to_owned()),
        attempt: Some(attempt),
        kind: None,
        tier: None,
        managed_restart: None,
    })
    .component(state.args.component.clone());
    match state
        .args
        .audit
        .submit_if(row, || hold.reason().map_or(Ok(()), Err))
    {
        // Queued ahead of the spawn; durability is the writer's business.
        Ok(queued) => drop(queued),
        Err(reason) => {
            if !state.held_noted {
                state.held_noted = true;
                tracing::warn!(component = %state.args.component, reason = %reason, "Automatic restart held.");
                state.args.audit.append_nowait(
                    crate::events::row(&crate::events::service::RestartHeld {
                        attempt,
                        reason: reason.to_string(),
                    })
                    .component(state.args.component.clone()),
                );
            }
            let timer =
                myself.send_after(HOLD_POLL, move || ManagedMsg::StartDue { token, attempt });
            state.scheduled = Some((token, Some(AbortOnDrop::new(&timer))));
            return;
        }
    }
    state.held_noted = false;
    state.scheduled = None;
    if let Err(error) = start(myself, state, attempt) {
        on_start_failed(myself, state, &error);
    }
}

/// Begins a graceful stop of the running child: stop signal now, SIGKILL
/// after `stop_timeout`.
fn begin_stop(myself: &ActorRef<ManagedMsg>, state: &mut ManagedState, restart: Option<String>) {
    let Some(child) = &state.child else { return };
    child.group.signal(state.stop_signal);
    let generation = child.generation;
    let timer = myself.send_after(state.args.settings.stop_timeout, move || {
        ManagedMsg::StopTimeout { generation }
    });
    state.pending = Some(Pending {
        restart,
        stop_replies: Vec::new(),
        restart_replies: Vec::new(),
        forced: false,
        _timer: AbortOnDrop::new(&timer),
    });
}

fn on_restart(
    myself: &ActorRef<ManagedMsg>,
    state: &mut ManagedState,
    reason: String,
    reply: Option<RpcReplyPort<Result<u32, RestartError>>>,
) {
    tracing::info!(component = %state.args.component, reason = %reason, "Managed process restart requested.");
    if state.args.status.snapshot().state == ProcessState::Fatal {
        state.ladder.reset();
    }
    if state.child.is_none() {
        // Stopped, in backoff or FATAL: start now.
        state.scheduled = None;
        let result = start(myself, state, 0);
        if let Err(error) = &result {
            on_start_failed(myself, state, error);
        }
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
        return;
    }
    if state.pending.is_none() {
        begin_stop(myself, state, Some(reason));
    } else if let Some(pending) = state.pending.as_mut() {
        pending.restart = Some(reason);
    }
    if let (Some(pending), Some(reply)) = (state.pending.as_mut(), reply) {
        pending.restart_replies.push(reply);
    }
}

fn on_stop(
    myself: &ActorRef<ManagedMsg>,
    state: &mut ManagedState,
    reply: Option<RpcReplyPort<()>>,
) {
    if state.child.is_none() {
        state.scheduled = None;
        if state.args.status.snapshot().state != ProcessState::Stopped {
            state.args.status.set_state(ProcessState::Stopped, None);
            emit(
                state,
                ManagedEvent::Stopped {
                    component: state.args.component.clone(),
                    reason: "stop requested".to_owned(),
                },
            );
        }
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
        return;
    }
    if state.pending.is_none() {
        begin_stop(myself, state, None);
    } else if let Some(pending) = state.pending.as_mut() {
        // A stop wins over an earlier restart request.
        pending.restart = None;
        for waiting in pending.restart_replies.drain(..) {
            let _ = waiting.send(Err(RestartError::StopRequested));
        }
    }
    if let (Some(pending), Some(reply)) = (state.pending.as_mut(), reply) {
        pending.stop_replies.push(reply);
    }
}

fn on_stop_timeout(state: &mut ManagedState, generation: u64) {
    let Some(child) = state.child.as_mut() else {
        return;
    };
    if child.generation != generation {
        return;
    }
    tracing::warn!(component = %state.args.component, pid = child.pid, "Managed process ignored the stop signal; killing its group.");
    child.group.kill();
    if let Some(pending) = state.pending.as_mut() {
        pending.forced = true;
    }
}

/// A stop Warden asked for, as its `Exited` event records it.
struct Requested {
    forced: bool,
    restart: Option<String>,
}

/// Records an exit in the status and emits `Exited`.
fn record_exit(
    state: &ManagedState,
    child: &Running,
    info: ExitInfo,
    expected: bool,
    requested: Option<Requested>,
) -> Duration {
    // Reaped and its group killed: nothing is left for a later boot to stop.
    records::remove(&state.args.records_dir, &state.args.component);
    let uptime = child.started.elapsed();
    let uptime_ms = millis(uptime);
    state.args.status.update(|snapshot| {
        snapshot.pid = None;
        snapshot.last_exit = Some(LastExit {
            pid: child.pid,
            code: info.code,
            signal: info.signal,
            expected,
            uptime_ms,
            at: now(),
        });
    });
    tracing::info!(component = %state.args.component, pid = child.pid, code = ?info.code, signal = ?info.signal, expected, "Managed process exited.");
    emit(
        state,
        ManagedEvent::Exited {
            component: state.args.component.clone(),
            pid: child.pid,
            code: info.code,
            signal: info.signal,
            expected,
            uptime_ms,
            forced: requested.as_ref().map(|r| r.forced),
            requested: requested.as_ref().map(|r| {
                if r.restart.is_some() {
                    "restart"
                } else {
                    "stop"
                }
                .to_owned()
            }),
            reason: requested.and_then(|r| r.restart),
        },
    );
    uptime
}

fn on_exited(myself: &ActorRef<ManagedMsg>, state: &mut ManagedState, exit: ChildExit) {
    let Some(mut child) = state
        .child
        .take_if(|child| child.generation == exit.generation && child.pid == exit.pid)
    else {
        return;
    };
    // The leader is gone: end whatever it left in its group.
    child.group.kill();
    let pending = state.pending.take();
    let Some(pending) = pending else {
        let uptime = record_exit(state, &child, exit.info, false, None);
        drop(child);
        on_failure(myself, state, uptime);
        return;
    };
    let requested = Requested {
        forced: pending.forced,
        restart: pending.restart.clone(),
    };
    record_exit(state, &child, exit.info, true, Some(requested));
    drop(child);
    for reply in pending.stop_replies {
        let _ = reply.send(());
    }
    match pending.restart {
        None => {
            state.args.status.set_state(ProcessState::Stopped, None);
            emit(
                state,
                ManagedEvent::Stopped {
                    component: state.args.component.clone(),
                    reason: "stop requested".to_owned(),
                },
            );
        }
        Some(_) => {
            let result = start(myself, state, 0);
            if let Err(error) = &result {
                on_start_failed(myself, state, error);
            }
            for reply in pending.restart_replies {
                let _ = reply.send(result.clone());
            }
        }
    }
}
