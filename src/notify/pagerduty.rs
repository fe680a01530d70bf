//! `pagerduty`: PagerDuty Events API v2. A firing notice is a `trigger`, an
//! operator's acknowledgement an `acknowledge` and a resolved notice a
//! `resolve`, all with the conversation's `dedup_key` (the session of the
//! issue that opened it), so an issue and its incident are one PagerDuty
//! incident.

use serde_json::{Value, json};

use super::slack::truncate;
use super::{Notice, NoticeStatus};
use crate::settings::Secret;

/// PagerDuty rejects a `payload.summary` longer than 1024 characters.
const SUMMARY_CHARS: usize = 1024;

/// The `dedup_key` of every event about the conversation `notice` is in:
/// an incident and the issue that opened it share one.
pub(super) fn dedup_key(notice: &Notice) -> &str {
    notice.conversation()
}

pub(super) fn payload(notice: &Notice, routing_key: &Secret, dashboard: Option<&str>) -> Value {
    let dedup_key = dedup_key(notice);
    let action = match (notice.status, notice.kind.as_str()) {
        (NoticeStatus::Resolved, _) => Some("resolve"),
        (_, "acknowledged") => Some("acknowledge"),
        _ => None,
    };
    if let Some(action) = action {
        return json!({
            "routing_key": routing_key.expose(),
            "event_action": action,
            "dedup_key": dedup_key,
        });
    }
    let mut links = Vec::new();
    if let Some(runbook) = &notice.runbook {
        links.push(json!({ "href": runbook, "text": "Runbook" }));
    }
    if let Some(dashboard) = dashboard {
        links.push(json!({ "href": dashboard, "text": "Dashboard" }));
    }
    json!({
        "routing_key": routing_key.expose(),
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": truncate(&format!("{}: {}", notice.title, notice.summary), SUMMARY_CHARS),
            "source": notice.component,
            "severity": notice.severity.as_str(),
            "timestamp": notice.at,
            "component": notice.component,
            "group": notice.probe,
            "class": notice.category,
            "custom_details": {
                "probe": notice.probe,
                "kind": notice.kind,
                "idempotency_key": notice.idempotency_key,
                "seq": notice.seq,
                "actions": notice.actions,
                "runbook": notice.runbook,
                "details": notice.details,
            },
        },
        "links": links,
    })
}
