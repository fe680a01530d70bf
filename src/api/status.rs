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

/// `GET /api/cluster`: one node, or the cluster as this node sees it: the
/// stream, who holds the active-node lease, and how far this node's copy of
/// the log is behind the stream. A part the servers did not answer within
/// `service.call_timeout` is `null`, with the reason under `errors`.
pub(super) async fn cluster(State(context): State<ApiContext>) -> Json<serde_json::Value> {
    let dir = context.audit_dir.clone();
    let local = tokio::task::spawn_blocking(move || {
        crate::audit::AuditReader::open(&dir).and_then(|reader| reader.last_seq())
    })
    .await
    .ok()
    .and_then(Result::ok)
    .flatten()
    .unwrap_or(0);
    let Some(log) = &context.cluster else {
        return Json(json!({ "kind": "local", "log": { "local_seq": local } }));
    };
    let mut errors = Vec::new();
    let timeout = context.call_timeout;
    let stream_last = answered(
        "stream",
        tokio::time::timeout(timeout, log.last_seq()).await,
        timeout,
        &mut errors,
    );
    let holder = answered(
        "lease",
        tokio::time::timeout(timeout, log.lease_holder()).await,
        timeout,
        &mut errors,
    );
    let nodes = answered(
        "members",
        tokio::time::timeout(timeout, log.member_list()).await,
        timeout,
        &mut errors,
    );
    let active = holder.map(|holder| match holder {
        Some((node, revision)) => json!({
            "holder": node,
            "revision": revision,
            "this_node": node == log.node(),
        }),
        None => json!({ "holder": null }),
    });
    // Ownership as this node computed it from the membership list it last
    // read: every node computes the same split from the same list.
    let probes = context.ownership.as_ref().map(|ownership| {
        let owned = ownership.owned();
        json!({
            "by_node": ownership.counts(),
            "this_node": owned.len(),
            "owned": owned,
        })
    });
    Json(json!({
        "kind": "nats",
        "node": log.node(),
        "stream": log.name(),
        "active": active,
        "nodes": nodes,
        "probes": probes,
        "log": {
            "stream_last_seq": stream_last,
            "local_seq": local,
            "lag": stream_last.map(|last: u64| last.saturating_sub(local)),
        },
        "errors": errors,
    }))
}

/// The value of a cluster request that answered in time; else `None`, with
/// the reason added to `errors`.
fn answered<T>(
    what: &str,
    answer: Result<Result<T, crate::cluster::ClusterError>, tokio::time::error::Elapsed>,
    timeout: std::time::Duration,
    errors: &mut Vec<String>,
) -> Option<T> {
    match answer {
        Ok(Ok(value)) => Some(value),
        Ok(Err(error)) => {
            errors.push(format!("{what}: {error}"));
            None
        }
        Err(_) => {
            errors.push(format!("{what}: no answer within {timeout:?}"));
            None
        }
    }
}
