//! `POST /api/chaos/faults`: the chaos suite's way into a Warden running as
//! its own process. Absent (404) unless `chaos.enabled = true`; refused
//! without the operator token; every injected fault is a `chaos.fault` row.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::auth::require_operator;
use super::{ApiContext, ApiError};
use crate::chaos::ChaosFault;

/// Injects one fault and answers `{"landed", "actor_id"}`.
pub(super) async fn inject(
    State(context): State<ApiContext>,
    headers: HeaderMap,
    body: Result<Json<ChaosFault>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Some(chaos) = &context.chaos else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the chaos surface is disabled (chaos.enabled = false)",
        ));
    };
    require_operator(&context, &headers)?;
    let Json(fault) = body.map_err(ApiError::from)?;
    let injected = chaos
        .inject(&fault)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let row = crate::events::row(&crate::events::service::ChaosFault {
        fault: fault.to_string(),
        landed: injected.landed,
        actor_id: injected.actor_id.clone(),
    });
    // The row queues even while the writer is down (the queue outlives it),
    // so a slow append is not a reason to report the fault as not injected.
    let _ = tokio::time::timeout(context.call_timeout, context.audit.append(row)).await;
    Ok(Json(
        json!({ "landed": injected.landed, "actor_id": injected.actor_id }),
    ))
}
