//! Turns every supervisory decision into an audit row (`supervision.*`) and a
//! log line, so restarts and meltdowns are never silent.

use serde_json::json;
use warden_supervisors::{Observer, SupervisionEvent};

use crate::audit::{AuditLog, NewRow};
use crate::metrics::{ActorLabel, Metrics};

/// Forwards supervision events to the audit log without blocking the supervisor.
pub struct AuditObserver {
    audit: AuditLog,
    metrics: Option<Metrics>,
}

impl AuditObserver {
    /// An observer writing to `audit`.
    pub fn new(audit: AuditLog) -> Self {
        Self {
            audit,
            metrics: None,
        }
    }

    /// Also counts restarts and meltdowns in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

/// The audit row for one supervision event.
pub fn event_row(event: &SupervisionEvent) -> NewRow {
    let (seam, details) = match event {
        SupervisionEvent::ChildStarted {
            supervisor,
            child,
            actor_id,
        } => (
            "supervision.started",
            json!({ "supervisor": supervisor, "child": child, "actor_id": actor_id }),
        ),
        SupervisionEvent::ChildExited {
            supervisor,
            child,
            exit,
        } => (
            "supervision.exited",
            json!({ "supervisor": supervisor, "child": child, "exit": exit.to_string(), "abnormal": exit.is_abnormal() }),
        ),
        SupervisionEvent::RestartScheduled {
            supervisor,
            child,
            attempt,
            delay,
            reason,
        } => (
            "supervision.restart_scheduled",
            json!({ "supervisor": supervisor, "child": child, "attempt": attempt, "delay_ms": delay.as_millis() as u64, "reason": reason.to_string() }),
        ),
        SupervisionEvent::ChildRestarted {
            supervisor,
            child,
            attempt,
        } => (
            "supervision.restarted",
            json!({ "supervisor": supervisor, "child": child, "attempt": attempt }),
        ),
        SupervisionEvent::StartFailed {
            supervisor,
            child,
            error,
        } => (
            "supervision.start_failed",
            json!({ "supervisor": supervisor, "child": child, "error": error }),
        ),
        SupervisionEvent::ChildStopped {
            supervisor,
            child,
            killed,
        } => (
            "supervision.stopped",
            json!({ "supervisor": supervisor, "child": child, "killed": killed }),
        ),
        SupervisionEvent::Meltdown {
            supervisor,
            restarts,
            within,
        } => (
            "supervision.meltdown",
            json!({ "supervisor": supervisor, "restarts": restarts, "within_ms": within.as_millis() as u64 }),
        ),
    };
    NewRow::new(seam, details)
}

impl Observer for AuditObserver {
    fn observe(&self, event: &SupervisionEvent) {
        // Each decision is also a short root span, so a chaos run (restarts,
        // meltdowns) shows up in Jaeger next to the issues it caused.
        let row = event_row(event);
        let span = tracing::info_span!(parent: None, "supervision", actor = "supervisor", event = %row.seam, details = %row.details);
        let _entered = span.enter();
        if let Some(metrics) = &self.metrics {
            match event {
                SupervisionEvent::ChildRestarted { child, .. } => {
                    metrics
                        .restarts
                        .get_or_create(&ActorLabel {
                            actor: child.to_string(),
                        })
                        .inc();
                }
                SupervisionEvent::Meltdown { supervisor, .. } => {
                    metrics
                        .meltdowns
                        .get_or_create(&ActorLabel {
                            actor: supervisor.to_string(),
                        })
                        .inc();
                }
                _ => {}
            }
        }
        match event {
            SupervisionEvent::RestartScheduled {
                supervisor,
                child,
                attempt,
                delay,
                reason,
            } => {
                tracing::warn!(%supervisor, %child, attempt, delay = ?delay, reason = %reason, "Restarting a failed actor.");
            }
            SupervisionEvent::StartFailed {
                supervisor,
                child,
                error,
            } => {
                tracing::warn!(%supervisor, %child, error = %error, "An actor failed to start.");
            }
            SupervisionEvent::Meltdown {
                supervisor,
                restarts,
                within,
            } => {
                tracing::error!(%supervisor, restarts, within = ?within, "Supervisor exceeded its restart budget; escalating to its parent.");
            }
            other => tracing::debug!(event = ?other, "Supervision event."),
        }
        self.audit.append_nowait(row);
    }
}
