//! Incident routes: reads come from the shared store (no call into the
//! commander); changes are calls to the commander, which audits them.

use std::path::PathBuf;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use ractor::ActorRef;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::require_operator;
use super::{ApiContext, ApiError};
use crate::incidents::{
    CommandError, IncidentMsg, IncidentStatus, IncidentStore, OpenTrigger, Sev, read_timeline,
};

/// Longest note, title or reason accepted.
const MAX_TEXT_BYTES: usize = 4096;

/// What the incident routes need.
#[derive(Clone)]
pub struct IncidentsView {
    /// Every incident, shared with the commander.
    pub store: IncidentStore,
    /// The commander's registered name.
    pub commander: String,
    /// `<state_dir>/incidents`, for timelines.
    pub dir: PathBuf,
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no incident {id:?}"),
    )
}

fn text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::bad_request(format!(
            "`{field}` must not be empty"
        )));
    }
    if value.len() > MAX_TEXT_BYTES {
        return Err(ApiError::bad_request(format!(
            "`{field}` is longer than {MAX_TEXT_BYTES} bytes"
        )));
    }
    Ok(())
}

fn commander(context: &ApiContext) -> Result<ActorRef<IncidentMsg>, ApiError> {
    ActorRef::<IncidentMsg>::where_is(context.incidents.commander.clone())
        .ok_or_else(|| ApiError::unavailable("the incident commander is not running"))
}

fn timeout_ms(context: &ApiContext) -> u64 {
    u64::try_from(context.call_timeout.as_millis()).unwrap_or(u64::MAX)
}

/// The commander's answer as a status: 409 only for what the operator can
/// act on (impact continues, already resolved); a file the commander could
/// not write is Warden's fault, a 500, so `warden incidents resolve` does
/// not report it as "impact continues".
fn refused(error: CommandError) -> ApiError {
    match error {
        CommandError::Unknown(id) => not_found(&id),
        CommandError::Resolved { already: true, .. } => {
            ApiError::new(StatusCode::CONFLICT, "already_resolved", error.to_string())
        }
        CommandError::Resolved { already: false, .. } => {
            ApiError::new(StatusCode::CONFLICT, "conflict", error.to_string())
        }
        CommandError::ImpactOngoing(_) => {
            ApiError::new(StatusCode::CONFLICT, "impact_ongoing", error.to_string())
        }
        CommandError::Files(_) => {
            tracing::error!(error = %error, "An incident change could not be written.");
            ApiError::internal(error.to_string())
        }
    }
}

fn call_failed(error: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(format!("the incident commander did not answer: {error}"))
}

/// `GET /api/incidents`: every incident, newest first.
pub(super) async fn list(State(context): State<ApiContext>) -> Json<Value> {
    let mut incidents: Vec<Value> = context
        .incidents
        .store
        .iter()
        .map(|i| {
            json!({
                "id": i.id,
                "severity": i.severity,
                "status": i.status,
                "components": i.components,
                "opened_at": i.opened_at,
                "title": i.title,
            })
        })
        .collect();
    incidents.sort_by(|a, b| {
        (b["opened_at"].as_str(), b["id"].as_str())
            .cmp(&(a["opened_at"].as_str(), a["id"].as_str()))
    });
    Json(json!({ "incidents": incidents }))
}

/// `GET /api/incidents/{id}`: the incident and its timeline.
pub(super) async fn one(
    State(context): State<ApiContext>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let incident = context
        .incidents
        .store
        .get(&id)
        .map(|i| i.clone())
        .ok_or_else(|| not_found(&id))?;
    let dir = context.incidents.dir.clone();
    let lookup = id.clone();
    let timeline = tokio::task::spawn_blocking(move || read_timeline(&dir, &lookup))
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let mut body = serde_json::to_value(&incident).unwrap_or_default();
    if let Some(map) = body.as_object_mut() {
        map.insert(
            "timeline".into(),
            serde_json::to_value(timeline).unwrap_or_default(),
        );
    }
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenRequest {
    title: String,
    severity: Option<Sev>,
    #[serde(default)]
    components: Vec<String>,
}

impl OpenRequest {
    /// What the handler refuses before it calls the commander.
    pub(super) fn check(&self) -> Result<(), ApiError> {
        text("title", &self.title)
    }
}

/// `POST /api/incidents` (operator token): opens an incident by hand.
pub(super) async fn open(
    State(context): State<ApiContext>,
    headers: HeaderMap,
    body: Result<Json<OpenRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_operator(&context, &headers)?;
    let Json(request) = body.map_err(ApiError::from)?;
    request.check()?;
    let actor = commander(&context)?;
    let trigger = OpenTrigger::Operator {
        title: request.title,
        severity: request.severity,
        components: request.components,
    };
    let id = ractor::call_t!(
        actor,
        |reply| IncidentMsg::Open {
            trigger,
            reply: Some(reply)
        },
        timeout_ms(&context)
    )
    .map_err(call_failed)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoteRequest {
    text: String,
    author: Option<String>,
}

impl NoteRequest {
    /// What the handler refuses before it calls the commander.
    pub(super) fn check(&self) -> Result<(), ApiError> {
        text("text", &self.text)
    }
}

/// `POST /api/incidents/{id}/notes` (operator token).
pub(super) async fn note(
    State(context): State<ApiContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<NoteRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    require_operator(&context, &headers)?;
    let Json(request) = body.map_err(ApiError::from)?;
    request.check()?;
    if !context.incidents.store.contains_key(&id) {
        return Err(not_found(&id));
    }
    let actor = commander(&context)?;
    let (note_id, text, author) = (id.clone(), request.text, request.author);
    ractor::call_t!(
        actor,
        |reply| IncidentMsg::Note {
            id: note_id,
            text,
            author,
            reply
        },
        timeout_ms(&context)
    )
    .map_err(call_failed)?
    .map_err(refused)?;
    Ok(Json(json!({ "id": id, "noted": true })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResolveRequest {
    note: String,
    #[serde(default)]
    force: bool,
}

impl ResolveRequest {
    /// What the handler refuses before it calls the commander.
    pub(super) fn check(&self) -> Result<(), ApiError> {
        text("note", &self.note)
    }
}

/// `POST /api/incidents/{id}/resolve` (operator token): 409 while an
/// affected probe is unhealthy, unless `force`; 500 when the incident files
/// cannot be written.
pub(super) async fn resolve(
    State(context): State<ApiContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<ResolveRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    require_operator(&context, &headers)?;
    let Json(request) = body.map_err(ApiError::from)?;
    request.check()?;
    let status = context
        .incidents
        .store
        .get(&id)
        .map(|i| i.status)
        .ok_or_else(|| not_found(&id))?;
    if status == IncidentStatus::Resolved {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_resolved",
            format!("{id} is already resolved"),
        ));
    }
    let actor = commander(&context)?;
    let (resolve_id, note, force) = (id.clone(), request.note, request.force);
    ractor::call_t!(
        actor,
        |reply| IncidentMsg::Resolve {
            id: resolve_id,
            note,
            force,
            reply
        },
        timeout_ms(&context)
    )
    .map_err(call_failed)?
    .map_err(refused)?;
    Ok(Json(
        json!({ "id": id, "status": "resolved", "force": request.force }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SeverityRequest {
    severity: Sev,
    reason: String,
}

impl SeverityRequest {
    /// What the handler refuses before it calls the commander.
    pub(super) fn check(&self) -> Result<(), ApiError> {
        text("reason", &self.reason)
    }
}

/// `POST /api/incidents/{id}/severity` (operator token).
pub(super) async fn severity(
    State(context): State<ApiContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<SeverityRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    require_operator(&context, &headers)?;
    let Json(request) = body.map_err(ApiError::from)?;
    request.check()?;
    if !context.incidents.store.contains_key(&id) {
        return Err(not_found(&id));
    }
    let actor = commander(&context)?;
    let (severity_id, severity, reason) = (id.clone(), request.severity, request.reason);
    ractor::call_t!(
        actor,
        |reply| IncidentMsg::SetSeverity {
            id: severity_id,
            severity,
            reason,
            reply
        },
        timeout_ms(&context)
    )
    .map_err(call_failed)?
    .map_err(refused)?;
    Ok(Json(json!({ "id": id, "severity": severity })))
}
