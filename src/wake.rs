//! The wake consumer: takes every `probe.wake_requested`, `probe.flapping`,
//! `probe.resolved` and `issue.acknowledged` row from the durable audit log, has it investigated, and
//! brings it to the operator through the notifiers, exactly once where the
//! notifier honours an idempotency key. It is also the one deliverer of the
//! `notice.requested` rows of the incident commander and the escalation
//! coordinators, with the same ledger, retries and records.
//!
//! # Layout
//! - `ledger.rs`: what was already done for rows past the cursor (completed
//!   investigations, delivered notices), rebuilt from the log after a restart.
//! - `flight.rs`: the in-flight window: per-issue ordering, the concurrency
//!   limit, and the contiguous watermark the durable cursor follows.
//! - `sessions.rs`: the recent rows of each issue story, for the investigator.
//! - `event.rs`: one event's work: investigation, notices, audit rows.
//! - `consumer.rs`: the `WakeConsumer` actor that ties them together.
//!
//! # Guarantees
//! The cursor only passes a row once its investigation is recorded and every
//! notifier took its notice, so a crash at any point replays the row. The
//! replay skips what the ledger shows as done: a completed investigation is
//! not run again and a notifier that recorded `notification.sent` is not
//! called again. The one window left is a crash between a notifier's HTTP
//! answer and the `notification.sent` row: that notice is sent again with the
//! same `Idempotency-Key` (webhook) or `dedup_key` (PagerDuty), which the
//! receiver uses to drop it; Slack and the log notifier have no such key.

mod consumer;
mod event;
mod flight;
mod ledger;
mod sessions;

pub use consumer::{WakeConsumer, WakeConsumerArgs, WakeMsg, WakeSnapshot, WakeStatus};
pub use event::EventResult;
pub use flight::Flight;
pub use ledger::Ledger;
pub use ledger::{COMPLETED_SEAM, FAILED_SEAM, SENT_SEAM};
pub use sessions::{FixesRan, Sessions};

/// Seams the consumer acts on; every other row only moves the cursor.
pub const WAKE_SEAMS: [&str; 4] = [
    "probe.wake_requested",
    "probe.flapping",
    "probe.resolved",
    ACK_SEAM,
];

/// A notice the incident commander or a coordinator asked for; delivered
/// as it is, without an investigation.
pub const NOTICE_SEAM: &str = "notice.requested";

/// An operator's acknowledgement of an issue (`POST /api/issues/{id}/ack`),
/// passed on to the notifiers (PagerDuty `acknowledge`).
pub const ACK_SEAM: &str = "issue.acknowledged";

/// Name of the consumer's durable cursor under `<state_dir>/cursors/`.
pub const CURSOR_NAME: &str = "wake-consumer";

/// Replays the last day's investigation costs into the investigator's budget,
/// so a restart does not reset `max_per_hour` or `daily_budget_usd`. One pass
/// over the completed-investigation rows at boot; an unreadable log leaves
/// the budget empty (and says so) rather than blocking the start.
pub fn seed_budget(audit_dir: &std::path::Path, investigator: &crate::investigate::Investigator) {
    if !audit_dir.exists() {
        return;
    }
    let reader = match crate::audit::AuditReader::open(audit_dir) {
        Ok(reader) => reader,
        Err(error) => {
            tracing::warn!(error = %error, "Cannot replay investigation spend; the budget starts empty.");
            return;
        }
    };
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(25);
    for row in reader.rows_from(1, Some(ledger::COMPLETED_SEAM)).flatten() {
        let Ok(done) = crate::events::parse::<crate::events::InvestigationCompleted>(&row) else {
            continue;
        };
        // The built-in summary costs nothing and does not count.
        if done.engine == "none" {
            continue;
        }
        let Ok(at) = row.ts.parse::<jiff::Timestamp>() else {
            continue;
        };
        if at >= since {
            investigator.seed_spend(at, done.cost_usd);
        }
    }
}
