//! `log`: one structured line per notice under the `warden::notice` target,
//! and one human line on stdout for whoever watches the terminal.

use super::Notice;

pub(super) fn write(notifier: &str, notice: &Notice, dashboard: Option<&str>) {
    tracing::info!(
        target: "warden::notice",
        notifier,
        idempotency_key = %notice.idempotency_key,
        seq = notice.seq,
        caller_session_id = notice.caller_session_id.as_deref().unwrap_or(""),
        probe = %notice.probe,
        component = %notice.component,
        severity = ?notice.severity,
        category = %notice.category,
        kind = %notice.kind,
        status = notice.status.as_str(),
        title = %notice.title,
        summary = %notice.summary,
        runbook = notice.runbook.as_deref().unwrap_or(""),
        dashboard = dashboard.unwrap_or(""),
        at = %notice.at,
        "Notice."
    );
    // The summary quotes what a target or an investigator said: escaped so
    // it cannot drive the terminal.
    println!("{}", crate::probes::escape_line(&human_line(notice)));
}

/// `[warden] FIRING critical api: api: service unhealthy — <summary>`.
pub(super) fn human_line(notice: &Notice) -> String {
    format!(
        "[warden] {} {} {}: {} — {}",
        notice.status.as_str().to_uppercase(),
        notice.severity.as_str(),
        notice.component,
        notice.title,
        notice.summary,
    )
}
