//! The HTTP API (axum): health, boot status, operational state and the audit
//! log over HTTP. Every error is JSON of one shape,
//! `{"error": {"code": "...", "message": "..."}}`, so scripts can match on
//! `code` without parsing prose.
//!
//! The server itself runs inside the supervised [`ApiServer`] actor; the
//! listener is bound once by `app/api.rs`, so a restarted server keeps its port.

mod access;
mod actor;
mod audit;
mod auth;
mod chaos;
mod control;
mod dashboard;
mod error;
mod incidents;
mod issues;
mod probes;
mod record;
mod serve;
mod status;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::audit::AuditLog;
use crate::control::{BootStatus, DrEpoch, OperationalState};

pub use access::{Access, TokenFileError};
pub use actor::{ApiServer, ApiServerArgs, ApiServerMsg, SharedListener};
pub use auth::OperatorTokens;
pub use control::{ControlCommand, ControlRequest};
pub use error::ApiError;
pub use incidents::IncidentsView;
pub use probes::ProbesView;
pub use serve::{ConnLimits, TlsError, tls_acceptor};

/// Everything a handler may read. Cloned per request (all fields are handles).
#[derive(Clone)]
pub struct ApiContext {
    /// Cluster mode: the stream that holds the log (`None`: one node).
    pub cluster: Option<Arc<crate::cluster::StreamLog>>,
    /// Cluster mode: which probes this node checks.
    pub ownership: Option<crate::cluster::Ownership>,
    /// Shared operational state.
    pub state: OperationalState,
    /// Boot gate results.
    pub boot: BootStatus,
    /// Append side of the audit log.
    pub audit: AuditLog,
    /// Directory the audit log lives in, for reads.
    pub audit_dir: PathBuf,
    /// Accepted operator tokens (reloaded on SIGHUP); empty disables mutating calls.
    pub operator_tokens: OperatorTokens,
    /// Asks the lifecycle in `app/lifecycle.rs` for a graceful stop (`POST /api/control` `stop`).
    pub shutdown: Arc<Notify>,
    /// The DR epoch files, for `bump_epoch`.
    pub dr: DrEpoch,
    /// Reports whether the supervision tree is up.
    pub tree: crate::app::TreeHandle,
    /// Timeout of calls into actors.
    pub call_timeout: Duration,
    /// When this instance started, for uptime.
    pub started: Instant,
    /// Probes, their latest observations and open issues.
    pub probes: ProbesView,
    /// The wake consumer's counters.
    pub wake: crate::wake::WakeStatus,
    /// The investigator, for its budget.
    pub investigator: crate::investigate::Investigator,
    /// The metrics registry served at `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// Incidents (read from the shared store) and the commander's name.
    pub incidents: IncidentsView,
    /// The chaos fault-injection surface, when `chaos.enabled`.
    pub chaos: Option<crate::chaos::ChaosControl>,
    /// Host allow-list, read tokens and heartbeat tokens.
    pub access: Access,
    /// Whether the listener serves TLS (the scheme an `Origin` must match).
    pub tls: bool,
    /// Longest one request may take before it is answered 408.
    pub request_timeout: Duration,
}

/// `GET /metrics`: Prometheus/OpenMetrics text. Gauges of live state are
/// read from the shared handles now, so they are exact at scrape time.
async fn metrics(
    axum::extract::State(context): axum::extract::State<ApiContext>,
) -> impl axum::response::IntoResponse {
    let m = &context.metrics;
    let health = context.audit.health().snapshot();
    m.audit_appends
        .set(i64::try_from(health.rows_written).unwrap_or(i64::MAX));
    m.audit_fsyncs
        .set(i64::try_from(health.fsyncs).unwrap_or(i64::MAX));
    m.audit_queue
        .set(i64::try_from(context.audit.queued()).unwrap_or(i64::MAX));
    m.wake_backlog
        .set(i64::try_from(context.wake.snapshot().in_flight).unwrap_or(i64::MAX));
    let open = context
        .probes
        .store
        .iter()
        .filter(|e| e.machine.open_issue().is_some())
        .count();
    m.issues_open.set(i64::try_from(open).unwrap_or(i64::MAX));
    m.incidents_open.clear();
    for incident in context.incidents.store.iter().filter(|i| i.is_active()) {
        let severity = serde_json::to_value(incident.severity)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        m.incidents_open
            .get_or_create(&crate::metrics::SeverityLabel { severity })
            .inc();
    }
    m.otlp_spans_dropped_set(crate::telemetry::spans_dropped());
    if let Some(ownership) = &context.ownership {
        // A node that left the list must not keep its last count.
        m.cluster_probes_owned.clear();
        for (node, count) in ownership.counts() {
            m.cluster_probes_owned
                .get_or_create(&crate::metrics::NodeLabel { node })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }
    if let Some(log) = &context.cluster {
        // Bounded: a cut-off cluster leaves the last values in place.
        let label = crate::metrics::NodeLabel {
            node: log.node().to_owned(),
        };
        let timeout = context.call_timeout;
        if let Ok(Ok(last)) = tokio::time::timeout(timeout, log.last_seq()).await {
            let lag = last.saturating_sub(health.last_durable_seq);
            m.cluster_log_lag
                .get_or_create(&label)
                .set(i64::try_from(lag).unwrap_or(i64::MAX));
        }
        if let Ok(Ok(Some((holder, revision)))) =
            tokio::time::timeout(timeout, log.lease_holder()).await
            && holder == log.node()
        {
            m.cluster_lease_revision
                .get_or_create(&label)
                .set(i64::try_from(revision).unwrap_or(i64::MAX));
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

/// `GET /api/wake`: the wake consumer's cursor, backlog and undelivered
/// notices, and the investigator's budget use.
async fn wake_status(
    axum::extract::State(context): axum::extract::State<ApiContext>,
) -> axum::Json<serde_json::Value> {
    let mut body = serde_json::to_value(context.wake.snapshot()).unwrap_or_default();
    if let Some(map) = body.as_object_mut() {
        map.insert(
            "budget".into(),
            serde_json::to_value(context.investigator.budget()).unwrap_or_default(),
        );
    }
    axum::Json(body)
}

/// A route that takes a request body, for [`check_body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRoute {
    /// `POST /api/audit/notes`.
    AuditNote,
    /// `POST /api/control`.
    Control,
    /// `POST /api/incidents`.
    IncidentOpen,
    /// `POST /api/incidents/{id}/notes`.
    IncidentNote,
    /// `POST /api/incidents/{id}/resolve`.
    IncidentResolve,
    /// `POST /api/incidents/{id}/severity`.
    IncidentSeverity,
    /// `POST /api/issues/{session}/ack`.
    IssueAck,
    /// `POST /api/chaos/faults`.
    ChaosFault,
}

impl BodyRoute {
    /// Every route with a body.
    pub const ALL: [BodyRoute; 8] = [
        BodyRoute::AuditNote,
        BodyRoute::Control,
        BodyRoute::IncidentOpen,
        BodyRoute::IncidentNote,
        BodyRoute::IncidentResolve,
        BodyRoute::IncidentSeverity,
        BodyRoute::IssueAck,
        BodyRoute::ChaosFault,
    ];
}

/// Reads `body` as the handler of `route` does before it touches any state:
/// the same extractor (`axum::Json`, or the ack's optional body) and the same
/// checks, with the same error. Public so the fuzz targets reach the code a
/// hostile client reaches without needing a running service.
pub fn check_body(route: BodyRoute, body: &[u8]) -> Result<(), ApiError> {
    use axum::Json;
    match route {
        BodyRoute::AuditNote => Json::<audit::NoteRequest>::from_bytes(body)?.0.check(),
        BodyRoute::Control => Json::<ControlRequest>::from_bytes(body)?.0.check(),
        BodyRoute::IncidentOpen => Json::<incidents::OpenRequest>::from_bytes(body)?.0.check(),
        BodyRoute::IncidentNote => Json::<incidents::NoteRequest>::from_bytes(body)?.0.check(),
        BodyRoute::IncidentResolve => Json::<incidents::ResolveRequest>::from_bytes(body)?
            .0
            .check(),
        BodyRoute::IncidentSeverity => Json::<incidents::SeverityRequest>::from_bytes(body)?
            .0
            .check(),
        BodyRoute::IssueAck => issues::AckRequest::parse(body).map(drop),
        BodyRoute::ChaosFault => {
            // The row records the fault by its text, so that must hold up too.
            let fault = Json::<crate::chaos::ChaosFault>::from_bytes(body)?.0;
            let _ = fault.to_string();
            Ok(())
        }
    }
}

/// Builds the router with every route.
pub fn router(context: ApiContext) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/api/dashboard", get(dashboard::data))
        .route("/api/health", get(status::health))
        .route("/api/boot-status", get(status::boot_status))
        .route("/api/operational-state", get(status::operational_state))
        .route("/api/cluster", get(status::cluster))
        .route("/api/audit", get(audit::rows))
        .route("/api/audit/notes", post(audit::add_note))
        .route("/api/probes", get(probes::list))
        .route("/api/probes/{name}", get(probes::one))
        .route("/api/heartbeats/{probe}", post(probes::heartbeat))
        .route("/api/issues", get(issues::list))
        .route("/api/issues/{session}/ack", post(issues::ack))
        .route("/api/wake", get(wake_status))
        .route("/metrics", get(metrics))
        .route("/api/control", post(control::command))
        .route("/api/incidents", get(incidents::list).post(incidents::open))
        .route("/api/incidents/{id}", get(incidents::one))
        .route("/api/incidents/{id}/notes", post(incidents::note))
        .route("/api/incidents/{id}/resolve", post(incidents::resolve))
        .route("/api/incidents/{id}/severity", post(incidents::severity))
        .route("/api/chaos/faults", post(chaos::inject))
        .fallback(error::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(error::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            context.clone(),
            access::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            context.request_timeout,
            request_deadline,
        ))
        .with_state(context)
}

/// Answers 408 when a request (reading its body included) is not done within
/// `service.request_timeout`, so a client trickling a body cannot hold a
/// handler forever.
async fn request_deadline(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request took longer than {} (service.request_timeout)",
                humantime::format_duration(limit)
            ),
        )
        .into_response(),
    }
}
