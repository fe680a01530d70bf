//! `pagerduty`: PagerDuty Events API v2. A firing notice is a `trigger`, a
//! resolved one a `resolve` with the same `dedup_key` (the caller session,
//! else the idempotency key), so PagerDuty folds reminders into the open
//! incident and the resolve closes it.

use serde_json::{Value, json};

use super::console::severity_word;
use super::slack::truncate;
use super::{Notice, NoticeStatus};
use crate::settings::Secret;

/// PagerDuty rejects a `payload.summary` longer than 1024 characters.
const SUMMARY_CHARS: usize = 1024;

/// The `dedup_key` of every event about the issue `notice` is about.
pub(super) fn dedup_key(notice: &Notice) -> &str {
    notice
        .caller_session_id
        .as_deref()
        .unwrap_or(&notice.idempotency_key)
}

pub(super) fn payload(notice: &Notice, routing_key: &Secret, dashboard: Option<&str>) -> Value {
    let dedup_key = dedup_key(notice);
    if notice.status == NoticeStatus::Resolved {
        return json!({
            "routing_key": routing_key.expose(),
            "event_action": "resolve",
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
            "severity": severity_word(notice.severity),
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
