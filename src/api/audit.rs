//! The audit log over HTTP: read rows, and let an operator annotate the
//! timeline (`operator.note`), acknowledged only once the note is durable.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::require_operator;
use super::record::record_then;
use super::{ApiContext, ApiError};
use crate::audit::{AuditReader, AuditRow};

/// Most rows one `GET /api/audit` returns; page with `since`.
const MAX_LIMIT: usize = 1000;
/// Longest note text accepted, so the log cannot be used as bulk storage.
const MAX_NOTE_BYTES: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RowsQuery {
    /// First seq to return (inclusive). Default 1.
    since: Option<u64>,
    /// Exact seam, or a prefix ending in `*`.
    seam: Option<String>,
    /// Rows to return, at most 1000. Default 100.
    limit: Option<usize>,
}

/// `GET /api/audit?since=&seam=&limit=`: rows in seq order.
pub(super) async fn rows(
    State(context): State<ApiContext>,
    Query(query): Query<RowsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    let dir = context.audit_dir.clone();
    // Reading walks files; keep it off the async workers.
    let rows = tokio::task::spawn_blocking(move || -> Result<Vec<AuditRow>, String> {
        let reader = AuditReader::open(&dir).map_err(|e| e.to_string())?;
        reader
            .rows_from(query.since.unwrap_or(1), query.seam.as_deref())
            .take(limit)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::unavailable(format!("audit read task failed: {e}")))?
    .map_err(|e| ApiError::unavailable(format!("cannot read the audit log: {e}")))?;
    let next = rows.last().map(|row| row.seq + 1);
    Ok(Json(json!({ "rows": rows, "next_since": next })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoteRequest {
    text: String,
    author: Option<String>,
    component: Option<String>,
    caller_session_id: Option<String>,
}

impl NoteRequest {
    /// What the handler refuses before it records anything.
    pub(super) fn check(&self) -> Result<(), ApiError> {
        if self.text.trim().is_empty() {
            return Err(ApiError::bad_request("`text` must not be empty"));
        }
        if self.text.len() > MAX_NOTE_BYTES {
            return Err(ApiError::bad_request(format!(
                "`text` is longer than {MAX_NOTE_BYTES} bytes"
            )));
        }
        Ok(())
    }
}

/// `POST /api/audit/notes` (operator token): appends `operator.note` and
/// answers `{"seq": N}` once the row is durable.
pub(super) async fn add_note(
    State(context): State<ApiContext>,
    headers: HeaderMap,
    body: Result<Json<NoteRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    require_operator(&context, &headers)?;
    let Json(note) = body.map_err(ApiError::from)?;
    note.check()?;
    let mut row = crate::events::row(&crate::events::service::OperatorNote {
        text: note.text,
        author: note.author,
    });
    row.component = note.component;
    row.caller_session_id = note.caller_session_id;
    let (seq, ()) = record_then(&context, row, "the note", |_| ()).await?;
    Ok(Json(json!({ "seq": seq })))
}
