//! Probe routes: the latest observation and open issue per probe, and the
//! push endpoint heartbeat probes listen to.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{ApiContext, ApiError};
use crate::debounce::{DebounceStore, LatestObservations, ObservationHistory};
use crate::probes::Heartbeats;
use crate::settings::{ProbeDefaults, ProbeKind, ProbeSettings};

/// What the probe routes read; every part survives actor restarts.
#[derive(Clone)]
pub struct ProbesView {
    /// The running configuration, whose probes this lists: shared, not
    /// copied (a copy cost about 2 KiB per configured probe).
    pub settings: Arc<crate::settings::Settings>,
    /// Interval and timeout defaults.
    pub defaults: ProbeDefaults,
    /// Latest observation per probe.
    pub latest: LatestObservations,
    /// Debounce state per probe.
    pub store: DebounceStore,
    /// Heartbeat store.
    pub heartbeats: Heartbeats,
    /// Recent observations per probe, for the dashboard's sparklines.
    pub history: ObservationHistory,
    /// Registry name of the debouncer (told of acknowledgements).
    pub debouncer: String,
}

impl ProbesView {
    /// The configured probes.
    pub fn probes(&self) -> &[ProbeSettings] {
        &self.settings.probes
    }
}

fn describe(view: &ProbesView, probe: &ProbeSettings) -> Value {
    let now = Instant::now();
    let issue = view.store.get(&probe.name).and_then(|entry| {
        entry.machine.open_issue().map(|issue| {
            json!({
                "category": issue.category,
                "severity": issue.severity,
                "woken": issue.woken,
                "stage": issue.stage,
                "caller_session_id": entry.session,
                "open_for_s": now.saturating_duration_since(issue.opened_at).as_secs(),
            })
        })
    });
    json!({
        "name": probe.name,
        "kind": probe.kind.map(ProbeKind::as_str),
        "component": probe.component_name(),
        "interval_ms": probe.interval.unwrap_or(view.defaults.interval).as_millis() as u64,
        "timeout_ms": probe.timeout.unwrap_or(view.defaults.timeout).as_millis() as u64,
        "latest": view.latest.get(&probe.name).map(|o| o.clone()),
        "issue": issue,
    })
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no probe named {name:?}"),
    )
}

/// `GET /api/probes`: every probe with its latest observation and open issue.
pub(super) async fn list(State(context): State<ApiContext>) -> Json<Value> {
    let view = &context.probes;
    let probes: Vec<Value> = view
        .probes()
        .iter()
        .map(|probe| describe(view, probe))
        .collect();
    Json(json!({ "probes": probes }))
}

/// `GET /api/probes/{name}`.
pub(super) async fn one(
    State(context): State<ApiContext>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = &context.probes;
    let probe = view
        .probes()
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| not_found(&name))?;
    Ok(Json(describe(view, probe)))
}

/// `POST /api/heartbeats/{probe}`: the watched service says it is alive.
/// Needs no operator token (the pushing job has none); a probe with a
/// `token_file` needs that token, and only heartbeat probes accept beats.
pub(super) async fn heartbeat(
    State(context): State<ApiContext>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let view = &context.probes;
    let is_heartbeat = view
        .probes()
        .iter()
        .any(|p| p.name == name && p.kind == Some(ProbeKind::Heartbeat));
    if !is_heartbeat {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no heartbeat probe named {name:?}"),
        ));
    }
    context.access.check_heartbeat(&name, &headers)?;
    view.heartbeats.beat(&name);
    Ok(Json(json!({
        "probe": name,
        "received_at": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
    })))
}
