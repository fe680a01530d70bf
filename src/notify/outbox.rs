//! The one path a notice takes to people. Whoever decides that a person
//! should hear something writes it to the log: the debouncer's issue rows,
//! and `notice.requested` rows from the incident commander and the
//! escalation coordinators ([`Outbox`]). The wake consumer delivers them all
//! from its cursor through [`Notifiers::deliver`]: which notifiers get it
//! (routing by `min_severity` and matchers, or one named notifier),
//! concurrent sends, a `notification.sent` / `failed` / `folded` row per
//! delivery and the `warden_notifications_total` count. So a notice is
//! routed, retried, recorded and counted the same way whoever asked for it.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{Delivery, DeliveryOutcome, Notice, Notifier, Notifiers};
use crate::audit::{AuditError, AuditLog, AuditReader, NewRow};
use crate::events::{self, Delivered, Event};
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
        let chosen: Vec<&Notifier> = self
            .for_notice(notice)
            .into_iter()
            .filter(|n| {
                !skip.contains(n.name()) && !matches!(route, Route::Only(only) if only != n.name())
            })
            .collect();
        let mut deliveries = Vec::with_capacity(chosen.len());
        if let [notifier] = chosen.as_slice() {
            // The usual case: one receiver, nothing to run side by side, so
            // no task and no copy of the notice.
            let span = tracing::info_span!("notify.send", actor, notifier = %notifier.name());
            // A panicking notifier loses its delivery, as in a task below,
            // not the event that called it.
            match AssertUnwindSafe(notifier.send(notice).instrument(span))
                .catch_unwind()
                .await
            {
                Ok(delivery) => deliveries.push(delivery),
                Err(_) => {
                    tracing::error!(notifier = %notifier.name(), "A notifier panicked; its notice stays undelivered.")
                }
            }
        } else {
            let mut tasks = JoinSet::new();
            for notifier in chosen {
                let name = notifier.name().to_owned();
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
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(delivery) => deliveries.push(delivery),
                    Err(error) => {
                        tracing::error!(error = %error, "A notifier task panicked; its notice stays undelivered.")
                    }
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
        conversation: Some(notice.conversation().to_owned()),
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

/// How the incident commander and the coordinators ask for a notice: a
/// durable `notice.requested` row, which the wake consumer delivers from
/// its cursor (see [`crate::events::NoticeRequested`]). The requester does
/// not wait for a receiver; one that needs the outcome (a tier that pages a
/// person) reads it back from the log with [`Outbox::outcome`].
#[derive(Clone)]
pub struct Outbox {
    notifiers: Notifiers,
    audit: AuditLog,
    audit_dir: PathBuf,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("notifiers", &self.notifiers)
            .field("audit_dir", &self.audit_dir)
            .finish_non_exhaustive()
    }
}

/// How often [`Outbox::outcome`] reads the log when no new-row signal came.
const OUTCOME_POLL: Duration = Duration::from_millis(500);

impl Outbox {
    /// An outbox writing to `audit`, whose files are in `audit_dir`.
    pub fn new(notifiers: Notifiers, audit: AuditLog, audit_dir: PathBuf) -> Self {
        Self {
            notifiers,
            audit,
            audit_dir,
        }
    }

    /// How long a requester waits for `notifier`'s outcome: its own
    /// [`super::Notifier::patience`] plus time for the wake consumer to
    /// reach the row (a restart, a queue of other notices).
    pub fn patience(&self, notifier: &str) -> Duration {
        self.notifiers
            .get(notifier)
            .map_or(Duration::ZERO, super::Notifier::patience)
            + Duration::from_secs(30)
    }

    /// Whether `route` reaches a notifier that takes `notice` (its
    /// `min_severity` and matchers): a request nobody takes is not written.
    pub fn reaches(&self, notice: &Notice, route: Route<'_>) -> bool {
        self.notifiers
            .for_notice(notice)
            .iter()
            .any(|n| !matches!(route, Route::Only(only) if only != n.name()))
    }

    /// Writes the request for `notice` along `route`, durably; returns its
    /// seq, or `None` when no notifier takes the notice (nothing is written).
    pub async fn request(
        &self,
        notice: &Notice,
        route: Route<'_>,
    ) -> Result<Option<u64>, AuditError> {
        if !self.reaches(notice, route) {
            return Ok(None);
        }
        let only = match route {
            Route::Subscribed => None,
            Route::Only(name) => Some(name.to_owned()),
        };
        let event = events::NoticeRequested {
            notice: notice.clone(),
            only,
        };
        let mut row = events::row(&event).component(notice.component.clone());
        if let Some(session) = &notice.caller_session_id {
            row = row.session(session.clone());
        }
        self.audit.append(row).await.map(Some)
    }

    /// How `notifier` handled the notice requested at `seq`: the first
    /// delivery row for it (`Failed` after the notifier's own retries; the
    /// wake consumer keeps offering it after that), or `None` if none is in
    /// the log `within` this long.
    pub async fn outcome(
        &self,
        seq: u64,
        notifier: &str,
        within: Duration,
    ) -> Option<DeliveryOutcome> {
        let deadline = tokio::time::Instant::now() + within;
        let reader = match AuditReader::open(&self.audit_dir) {
            Ok(reader) => reader,
            Err(error) => {
                tracing::error!(error = %error, "Cannot read the audit log for a delivery outcome.");
                return None;
            }
        };
        let mut durable = self.audit.subscribe();
        let (mut next, mut position) = (seq + 1, None);
        loop {
            let mut rows = reader.rows_resume(next, None, position.take());
            while let Some(item) = rows.next_head(
                |seam| Delivered::SEAMS.contains(&seam),
                |row| Delivered::from_row(row).ok(),
            ) {
                let Ok((at, delivered)) = item else {
                    continue;
                };
                next = at + 1;
                if let Some(delivered) = delivered
                    && delivered.wake_seq == Some(seq)
                    && delivered.notifier == notifier
                {
                    return Some(delivered.outcome);
                }
            }
            position = rows.position();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            let step = left.min(OUTCOME_POLL);
            // A closed log (shutting down) sends no more signals: poll.
            if let Ok(Err(_)) = tokio::time::timeout(step, durable.changed()).await {
                tokio::time::sleep(step).await;
            }
        }
    }
}
