//! `slack`: an incoming-webhook message. `text` is the one-line fallback
//! that notifications and old clients show; `blocks` carry the layout.

use serde_json::{Value, json};

use super::{Notice, NoticeStatus};

/// Slack rejects a section text longer than 3000 characters.
const SECTION_CHARS: usize = 2900;

/// Slack rejects a header text longer than 150 characters.
const HEADER_CHARS: usize = 150;

pub(super) fn payload(notice: &Notice, channel: Option<&str>, dashboard: Option<&str>) -> Value {
    let status = notice.status.as_str().to_uppercase();
    let severity = notice.severity.as_str();
    let text = format!(
        "[{status}] {severity} {}: {} — {}",
        notice.component, notice.title, notice.summary
    );
    let marker = match notice.status {
        NoticeStatus::Firing => "🔴",
        NoticeStatus::Resolved => "✅",
    };
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(&format!("{marker} {status}: {}", notice.title), HEADER_CHARS),
            },
        }),
        json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": truncate(&escape(&notice.summary), SECTION_CHARS) },
        }),
        json!({
            "type": "section",
            "fields": [
                { "type": "mrkdwn", "text": format!("*Severity*\n{severity}") },
                { "type": "mrkdwn", "text": format!("*Component*\n{}", escape(&notice.component)) },
                { "type": "mrkdwn", "text": format!("*Probe*\n{}", escape(&notice.probe)) },
                { "type": "mrkdwn", "text": format!("*Event*\n{} ({})", escape(&notice.kind), escape(&notice.category)) },
            ],
        }),
    ];
    if !notice.actions.is_empty() {
        let list: Vec<String> = notice
            .actions
            .iter()
            .map(|action| format!("• {}", escape(action)))
            .collect();
        blocks.push(json!({
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": truncate(&format!("*Suggested actions*\n{}", list.join("\n")), SECTION_CHARS),
            },
        }));
    }
    let mut context = Vec::new();
    if let Some(runbook) = &notice.runbook {
        context.push(format!("<{}|Runbook>", escape(runbook)));
    }
    if let Some(dashboard) = dashboard {
        context.push(format!("<{}|Dashboard>", escape(dashboard)));
    }
    context.push(format!(
        "{} · {}",
        escape(&notice.idempotency_key),
        notice.at
    ));
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": context.join(" · ") }],
    }));
    let mut message = json!({ "text": text, "blocks": blocks });
    if let (Some(channel), Some(object)) = (channel, message.as_object_mut()) {
        object.insert("channel".to_owned(), Value::from(channel));
    }
    message
}

/// Slack's mrkdwn treats `&`, `<` and `>` as markup.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// At most `max` characters, cut on a character boundary, with `…` when cut.
pub(super) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
