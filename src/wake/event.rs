//! One wake event's work: build what the investigator needs, investigate,
//! turn the result into a notice, hand it to every notifier that wants it,
//! and record each step in the audit log under the issue's story.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};
use tracing::Instrument;

use crate::audit::{AuditError, AuditLog, NewRow, RowHead, RowView};
use crate::debounce::ObservationHistory;
use crate::events::{self, Decoded, InvestigationCompleted, NoticeRequested};
use crate::investigate::{Investigation, InvestigationRequest, Investigator};
use crate::messages::Health;
use crate::notify::{Delivery, DeliveryOutcome, Notice, NoticeStatus, Notifiers, Route};
use crate::settings::Severity;

/// What every event task shares.
pub(super) struct EventContext {
    pub(super) audit: AuditLog,
    pub(super) investigator: Investigator,
    pub(super) notifiers: Notifiers,
    pub(super) history: ObservationHistory,
    pub(super) runbook: Option<String>,
    pub(super) metrics: crate::metrics::Metrics,
    /// Stories in which a fix ran, for `autofix_attempted`.
    pub(super) fixes: super::sessions::FixesRan,
}

/// What a row asks of the consumer, decoded at admission.
pub(super) enum Work {
    /// An issue row: investigate it (unless that is recorded), then notify.
    Issue {
        /// What the row says.
        facts: Box<Facts>,
        /// Earlier rows of the same story.
        related: Vec<Value>,
    },
    /// A `notice.requested` row: deliver the notice as it is.
    Notice(Box<NoticeRequested>),
}

impl Work {
    /// The ordering key: rows of one conversation are handled in log order
    /// (an incident's notices after the issue that opened it).
    pub(super) fn key(&self, row: &RowHead) -> String {
        match self {
            Work::Issue { facts, .. } => row
                .caller_session_id
                .clone()
                .unwrap_or_else(|| format!("probe:{}", facts.probe)),
            Work::Notice(requested) => requested.notice.conversation().to_owned(),
        }
    }
}

/// One event to handle.
pub(super) struct EventInput {
    /// What to do.
    pub(super) work: Work,
    /// The notice, when the investigation was recorded before a restart.
    pub(super) prior: Option<Notice>,
    /// Notifiers that already took the notice.
    pub(super) sent: HashSet<String>,
}

/// How an event ended.
#[derive(Debug)]
pub struct EventResult {
    /// The notice, when one was due.
    pub notice: Option<Notice>,
    /// Notifiers that refused it after their retries (to offer again later).
    pub undelivered: Vec<String>,
}

/// What a wake-consumer row says, whatever its seam: the typed event
/// flattened to the fields the investigation and the notice use.
pub(super) struct Facts {
    pub(super) probe: String,
    component: String,
    severity: Severity,
    category: String,
    /// `fired`, `reminder`, ..., `resolved` or `acknowledged`.
    kind: String,
    title: String,
    detail: String,
    observation: Option<crate::messages::Observation>,
    consecutive_failures: Option<u32>,
    stage: Option<String>,
    reminder: Option<u32>,
    open_for_ms: Option<u64>,
    envelope_status: String,
    envelope_fix: Option<String>,
    /// Wake rows: the component's other open issues when it was written.
    open_issues: Vec<events::OpenIssue>,
    pub(super) traceparent: Option<String>,
    /// Resolved and acknowledged rows: whether anyone was woken.
    woken: bool,
    /// Acknowledged rows: already acknowledged before.
    again: bool,
    author: Option<String>,
    note: Option<String>,
}

impl Facts {
    /// The facts of `row`; `None` for a row that is not one the consumer
    /// acts on or does not have its seam's shape (it is then skipped, with
    /// a warning, rather than guessed at: a missing severity is not critical).
    pub(super) fn of(row: &(impl RowView + ?Sized)) -> Option<Facts> {
        let blank = |probe: String, component: String, severity, category: String| Facts {
            probe,
            component,
            severity,
            category,
            kind: String::new(),
            title: String::new(),
            detail: String::new(),
            observation: None,
            consecutive_failures: None,
            stage: None,
            reminder: None,
            open_for_ms: None,
            envelope_status: "absent".to_owned(),
            envelope_fix: None,
            open_issues: Vec::new(),
            traceparent: None,
            woken: true,
            again: false,
            author: None,
            note: None,
        };
        Some(match events::decode(row) {
            Decoded::Wake(wake) => Facts {
                kind: wake.kind.as_str().to_owned(),
                title: wake.title,
                detail: wake.detail,
                observation: wake.observation,
                consecutive_failures: Some(wake.consecutive_failures),
                stage: wake.stage,
                reminder: Some(wake.reminder),
                envelope_status: wake.envelope_status,
                envelope_fix: wake.envelope_fix,
                open_issues: wake.open_issues,
                traceparent: wake.traceparent,
                ..blank(wake.probe, wake.component, wake.severity, wake.category)
            },
            Decoded::Resolved(resolved) => Facts {
                kind: "resolved".to_owned(),
                title: resolved.title,
                observation: resolved.observation,
                open_for_ms: Some(resolved.open_for_ms),
                traceparent: resolved.traceparent,
                woken: resolved.woken,
                ..blank(
                    resolved.probe,
                    resolved.component,
                    resolved.severity,
                    resolved.category,
                )
            },
            Decoded::Acknowledged(ack) => Facts {
                kind: "acknowledged".to_owned(),
                woken: ack.woken,
                again: ack.again,
                author: ack.author,
                note: ack.note,
                ..blank(ack.probe, ack.component, ack.severity, ack.category)
            },
            _ => return None,
        })
    }
}

/// The facts of a row that needs a notice; `None` when it needs none (or
/// is not a row the consumer reads). Decoded once, at admission, and carried
/// with the row to its handler.
pub(super) fn wanted(
    row: &(impl RowView + ?Sized),
    sessions: &super::sessions::Sessions,
) -> Option<Facts> {
    let facts = Facts::of(row)?;
    let wanted = match facts.kind.as_str() {
        // Only a first acknowledgement of an issue someone was woken for is news.
        "acknowledged" => facts.woken && !facts.again,
        // Nobody was told about an issue that was never woken; its recovery is
        // in the log but is not news to anyone.
        "resolved" => facts.woken,
        // An acknowledged issue gets no reminders (the debouncer writes
        // none after an acknowledgement; one queued before it is caught here).
        "reminder" => !row
            .caller_session_id()
            .is_some_and(|session| sessions.acked(session)),
        _ => true,
    };
    wanted.then_some(facts)
}

/// Handles one event inside a span that continues the issue's trace from
/// the `traceparent` stored in its row (also when the row is replayed after a
/// restart). Errors are audit append failures only: the caller leaves the row
/// unfinished so it is replayed.
pub(super) async fn handle(
    ctx: Arc<EventContext>,
    row: &RowHead,
    input: EventInput,
) -> Result<EventResult, AuditError> {
    let span = tracing::info_span!(parent: None, "wake.event", actor = "wake", seq = row.seq, seam = %row.seam);
    let traceparent = match &input.work {
        Work::Issue { facts, .. } => facts.traceparent.as_deref(),
        Work::Notice(_) => None,
    };
    crate::telemetry::trace::continue_from(&span, traceparent);
    handle_in_span(ctx, row, input).instrument(span).await
}

async fn handle_in_span(
    ctx: Arc<EventContext>,
    row: &RowHead,
    input: EventInput,
) -> Result<EventResult, AuditError> {
    let EventInput { work, prior, sent } = input;
    let (facts, related) = match work {
        Work::Issue { facts, related } => (facts, related),
        Work::Notice(requested) => {
            let NoticeRequested { notice, only } = *requested;
            let route = match &only {
                Some(name) => Route::Only(name),
                None => Route::Subscribed,
            };
            let deliveries = deliver(&ctx, &notice, route, &sent).await;
            return record_deliveries(&ctx, row, notice, &deliveries).await;
        }
    };
    let (notice, investigation) = match prior {
        Some(notice) => (notice, None),
        // An acknowledgement is news to pass on, not a fault to investigate.
        None if facts.kind == "acknowledged" => (ack_notice(&ctx, row, &facts), None),
        None => {
            let request = request(&ctx, row, &facts, related);
            let investigation = ctx
                .investigator
                .investigate(&request)
                .instrument(tracing::info_span!("investigate", actor = "wake"))
                .await;
            let outcome = if investigation.fallback.is_some() {
                "fallback"
            } else {
                "ok"
            };
            ctx.metrics
                .investigations
                .get_or_create(&crate::metrics::InvestigationLabels {
                    engine: investigation.engine.clone(),
                    outcome: outcome.to_owned(),
                })
                .inc();
            if investigation.cost_usd.is_finite() && investigation.cost_usd > 0.0 {
                ctx.metrics
                    .investigation_cost
                    .inc_by(investigation.cost_usd);
            }
            (
                notice_for(&ctx, row, &facts, &investigation),
                Some(investigation),
            )
        }
    };
    let deliveries = deliver(&ctx, &notice, Route::Subscribed, &sent).await;
    // All of the event's rows are queued at once, delivery rows before the
    // completed row as before, so they share one write and fsync; the event
    // is finished only once every one of them is durable.
    let mut rows = Vec::with_capacity(deliveries.len() + 1);
    for delivery in &deliveries {
        rows.push(
            ctx.audit
                .submit(delivery_row(row, &notice, delivery, false)),
        );
    }
    let mut notice = notice;
    if let Some(investigation) = investigation {
        let (completed, back) =
            completed_row(&ctx, row, &facts, notice, investigation, &deliveries);
        notice = back;
        rows.push(ctx.audit.submit(completed));
    }
    for durable in rows {
        durable.await?;
    }
    Ok(result(notice, &deliveries))
}

/// The delivery rows of a requested notice, durable before the row counts
/// as handled.
async fn record_deliveries(
    ctx: &EventContext,
    row: &RowHead,
    notice: Notice,
    deliveries: &[Delivery],
) -> Result<EventResult, AuditError> {
    let rows: Vec<_> = deliveries
        .iter()
        .map(|delivery| {
            ctx.audit
                .submit(delivery_row(row, &notice, delivery, false))
        })
        .collect();
    for durable in rows {
        durable.await?;
    }
    Ok(result(notice, deliveries))
}

fn result(notice: Notice, deliveries: &[Delivery]) -> EventResult {
    let undelivered: Vec<String> = deliveries
        .iter()
        .filter(|d| d.outcome == DeliveryOutcome::Failed)
        .map(|d| d.notifier.clone())
        .collect();
    EventResult {
        notice: Some(notice),
        undelivered,
    }
}

/// Offers `notice` again to the notifiers in `names`; returns those that still refuse it.
pub(super) async fn redeliver(
    ctx: Arc<EventContext>,
    row: RowHead,
    notice: Notice,
    names: Vec<String>,
) -> Result<Vec<String>, AuditError> {
    let already: HashSet<String> = ctx
        .notifiers
        .names()
        .into_iter()
        .filter(|name| !names.contains(name))
        .collect();
    let deliveries = deliver(&ctx, &notice, Route::Subscribed, &already).await;
    let rows: Vec<_> = deliveries
        .iter()
        .map(|delivery| {
            ctx.audit
                .submit(delivery_row(&row, &notice, delivery, true))
        })
        .collect();
    for durable in rows {
        durable.await?;
    }
    Ok(deliveries
        .into_iter()
        .filter(|d| d.outcome == DeliveryOutcome::Failed)
        .map(|d| d.notifier)
        .collect())
}

/// Sends `notice` to every notifier on `route` that wants it and has not
/// taken it yet.
async fn deliver(
    ctx: &EventContext,
    notice: &Notice,
    route: Route<'_>,
    skip: &HashSet<String>,
) -> Vec<Delivery> {
    ctx.notifiers
        .deliver(notice, route, skip, &ctx.metrics, "wake")
        .await
}

/// The investigator's view of the event.
fn request(
    ctx: &EventContext,
    row: &RowHead,
    facts: &Facts,
    related: Vec<Value>,
) -> InvestigationRequest {
    let probe = facts.probe.clone();
    let component = facts.component.clone();
    let history: Vec<crate::messages::Observation> = ctx
        .history
        .get(&probe)
        .map(|h| h.iter().cloned().collect())
        .unwrap_or_default();
    let last_good_at = history
        .iter()
        .rev()
        .find(|o| o.status == Health::Healthy)
        .map(|o| o.at.clone());
    // The first failure of the current run of failures.
    let first_failed_at = history
        .iter()
        .rev()
        .take_while(|o| o.status != Health::Healthy)
        .last()
        .map(|o| o.at.clone());
    let open_issues: Vec<Value> = facts
        .open_issues
        .iter()
        .filter_map(|issue| serde_json::to_value(issue).ok())
        .collect();
    InvestigationRequest {
        seq: row.seq,
        seam: row.seam.clone(),
        kind: facts.kind.clone(),
        caller_session_id: row.caller_session_id.clone(),
        probe,
        component,
        category: facts.category.clone(),
        severity: facts.severity,
        title: facts.title.clone(),
        detail: facts.detail.clone(),
        first_failed_at,
        consecutive_failures: facts.consecutive_failures.map(u64::from),
        observation: facts
            .observation
            .as_ref()
            .and_then(|o| serde_json::to_value(o).ok()),
        recent_observations: history
            .iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect(),
        last_good_at,
        open_issues,
        related_rows: related,
        envelope_status: facts.envelope_status.clone(),
        envelope_action: facts.envelope_fix.clone(),
        runbook: ctx.runbook.clone(),
    }
}

fn notice_for(
    ctx: &EventContext,
    row: &RowHead,
    facts: &Facts,
    investigation: &Investigation,
) -> Notice {
    let kind = facts.kind.clone();
    let status = if kind == "resolved" {
        NoticeStatus::Resolved
    } else {
        NoticeStatus::Firing
    };
    Notice {
        idempotency_key: format!("warden-{}", row.seq),
        seq: row.seq,
        caller_session_id: row.caller_session_id.clone(),
        group: None,
        probe: facts.probe.clone(),
        component: facts.component.clone(),
        severity: facts.severity,
        category: facts.category.clone(),
        kind,
        status,
        title: facts.title.clone(),
        summary: investigation.summary.clone(),
        actions: investigation.actions.clone(),
        runbook: ctx.runbook.clone(),
        at: row.ts.clone(),
        details: json!({
            "observation": facts.observation,
            "consecutive_failures": facts.consecutive_failures,
            "stage": facts.stage,
            "reminder": facts.reminder,
            "open_for_ms": facts.open_for_ms,
            "investigation": { "engine": investigation.engine, "model": investigation.model, "fallback": investigation.fallback },
        }),
    }
}

/// The notice that an operator acknowledged an issue: PagerDuty turns it
/// into `acknowledge` on the issue's conversation; other notifiers show it.
fn ack_notice(ctx: &EventContext, row: &RowHead, facts: &Facts) -> Notice {
    let probe = facts.probe.clone();
    let by = facts
        .author
        .as_deref()
        .map_or_else(String::new, |author| format!(" by {author}"));
    let note = facts
        .note
        .as_deref()
        .map_or_else(String::new, |note| format!(": {note}"));
    Notice {
        idempotency_key: format!("warden-{}", row.seq),
        seq: row.seq,
        caller_session_id: row.caller_session_id.clone(),
        group: None,
        component: facts.component.clone(),
        severity: facts.severity,
        category: facts.category.clone(),
        kind: "acknowledged".to_owned(),
        status: NoticeStatus::Firing,
        title: format!("{probe}: acknowledged{by}"),
        summary: format!(
            "The issue on {probe} was acknowledged{by}{note}; no more reminders are sent for it."
        ),
        actions: Vec::new(),
        runbook: ctx.runbook.clone(),
        at: row.ts.clone(),
        details: json!({ "author": facts.author, "note": facts.note }),
        probe,
    }
}

fn delivery_row(row: &RowHead, notice: &Notice, delivery: &Delivery, redelivered: bool) -> NewRow {
    let mut event = crate::notify::delivered(notice, delivery);
    event.wake_seq = Some(row.seq);
    event.redelivered = Some(redelivered);
    let mut new = crate::notify::delivery_row(notice, &event);
    if let Some(session) = &row.caller_session_id {
        new = new.session(session.clone());
    }
    if let Some(id) = row.trace_id.clone() {
        new = new.trace(id);
    }
    new
}

/// `dm_status`: did the operator get the notice, and from which engine.
fn dm_status(investigation: &Investigation, deliveries: &[Delivery]) -> &'static str {
    let failed = deliveries
        .iter()
        .any(|d| d.outcome == DeliveryOutcome::Failed);
    match (
        investigation.fallback.is_some(),
        deliveries.is_empty(),
        failed,
    ) {
        (_, true, _) => "no_notifier",
        (false, false, false) => "sent",
        (false, false, true) => "failed_send",
        (true, false, false) => "engine_unavailable_fallback",
        (true, false, true) => "engine_unavailable_failed_send",
    }
}

/// The `investigation.completed` row; the notice goes into the row and
/// comes back out, so it is not copied for it.
fn completed_row(
    ctx: &EventContext,
    row: &RowHead,
    facts: &Facts,
    notice: Notice,
    investigation: Investigation,
    deliveries: &[Delivery],
) -> (NewRow, Notice) {
    let dm_status = dm_status(&investigation, deliveries).to_owned();
    let event = InvestigationCompleted {
        wake_seq: row.seq,
        wake_seam: row.seam.clone(),
        probe: notice.probe.clone(),
        component: notice.component.clone(),
        category: notice.category.clone(),
        severity: notice.severity,
        kind: notice.kind.clone(),
        engine: investigation.engine,
        model: investigation.model,
        tokens_in: investigation.tokens_in,
        tokens_out: investigation.tokens_out,
        cost_usd: investigation.cost_usd,
        duration_ms: investigation.duration_ms,
        summary: investigation.summary,
        actions: investigation.actions,
        fallback: investigation.fallback,
        dm_status,
        // Whether a fix ran in this story by the time the event was
        // handled (a fix usually follows the first wake's investigation,
        // so later events of the story, such as its resolution, say true).
        autofix_attempted: row
            .caller_session_id
            .as_deref()
            .is_some_and(|session| ctx.fixes.contains(session)),
        envelope_status: facts.envelope_status.clone(),
        envelope_fix: facts.envelope_fix.clone(),
        deliveries: deliveries.to_vec(),
        notice,
    };
    let mut new = events::row(&event).component(event.notice.component.clone());
    if let Some(session) = &row.caller_session_id {
        new = new.session(session.clone());
    }
    if let Some(id) = row.trace_id.clone() {
        new = new.trace(id);
    }
    (new, event.notice)
}
