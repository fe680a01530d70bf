//! Read-only status routes: is the tree up, how did boot go, may Warden act.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::ApiContext;
use crate::control::{BootReport, StateSnapshot};

/// `GET /api/health`: 200 with `{"status":"ok",...}` while the supervision
/// tree answers, 503 with `{"status":"unavailable",...}` otherwise.
pub(super) async fn health(State(context): State<ApiContext>) -> impl IntoResponse {
    let uptime_s = context.started.elapsed().as_secs();
    let state = context.state.state();
    match context.tree.children(context.call_timeout).await {
        Some(children) => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_s": uptime_s,
                "operational_state": state,
                "children": children,
            })),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "unavailable",
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_s": uptime_s,
                "operational_state": state,
            })),
        ),
    }
}

/// `GET /api/boot-status`: every boot gate with pass/fail and its detail.
pub(super) async fn boot_status(State(context): State<ApiContext>) -> Json<BootReport> {
    Json(context.boot.report())
}

/// `GET /api/operational-state`: RUNNING / PAUSED (with reasons) / STOPPED.
pub(super) async fn operational_state(State(context): State<ApiContext>) -> Json<StateSnapshot> {
    Json(context.state.snapshot())
}
