//! The one path a notice takes to people: which notifiers get it (routing
//! by `min_severity`, or one named notifier), concurrent sends, a
//! `notification.sent` / `notification.failed` row per delivery and the
//! `warden_notifications_total` count. The wake consumer, the incident
//! commander and the escalation coordinators all deliver through here, so a
//! notice is routed, recorded and counted the same way whoever sends it.

use std::collections::HashSet;

use tokio::task::JoinSet;
use tracing::Instrument;

use super::{Delivery, Notice, Notifiers};
use crate::audit::{AuditLog, NewRow};
use crate::events::{self, Delivered};
use crate::metrics::{Metrics, NotificationLabels};

/// Seam of the row recording one notice taken by one notifier.
pub const SENT_SEAM: &str = "notification.sent";
/// Seam of the row recording one notice a notifier refused after its retries.
pub const FAILED_SEAM: &str = "notification.failed";
/// Seam of the row recording one notice a notifier did not send because its
/// conversation was already in that state (see `Conversations`).
pub const FOLDED_SEAM: &str = "notification.folded";

/// Which notifiers a notice goes to.
#[derive(Debug, Clone, Copy)]
pub enum Route<'a> {
    /// Every notifier whose `min_severity` the notice reaches.
    Subscribed,
    /// Only the named notifier (an escalation tier that pages through it),
    /// still subject to its `min_severity`.
    Only(&'a str),
}

impl Notifiers {
    /// Sends `notice` to the notifiers `route` picks, except those in `skip`
    /// (they took it already), concurrently so a slow receiver does not hold
    /// the others back, and counts each outcome. Sorted by notifier name.
    pub async fn deliver(
        &self,
        notice: &Notice,
        route: Route<'_>,
        skip: &HashSet<String>,
        metrics: &Metrics,
        actor: &'static str,
    ) -> Vec<Delivery> {
        let mut tasks = JoinSet::new();
        for notifier in self.for_notice(notice) {
            let name = notifier.name().to_owned();
            if skip.contains(&name) || matches!(route, Route::Only(only) if only != name) {
                continue;
            }
            let (notifiers, notice) = (self.clone(), notice.clone());
            let span = tracing::info_span!("notify.send", actor, notifier = %name);
            tasks.spawn(
                async move {
                    match notifiers.get(&name) {
                        Some(notifier) => notifier.send(&notice).await,
                        None => Delivery::refused(name, "notifier no longer configured"),
                    }
                }
                .instrument(span),
            );
        }
        let mut deliveries = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(delivery) => deliveries.push(delivery),
                Err(error) => {
                    tracing::error!(error = %error, "A notifier task panicked; its notice stays undelivered.")
                }
            }
        }
        deliveries.sort_by(|a, b| a.notifier.cmp(&b.notifier));
        for delivery in &deliveries {
            metrics
                .notifications
                .get_or_create(&NotificationLabels {
                    notifier: delivery.notifier.clone(),
                    outcome: delivery.outcome.as_str().to_owned(),
                })
                .inc();
        }
        deliveries
    }
}

/// What is recorded of `delivery` of `notice` (the wake consumer adds its
/// `wake_seq` and `redelivered`, which its ledger reads back).
pub fn delivered(notice: &Notice, delivery: &Delivery) -> Delivered {
    Delivered {
        source_seq: notice.seq,
        notifier: delivery.notifier.clone(),
        idempotency_key: notice.idempotency_key.clone(),
        category: notice.category.clone(),
        kind: notice.kind.clone(),
        severity: notice.severity,
        status: notice.status,
        attempts: delivery.attempts,
        last_status: delivery.last_status,
        error: delivery.error.clone(),
        duration_ms: delivery.duration_ms,
        wake_seq: None,
        redelivered: None,
        outcome: delivery.outcome,
    }
}

/// The row recording `event`, under the notice's story and component.
pub fn delivery_row(notice: &Notice, event: &Delivered) -> NewRow {
    let row = events::row(event).component(notice.component.clone());
    match &notice.caller_session_id {
        Some(session) => row.session(session.clone()),
        None => row,
    }
}

/// What the incident commander and the coordinators deliver through: the
/// notifiers, the log their delivery rows go to and the metrics.
#[derive(Clone)]
pub struct Outbox {
    notifiers: Notifiers,
    audit: AuditLog,
    metrics: Metrics,
    actor: &'static str,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("notifiers", &self.notifiers)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// An outbox for `actor` (named in the send spans).
    pub fn new(
        notifiers: Notifiers,
        audit: AuditLog,
        metrics: Metrics,
        actor: &'static str,
    ) -> Self {
        Self {
            notifiers,
            audit,
            metrics,
            actor,
        }
    }

    /// Delivers `notice` along `route` and records every delivery. A row
    /// that cannot be written is logged: the notice itself went out.
    pub async fn send(&self, notice: &Notice, route: Route<'_>) -> Vec<Delivery> {
        let deliveries = self
            .notifiers
            .deliver(notice, route, &HashSet::new(), &self.metrics, self.actor)
            .await;
        let rows: Vec<_> = deliveries
            .iter()
            .map(|delivery| {
                self.audit
                    .submit(delivery_row(notice, &delivered(notice, delivery)))
            })
            .collect();
        for durable in rows {
            if let Err(error) = durable.await {
                tracing::error!(error = %error, "A delivery row could not be recorded.");
            }
        }
        deliveries
    }
}
