//! One wake event's work: build what the investigator needs, investigate,
//! turn the result into a notice, hand it to every notifier that wants it,
//! and record each step in the audit log under the issue's story.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};
use tracing::Instrument;

use super::ACK_SEAM;
use super::ledger::COMPLETED_SEAM;
use crate::audit::{AuditError, AuditLog, AuditRow, NewRow};
use crate::debounce::{DebounceConfig, DebounceStore, ObservationHistory};
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
    pub(super) store: DebounceStore,
    pub(super) config: Arc<DebounceConfig>,
    pub(super) runbook: Option<String>,
    pub(super) metrics: crate::metrics::Metrics,
    /// Stories in which a fix ran, for `autofix_attempted`.
    pub(super) fixes: super::sessions::FixesRan,
}

/// One event to handle.
pub(super) struct EventInput {
    pub(super) row: AuditRow,
    /// Earlier rows of the same story.
    pub(super) related: Vec<Value>,
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

/// Whether a row needs a notice at all.
pub(super) fn needs_notice(row: &AuditRow, store: &DebounceStore) -> bool {
    let probe = row.details["probe"].as_str().unwrap_or_default();
    match row.seam.as_str() {
        // Only a first acknowledgement of an issue someone was woken for is news.
        ACK_SEAM => row.details["woken"] == true && row.details["again"] != true,
        // Nobody was told about an issue that was never woken; its recovery is
        // in the log but is not news to anyone.
        "probe.resolved" => row.details["woken"].as_bool().unwrap_or(true),
        "probe.wake_requested" if row.details["kind"] == "reminder" => {
            // An acknowledged issue gets no reminders.
            !store.get(probe).is_some_and(|entry| {
                entry.acked && entry.session.is_some() && entry.session == row.caller_session_id
            })
        }
        _ => true,
    }
}

/// Handles one event inside a span that continues the issue's trace from
/// the `traceparent` stored in its row (also when the row is replayed after a
/// restart). Errors are audit append failures only: the caller leaves the row
/// unfinished so it is replayed.
pub(super) async fn handle(
    ctx: Arc<EventContext>,
    input: EventInput,
) -> Result<EventResult, AuditError> {
    let span = tracing::info_span!(parent: None, "wake.event", actor = "wake", seq = input.row.seq, seam = %input.row.seam);
    crate::telemetry::trace::continue_from(&span, input.row.details["traceparent"].as_str());
    handle_in_span(ctx, input).instrument(span).await
}

async fn handle_in_span(
    ctx: Arc<EventContext>,
    input: EventInput,
) -> Result<EventResult, AuditError> {
    let EventInput {
        row,
        related,
        prior,
        sent,
    } = input;
    let (notice, investigation) = match prior {
        Some(notice) => (notice, None),
        // An acknowledgement is news to pass on, not a fault to investigate.
        None if row.seam == ACK_SEAM => (ack_notice(&ctx, &row), None),
        None => {
            let request = request(&ctx, &row, related);
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
            (notice_for(&ctx, &row, &investigation), Some(investigation))
        }
    };
    let deliveries = deliver(&ctx, &notice, &sent).await;
    // All of the event's rows are queued at once, delivery rows before the
    // completed row as before, so they share one write and fsync; the event
    // is finished only once every one of them is durable.
    let mut rows = Vec::with_capacity(deliveries.len() + 1);
    for delivery in &deliveries {
        rows.push(
            ctx.audit
                .submit(delivery_row(&row, &notice, delivery, false)),
        );
    }
    if let Some(investigation) = investigation {
        rows.push(ctx.audit.submit(completed_row(
            &ctx,
            &row,
            &notice,
            &investigation,
            &deliveries,
        )));
    }
    for durable in rows {
        durable.await?;
    }
    let undelivered: Vec<String> = deliveries
        .iter()
        .filter(|d| d.outcome == DeliveryOutcome::Failed)
        .map(|d| d.notifier.clone())
        .collect();
    Ok(EventResult {
        notice: Some(notice),
        undelivered,
    })
}

/// Offers `notice` again to the notifiers in `names`; returns those that still refuse it.
pub(super) async fn redeliver(
    ctx: Arc<EventContext>,
    row: AuditRow,
    notice: Notice,
    names: Vec<String>,
) -> Result<Vec<String>, AuditError> {
    let already: HashSet<String> = ctx
        .notifiers
        .names()
        .into_iter()
        .filter(|name| !names.contains(name))
        .collect();
    let deliveries = deliver(&ctx, &notice, &already).await;
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

/// Sends `notice` to every notifier that wants it and has not taken it yet.
async fn deliver(
    ctx: &Arc<EventContext>,
    notice: &Notice,
    skip: &HashSet<String>,
) -> Vec<Delivery> {
    ctx.notifiers
        .deliver(notice, Route::Subscribed, skip, &ctx.metrics, "wake")
        .await
}

fn kind_of(row: &AuditRow) -> String {
    match row.seam.as_str() {
        "probe.resolved" => "resolved".into(),
        "probe.flapping" => "flapping".into(),
        _ => row.details["kind"].as_str().unwrap_or("fired").to_owned(),
    }
}

fn text(row: &AuditRow, key: &str) -> String {
    row.details[key].as_str().unwrap_or_default().to_owned()
}

fn severity(row: &AuditRow) -> Severity {
    serde_json::from_value(row.details["severity"].clone()).unwrap_or_default()
}

/// The investigator's view of the event.
fn request(ctx: &EventContext, row: &AuditRow, related: Vec<Value>) -> InvestigationRequest {
    let probe = text(row, "probe");
    let component = text(row, "component");
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
    // Only the component's own probes: a scan of the whole store made each
    // event cost O(probes), and a burst of issues O(probes²).
    let open_issues: Vec<Value> = ctx
        .config
        .probes_of(&component)
        .iter()
        .filter(|other| **other != probe)
        .filter_map(|other| {
            let entry = ctx.store.get(other)?;
            let issue = entry.machine.open_issue()?;
            Some(json!({
                "probe": other,
                "category": issue.category,
                "severity": issue.severity,
                "woken": issue.woken,
                "caller_session_id": entry.session,
            }))
        })
        .collect();
    InvestigationRequest {
        seq: row.seq,
        seam: row.seam.clone(),
        kind: kind_of(row),
        caller_session_id: row.caller_session_id.clone(),
        probe,
        component,
        category: text(row, "category"),
        severity: severity(row),
        title: text(row, "title"),
        detail: text(row, "detail"),
        first_failed_at,
        consecutive_failures: row.details["consecutive_failures"].as_u64(),
        observation: Some(row.details["observation"].clone()).filter(|o| !o.is_null()),
        recent_observations: history
            .iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect(),
        last_good_at,
        open_issues,
        related_rows: related,
        envelope_status: row.details["envelope_status"]
            .as_str()
            .unwrap_or("absent")
            .to_owned(),
        envelope_action: row.details["envelope_fix"].as_str().map(str::to_owned),
        runbook: ctx.runbook.clone(),
    }
}

fn notice_for(ctx: &EventContext, row: &AuditRow, investigation: &Investigation) -> Notice {
    let kind = kind_of(row);
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
        probe: text(row, "probe"),
        component: text(row, "component"),
        severity: severity(row),
        category: text(row, "category"),
        kind,
        status,
        title: text(row, "title"),
        summary: investigation.summary.clone(),
        actions: investigation.actions.clone(),
        runbook: ctx.runbook.clone(),
        at: row.ts.clone(),
        details: json!({
            "observation": row.details["observation"],
            "consecutive_failures": row.details["consecutive_failures"],
            "stage": row.details["stage"],
            "reminder": row.details["reminder"],
            "open_for_ms": row.details["open_for_ms"],
            "investigation": { "engine": investigation.engine, "model": investigation.model, "fallback": investigation.fallback },
        }),
    }
}

/// The notice that an operator acknowledged an issue: PagerDuty turns it
/// into `acknowledge` on the issue's conversation; other notifiers show it.
fn ack_notice(ctx: &EventContext, row: &AuditRow) -> Notice {
    let probe = text(row, "probe");
    let by = row.details["author"]
        .as_str()
        .map_or_else(String::new, |author| format!(" by {author}"));
    let note = row.details["note"]
        .as_str()
        .map_or_else(String::new, |note| format!(": {note}"));
    Notice {
        idempotency_key: format!("warden-{}", row.seq),
        seq: row.seq,
        caller_session_id: row.caller_session_id.clone(),
        group: None,
        component: text(row, "component"),
        severity: severity(row),
        category: text(row, "category"),
        kind: "acknowledged".to_owned(),
        status: NoticeStatus::Firing,
        title: format!("{probe}: acknowledged{by}"),
        summary: format!(
            "The issue on {probe} was acknowledged{by}{note}; no more reminders are sent for it."
        ),
        actions: Vec::new(),
        runbook: ctx.runbook.clone(),
        at: row.ts.clone(),
        details: json!({ "author": row.details["author"], "note": row.details["note"] }),
        probe,
    }
}

fn delivery_row(row: &AuditRow, notice: &Notice, delivery: &Delivery, redelivered: bool) -> NewRow {
    let mut new = crate::notify::delivery_row(
        notice,
        delivery,
        json!({ "wake_seq": row.seq, "redelivered": redelivered }),
    );
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

fn completed_row(
    ctx: &EventContext,
    row: &AuditRow,
    notice: &Notice,
    investigation: &Investigation,
    deliveries: &[Delivery],
) -> NewRow {
    let mut new = NewRow::new(
        COMPLETED_SEAM,
        json!({
            "wake_seq": row.seq,
            "wake_seam": row.seam,
            "probe": notice.probe,
            "component": notice.component,
            "category": notice.category,
            "severity": notice.severity,
            "kind": notice.kind,
            "engine": investigation.engine,
            "model": investigation.model,
            "tokens_in": investigation.tokens_in,
            "tokens_out": investigation.tokens_out,
            "cost_usd": investigation.cost_usd,
            "duration_ms": investigation.duration_ms,
            "summary": investigation.summary,
            "actions": investigation.actions,
            "fallback": investigation.fallback,
            "dm_status": dm_status(investigation, deliveries),
            // Whether a fix ran in this story by the time the event was
            // handled (a fix usually follows the first wake's investigation,
            // so later events of the story, such as its resolution, say true).
            "autofix_attempted": row
                .caller_session_id
                .as_deref()
                .is_some_and(|session| ctx.fixes.contains(session)),
            "envelope_status": row.details["envelope_status"],
            "envelope_fix": row.details["envelope_fix"],
            "deliveries": deliveries,
            "notice": notice,
        }),
    )
    .component(notice.component.clone());
    if let Some(session) = &row.caller_session_id {
        new = new.session(session.clone());
    }
    if let Some(id) = row.trace_id.clone() {
        new = new.trace(id);
    }
    new
}
