//! The supervisor's state and the decisions it makes (start, stop, restart,
//! meltdown). The actor in `supervisor.rs` only routes messages here.

use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorCell, ActorId, ActorRef};
use tokio::time::Instant;

use super::stop::{KILL_WAIT, stop_cell};
use super::{SupervisorMsg, SupervisorSpec};
use crate::exit::MELTDOWN_PREFIX;
use crate::{
    ChildSpec, ExitKind, LadderState, LadderStep, Observer, Restart, Strategy, SupervisionEvent,
};

/// One child slot, in start order.
pub(super) struct Child {
    pub(super) spec: ChildSpec,
    /// The running instance; `None` while stopped or waiting for a restart.
    pub(super) cell: Option<ActorCell>,
    /// Successful restarts so far.
    pub(super) restarts: u32,
    /// Waiting for a (possibly delayed) restart.
    pub(super) pending: bool,
}

/// State of a running [`Supervisor`](super::Supervisor) (opaque).
pub struct SupervisorState {
    pub(super) name: String,
    pub(super) strategy: Strategy,
    pub(super) observer: Arc<dyn Observer>,
    pub(super) max_children: Option<usize>,
    pub(super) children: Vec<Child>,
    pub(super) ladder: LadderState,
    /// Bumped whenever a restart is scheduled or cancelled, so that stale
    /// delayed-restart timers are dropped.
    pub(super) generation: u64,
    /// Attempt number reported for the pending restarts.
    pub(super) pending_attempt: u32,
}

/// Result of a decision that may end in meltdown: `Err` carries the stop reason.
type Outcome = Result<(), String>;

impl SupervisorState {
    pub(super) fn new(spec: SupervisorSpec) -> Self {
        let SupervisorSpec {
            name,
            strategy,
            policy,
            children,
            max_children,
            observer,
        } = spec;
        Self {
            name,
            strategy,
            observer,
            max_children,
            children: children
                .into_iter()
                .map(|spec| Child {
                    spec,
                    cell: None,
                    restarts: 0,
                    pending: false,
                })
                .collect(),
            ladder: policy.state(),
            generation: 0,
            pending_attempt: 0,
        }
    }

    fn emit(&self, event: SupervisionEvent) {
        self.observer.observe(&event);
    }

    /// Starts the static children in order. A start failure counts as a
    /// restart: retried after the policy's backoff, and a meltdown (stopping
    /// the started children in reverse order) once the policy is exhausted.
    pub(super) async fn start_initial(&mut self, myself: &ActorCell) -> Outcome {
        let mut idx = 0;
        while idx < self.children.len() {
            match self.start_child(myself, idx).await {
                Ok(()) => idx += 1,
                Err(error) => {
                    let (attempt, delay) = match self.next_restart() {
                        Ok(next) => next,
                        Err(reason) => return Err(self.meltdown(reason).await),
                    };
                    self.emit(SupervisionEvent::RestartScheduled {
                        supervisor: self.name.clone(),
                        child: self.children[idx].spec.id.clone(),
                        attempt,
                        delay,
                        reason: ExitKind::Error(error.clone()),
                    });
                    tracing::warn!(
                        supervisor = %self.name,
                        child = %self.children[idx].spec.id,
                        error = %error,
                        delay_ms = delay.as_millis(),
                        "Child failed to start; retrying."
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
        Ok(())
    }

    /// Runs child `idx`'s start function; reports `ChildStarted` or `StartFailed`.
    pub(super) async fn start_child(
        &mut self,
        myself: &ActorCell,
        idx: usize,
    ) -> Result<(), String> {
        let child = &self.children[idx];
        let id = child.spec.id.clone();
        match child.spec.start(myself.clone()).await {
            Ok(cell) => {
                let actor_id = cell.get_id().to_string();
                self.children[idx].cell = Some(cell);
                self.emit(SupervisionEvent::ChildStarted {
                    supervisor: self.name.clone(),
                    child: id,
                    actor_id,
                });
                Ok(())
            }
            Err(error) => {
                let error = error.to_string();
                self.emit(SupervisionEvent::StartFailed {
                    supervisor: self.name.clone(),
                    child: id,
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }

    /// Stops child `idx` if it is running, per its shutdown rule, and waits.
    pub(super) async fn stop_child(&mut self, idx: usize) {
        let Some(cell) = self.children[idx].cell.take() else {
            return;
        };
        let killed = stop_cell(&cell, self.children[idx].spec.shutdown).await;
        if killed {
            tracing::warn!(
                supervisor = %self.name,
                child = %self.children[idx].spec.id,
                "Child killed on shutdown."
            );
        }
        self.emit(SupervisionEvent::ChildStopped {
            supervisor: self.name.clone(),
            child: self.children[idx].spec.id.clone(),
            killed,
        });
    }

    /// Stops every running child in reverse start order and forgets temporary ones.
    pub(super) async fn stop_all(&mut self) {
        for idx in (0..self.children.len()).rev() {
            self.stop_child(idx).await;
        }
        self.children
            .retain(|child| child.spec.restart != Restart::Temporary);
    }

    /// Drops any scheduled restart.
    pub(super) fn cancel_pending(&mut self) {
        self.generation += 1;
        for child in &mut self.children {
            child.pending = false;
        }
    }

    /// Records one restart against the policy: `(attempt, delay)`, or the
    /// meltdown details when the policy is exhausted.
    fn next_restart(&mut self) -> Result<(u32, Duration), String> {
        let now = Instant::now();
        match self.ladder.on_failure(now) {
            LadderStep::Retry { attempt, delay, .. } => Ok((attempt, delay)),
            LadderStep::Escalate { from, to } => {
                tracing::warn!(supervisor = %self.name, from = %from, to = %to, "Restart policy escalated.");
                Ok((self.ladder.attempts_in_window(now), Duration::ZERO))
            }
            LadderStep::Exhausted => Err(self.meltdown_details()),
        }
    }

    fn meltdown_details(&self) -> String {
        let (max, within) = self.limits();
        format!(
            "{MELTDOWN_PREFIX}: supervisor {} exceeded {max} restarts within {within:?}",
            self.name
        )
    }

    fn limits(&self) -> (u32, Duration) {
        let rung = self
            .ladder
            .rung()
            .or_else(|| self.ladder.ladder().rungs().last());
        rung.map_or((0, Duration::ZERO), |rung| (rung.max_attempts, rung.within))
    }

    /// Reports the meltdown, stops all children in reverse order and returns
    /// the reason the supervisor must stop with.
    async fn meltdown(&mut self, reason: String) -> String {
        let (restarts, within) = self.limits();
        tracing::error!(supervisor = %self.name, restarts, within_ms = within.as_millis(), "Supervisor melted down.");
        self.emit(SupervisionEvent::Meltdown {
            supervisor: self.name.clone(),
            restarts,
            within,
        });
        self.cancel_pending();
        self.stop_all().await;
        reason
    }

    /// Handles the exit of a linked actor. Exits of instances this supervisor
    /// stopped itself, or of old instances, match no child and are ignored.
    pub(super) async fn on_child_exit(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        cell: &ActorCell,
        exit: ExitKind,
    ) -> Outcome {
        let actor_id = cell.get_id();
        let Some(idx) = self.position_of(actor_id) else {
            return Ok(());
        };
        self.children[idx].cell = None;
        // The exit event is sent just before the instance is marked stopped.
        let _ = cell.wait(Some(KILL_WAIT)).await;
        let spec = self.children[idx].spec.clone();
        if exit.is_abnormal() {
            tracing::warn!(supervisor = %self.name, child = %spec.id, exit = %exit, "Child exited.");
        } else {
            tracing::info!(supervisor = %self.name, child = %spec.id, exit = %exit, "Child exited.");
        }
        self.emit(SupervisionEvent::ChildExited {
            supervisor: self.name.clone(),
            child: spec.id.clone(),
            exit: exit.clone(),
        });
        if !spec.restart.should_restart(&exit) {
            if spec.restart == Restart::Temporary {
                self.children.remove(idx);
            }
            return Ok(());
        }
        let (attempt, delay) = match self.next_restart() {
            Ok(next) => next,
            Err(reason) => return Err(self.meltdown(reason).await),
        };
        // Stop the siblings the strategy takes down with it, in reverse order.
        let mut restart = vec![(idx, exit)];
        for sibling in self.strategy.siblings_to_stop(idx, self.children.len()) {
            if self.children[sibling].cell.is_some() {
                self.stop_child(sibling).await;
                restart.push((sibling, ExitKind::Shutdown));
            }
        }
        restart.sort_by_key(|(idx, _)| *idx);
        for (idx, reason) in restart {
            if self.children[idx].spec.restart == Restart::Temporary {
                continue;
            }
            self.children[idx].pending = true;
            self.emit(SupervisionEvent::RestartScheduled {
                supervisor: self.name.clone(),
                child: self.children[idx].spec.id.clone(),
                attempt,
                delay,
                reason,
            });
        }
        self.children
            .retain(|child| child.spec.restart != Restart::Temporary || child.cell.is_some());
        self.schedule(myself, attempt, delay).await
    }

    fn position_of(&self, actor_id: ActorId) -> Option<usize> {
        self.children.iter().position(|child| {
            child
                .cell
                .as_ref()
                .is_some_and(|cell| cell.get_id() == actor_id)
        })
    }

    /// Restarts the pending children now, or after `delay` via a timer message.
    async fn schedule(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        attempt: u32,
        delay: Duration,
    ) -> Outcome {
        self.generation += 1;
        self.pending_attempt = attempt;
        if delay.is_zero() {
            return self.run_restarts(myself).await;
        }
        let generation = self.generation;
        tracing::info!(supervisor = %self.name, attempt, delay_ms = delay.as_millis(), "Restart scheduled.");
        myself.send_after(delay, move || SupervisorMsg::RestartPending(generation));
        Ok(())
    }

    /// A delayed restart is due; stale generations are ignored.
    pub(super) async fn on_restart_timer(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        generation: u64,
    ) -> Outcome {
        if generation != self.generation {
            return Ok(());
        }
        self.run_restarts(myself).await
    }

    /// Starts the pending children in start order. A start failure counts as a
    /// restart; the remaining pending children wait for the next attempt.
    async fn run_restarts(&mut self, myself: &ActorRef<SupervisorMsg>) -> Outcome {
        let cell = myself.get_cell();
        loop {
            let mut failed = None;
            for idx in 0..self.children.len() {
                if !self.children[idx].pending {
                    continue;
                }
                match self.start_child(&cell, idx).await {
                    Ok(()) => {
                        let child = &mut self.children[idx];
                        child.pending = false;
                        child.restarts += 1;
                        tracing::info!(supervisor = %self.name, child = %child.spec.id, attempt = self.pending_attempt, "Child restarted.");
                        let event = SupervisionEvent::ChildRestarted {
                            supervisor: self.name.clone(),
                            child: child.spec.id.clone(),
                            attempt: self.pending_attempt,
                        };
                        self.emit(event);
                    }
                    Err(error) => {
                        failed = Some((idx, error));
                        break;
                    }
                }
            }
            let Some((idx, error)) = failed else {
                return Ok(());
            };
            let (attempt, delay) = match self.next_restart() {
                Ok(next) => next,
                Err(reason) => return Err(self.meltdown(reason).await),
            };
            self.emit(SupervisionEvent::RestartScheduled {
                supervisor: self.name.clone(),
                child: self.children[idx].spec.id.clone(),
                attempt,
                delay,
                reason: ExitKind::Error(error),
            });
            self.generation += 1;
            self.pending_attempt = attempt;
            if !delay.is_zero() {
                let generation = self.generation;
                myself.send_after(delay, move || SupervisorMsg::RestartPending(generation));
                return Ok(());
            }
        }
    }
}
