//! The status dashboard: `GET /` serves one self-contained HTML page (inline
//! CSS and JS, no build step), which polls `GET /api/dashboard`, one JSON
//! document aggregating what an operator looks at first: the operational
//! state, boot gates, every probe with a short history, open issues with
//! their story from the audit log, open incidents with their timelines, and
//! the wake backlog.

use std::collections::HashMap;
use std::path::Path;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::ApiContext;
use crate::audit::AuditReader;
use crate::incidents::read_timeline;

/// The page, compiled in so the binary serves it without files on disk.
const PAGE: &str = include_str!("dashboard.html");
/// Points in each probe's sparkline.
const SPARK_POINTS: usize = 20;
/// Audit rows shown per open issue.
const STORY_ROWS: usize = 10;
/// Timeline entries shown per incident.
const TIMELINE_ENTRIES: usize = 10;
/// How far back from the log's end the story scan reads, so one request
/// stays cheap however long the log is.
const STORY_SCAN_ROWS: u64 = 5000;

/// `GET /`: the dashboard page.
pub(super) async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
}

/// `GET /api/dashboard`: everything the page renders, in one response.
pub(super) async fn data(State(context): State<ApiContext>) -> impl IntoResponse {
    let probes = probes(&context);
    let mut issues = super::issues::open_issues(&context);
    let sessions: Vec<String> = issues
        .iter()
        .filter_map(|i| i["caller_session_id"].as_str().map(str::to_owned))
        .collect();
    let mut incidents = incidents(&context);
    let ids: Vec<String> = incidents
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect();
    let audit_dir = context.audit_dir.clone();
    let incidents_dir = context.incidents.dir.clone();
    // File reads off the async workers; a failed read shows as an empty story.
    let (stories, timelines) = tokio::task::spawn_blocking(move || {
        (
            stories(&audit_dir, &sessions),
            timelines(&incidents_dir, &ids),
        )
    })
    .await
    .unwrap_or_default();
    for issue in &mut issues {
        let story = issue["caller_session_id"]
            .as_str()
            .and_then(|s| stories.get(s))
            .cloned()
            .unwrap_or_default();
        if let Some(map) = issue.as_object_mut() {
            map.insert("story".into(), Value::Array(story));
        }
    }
    for incident in &mut incidents {
        let timeline = incident["id"]
            .as_str()
            .and_then(|id| timelines.get(id))
            .cloned()
            .unwrap_or_default();
        if let Some(map) = incident.as_object_mut() {
            map.insert("timeline".into(), Value::Array(timeline));
        }
    }
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": context.started.elapsed().as_secs(),
            "operational_state": context.state.snapshot(),
            "boot": context.boot.report(),
            "probes": probes,
            "issues": issues,
            "incidents": incidents,
            "wake": context.wake.snapshot(),
        })),
    )
}

fn probes(context: &ApiContext) -> Vec<Value> {
    let view = &context.probes;
    view.probes()
        .iter()
        .map(|probe| {
            let latest = view.latest.get(&probe.name).map(|o| o.clone());
            let history: Vec<Value> = view
                .history
                .get(&probe.name)
                .map(|h| {
                    let skip = h.len().saturating_sub(SPARK_POINTS);
                    h.iter()
                        .skip(skip)
                        .map(|o| json!({ "status": o.status, "latency_ms": o.latency_ms }))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "name": probe.name,
                "component": probe.component_name(),
                "kind": probe.kind.map(crate::settings::ProbeKind::as_str),
                "status": latest.as_ref().map(|o| o.status),
                "latency_ms": latest.as_ref().map(|o| o.latency_ms),
                "reasons": latest.as_ref().map(|o| o.reasons.clone()).unwrap_or_default(),
                "at": latest.as_ref().map(|o| o.at.clone()),
                "history": history,
            })
        })
        .collect()
}

fn incidents(context: &ApiContext) -> Vec<Value> {
    let mut incidents: Vec<Value> = context
        .incidents
        .store
        .iter()
        .filter(|i| i.is_active())
        .map(|i| {
            json!({
                "id": i.id,
                "severity": i.severity,
                "status": i.status,
                "title": i.title,
                "components": i.components,
                "opened_at": i.opened_at,
            })
        })
        .collect();
    incidents.sort_by(|a, b| {
        (b["opened_at"].as_str(), b["id"].as_str())
            .cmp(&(a["opened_at"].as_str(), a["id"].as_str()))
    });
    incidents
}

/// The last [`STORY_ROWS`] audit rows of each session, from the last
/// [`STORY_SCAN_ROWS`] rows of the log.
fn stories(dir: &Path, sessions: &[String]) -> HashMap<String, Vec<Value>> {
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    if sessions.is_empty() {
        return out;
    }
    let Ok(reader) = AuditReader::open(dir) else {
        return out;
    };
    let last = reader.last_seq().ok().flatten().unwrap_or(0);
    let from = last.saturating_sub(STORY_SCAN_ROWS).max(1);
    for row in reader.rows_from(from, None).filter_map(Result::ok) {
        let Some(session) = row.caller_session_id.as_deref() else {
            continue;
        };
        if !sessions.iter().any(|s| s == session) {
            continue;
        }
        let story = out.entry(session.to_owned()).or_default();
        story.push(json!({
            "seq": row.seq,
            "ts": row.ts,
            "seam": row.seam,
            "summary": crate::events::summary_line(&row.details),
        }));
        if story.len() > STORY_ROWS {
            story.remove(0);
        }
    }
    out
}

/// The last [`TIMELINE_ENTRIES`] timeline entries of each incident.
fn timelines(dir: &Path, ids: &[String]) -> HashMap<String, Vec<Value>> {
    ids.iter()
        .map(|id| {
            let entries = read_timeline(dir, id).unwrap_or_default();
            let skip = entries.len().saturating_sub(TIMELINE_ENTRIES);
            let entries = entries
                .into_iter()
                .skip(skip)
                .map(|e| json!({ "at": e.at, "kind": e.kind, "text": e.text }))
                .collect();
            (id.clone(), entries)
        })
        .collect()
}
