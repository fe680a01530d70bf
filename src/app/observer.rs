//! Turns every supervisory decision into an audit row (`supervision.*`) and a
//! log line, so restarts and meltdowns are never silent.

use warden_supervisors::{Observer, SupervisionEvent};

use crate::audit::{AuditLog, NewRow};
use crate::events;
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
    use crate::events::service as ev;
    let millis = |d: &std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    match event.clone() {
        SupervisionEvent::ChildStarted {
            supervisor,
            child,
            actor_id,
        } => events::row(&ev::ChildStarted {
            supervisor,
            child,
            actor_id,
        }),
        SupervisionEvent::ChildExited {
            supervisor,
            child,
            exit,
        } => events::row(&ev::ChildExited {
            supervisor,
            child,
            exit: exit.to_string(),
            abnormal: exit.is_abnormal(),
        }),
        SupervisionEvent::RestartScheduled {
            supervisor,
            child,
            attempt,
            delay,
            reason,
        } => events::row(&ev::RestartScheduled {
            supervisor,
            child,
            attempt,
            delay_ms: millis(&delay),
            reason: reason.to_string(),
        }),
        SupervisionEvent::ChildRestarted {
            supervisor,
            child,
            attempt,
        } => events::row(&ev::ChildRestarted {
            supervisor,
            child,
            attempt,
        }),
        SupervisionEvent::StartFailed {
            supervisor,
            child,
            error,
        } => events::row(&ev::StartFailed {
            supervisor,
            child,
            error,
        }),
        SupervisionEvent::ChildStopped {
            supervisor,
            child,
            killed,
        } => events::row(&ev::ChildStopped {
            supervisor,
            child,
            killed,
        }),
        SupervisionEvent::Meltdown {
            supervisor,
            restarts,
            within,
        } => events::row(&ev::SupervisorMeltdown {
            supervisor,
            restarts,
            within_ms: millis(&within),
        }),
    }
}

impl Observer for AuditObserver {
    fn observe(&self, event: &SupervisionEvent) {
        // Each decision is also a short root span, so a chaos run (restarts,
        // meltdowns) shows up in Jaeger next to the issues it caused.
        let row = event_row(event);
        let span = tracing::info_span!(parent: None, "supervision", actor = "supervisor", event = %row.seam, details = %row.details_json());
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
