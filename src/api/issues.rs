//! Issue routes: the open issues, and the operator's acknowledgement, which
//! stops reminders for an issue while probing goes on.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::auth::require_operator;
use super::record::record_then;
use super::{ApiContext, ApiError};
use crate::debounce::DebouncerMsg;

/// Longest acknowledgement note accepted.
const MAX_NOTE_BYTES: usize = 4096;

/// `GET /api/issues`: every open issue, by probe.
pub(super) async fn list(State(context): State<ApiContext>) -> Json<Value> {
    Json(json!({ "issues": open_issues(&context) }))
}

/// Every open issue as the API shows it, sorted by probe (also the
/// dashboard's issue list).
pub(super) fn open_issues(context: &ApiContext) -> Vec<Value> {
    let now = Instant::now();
    let view = &context.probes;
    let mut issues: Vec<Value> = view
        .store
        .iter()
        .filter_map(|entry| {
            let issue = entry.machine.open_issue()?;
            let component = view
                .probes()
                .iter()
                .find(|p| &p.name == entry.key())
                .map(|p| p.component_name().to_owned());
            Some(json!({
                "probe": entry.key(),
                "component": component,
                "category": issue.category,
                "severity": issue.severity,
                "stage": issue.stage,
                "woken": issue.woken,
                "acknowledged": entry.acked,
                "caller_session_id": entry.session,
                "open_for_s": now.saturating_duration_since(issue.opened_at).as_secs(),
            }))
        })
        .collect();
    issues.sort_by(|a, b| a["probe"].as_str().cmp(&b["probe"].as_str()));
    issues
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AckRequest {
    note: Option<String>,
    author: Option<String>,
}

impl AckRequest {
    /// The optional body: empty (or only whitespace) is an ack without a note.
    pub(super) fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let request: AckRequest = if body.iter().all(u8::is_ascii_whitespace) {
            AckRequest::default()
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
        };
        if request
            .note
            .as_ref()
            .is_some_and(|n| n.len() > MAX_NOTE_BYTES)
        {
            return Err(ApiError::bad_request(format!(
                "`note` is longer than {MAX_NOTE_BYTES} bytes"
            )));
        }
        Ok(request)
    }
}

/// `POST /api/issues/{caller_session_id}/ack` (operator token).
pub(super) async fn ack(
    State(context): State<ApiContext>,
    headers: HeaderMap,
    Path(session): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    require_operator(&context, &headers)?;
    // The body is optional: an empty one is an ack without a note.
    let body = body.map_err(ApiError::from)?;
    let request = AckRequest::parse(&body)?;
    let store = &context.probes.store;
    let probe = store
        .iter()
        .find(|entry| {
            entry.session.as_deref() == Some(session.as_str())
                && entry.machine.open_issue().is_some()
        })
        .map(|entry| entry.key().clone())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no open issue with caller_session_id {session:?}"),
            )
        })?;
    let (already, issue) = store.get(&probe).map_or((false, None), |entry| {
        let issue = entry
            .machine
            .open_issue()
            .map(|issue| (issue.severity, issue.category.clone(), issue.woken));
        (entry.acked, issue)
    });
    let (severity, category, woken) = issue.unwrap_or_default();
    let component = context
        .probes
        .latest
        .get(&probe)
        .map(|observation| observation.component.clone())
        .unwrap_or_else(|| probe.clone());
    // The row carries what the wake consumer needs to tell the notifiers
    // (PagerDuty's `acknowledge`) without reading the debouncer's maps.
    let row = crate::events::row(&crate::events::Acknowledged {
        probe: probe.clone(),
        component: component.clone(),
        severity,
        category,
        woken,
        note: request.note,
        author: request.author,
        again: already,
    })
    .component(component)
    .session(session.clone());
    // Durable first: an acknowledgement that is not in the log did not
    // happen. Then the debouncer is told (it stops the reminders); were it
    // restarting just then, the wake consumer still drops every reminder
    // after the acknowledgement, which it reads in the log.
    let (debouncer, acked_session, acked_probe) = (
        context.probes.debouncer.clone(),
        session.clone(),
        probe.clone(),
    );
    let (seq, applied) = record_then(&context, row, "the acknowledgement", move |_| {
        let (port, applied) = ractor::concurrency::oneshot();
        if let Some(actor) = ractor::ActorRef::<DebouncerMsg>::where_is(debouncer) {
            let _ = actor.cast(DebouncerMsg::Acknowledged {
                probe: acked_probe,
                session: acked_session,
                applied: Some(port.into()),
            });
        }
        applied
    })
    .await?;
    // The acknowledgement is durable, which is what counts; waiting (at
    // most `service.call_timeout`) for the debouncer makes the answer and
    // the next issue list agree. Were it restarting just now, the wake
    // consumer still drops every reminder after the row.
    let _ = tokio::time::timeout(context.call_timeout, applied).await;
    Ok(Json(
        json!({ "acknowledged": session, "probe": probe, "seq": seq }),
    ))
}
