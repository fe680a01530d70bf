//! The built-in summary: plain sentences from the request alone, no I/O.
//! Deterministic, so the same wake always reads the same, and it is what an
//! operator gets whenever an outside engine cannot answer.

use std::time::Duration;

use serde_json::Value;

use super::InvestigationRequest;

/// How many other open issues the summary names before "and N more".
const LISTED_ISSUES: usize = 5;

/// The summary and next actions for `request`.
pub(crate) fn summarise(request: &InvestigationRequest) -> (String, Vec<String>) {
    if request.kind == "resolved" {
        (resolved_summary(request), resolved_actions(request))
    } else {
        (open_summary(request), open_actions(request))
    }
}

fn open_summary(r: &InvestigationRequest) -> String {
    let what = issue_name(r);
    let mut text = match r.kind.as_str() {
        "fired" => format!(
            "New {} issue on {}: {what}.",
            r.severity.as_str(),
            r.component
        ),
        "reminder" => format!(
            "Reminder: the {} issue on {} is still open: {what}.",
            r.severity.as_str(),
            r.component
        ),
        "escalated" => format!(
            "Escalated: the {} issue on {} has not been resolved: {what}.",
            r.severity.as_str(),
            r.component
        ),
        "resumed" => format!(
            "Warden resumed and the {} issue on {} is still open: {what}.",
            r.severity.as_str(),
            r.component
        ),
        "flapping" => format!(
            "Flapping: probe {} on {} keeps switching between failing and healthy: {what}.",
            r.probe, r.component
        ),
        other => format!(
            "{} ({other}) on {}: {what}.",
            capitalise(r.severity.as_str()),
            r.component
        ),
    };
    let detail = r.detail.trim().trim_end_matches('.');
    if !detail.is_empty() {
        sentence(&mut text, &format!("Detail: {detail}"));
    }
    let reasons: Vec<&str> = r
        .observation
        .as_ref()
        .and_then(|o| o.get("reasons"))
        .and_then(Value::as_array)
        .map(|reasons| {
            reasons
                .iter()
                .filter_map(Value::as_str)
                .filter(|reason| !detail.contains(reason))
                .collect()
        })
        .unwrap_or_default();
    if !reasons.is_empty() {
        sentence(&mut text, &format!("Reasons: {}", reasons.join("; ")));
    }
    match (&r.first_failed_at, r.consecutive_failures) {
        (Some(since), Some(count)) => sentence(
            &mut text,
            &format!("Failing since {since}, {count} consecutive failed check(s)"),
        ),
        (Some(since), None) => sentence(&mut text, &format!("Failing since {since}")),
        (None, Some(count)) => sentence(
            &mut text,
            &format!("{count} consecutive failed check(s) so far"),
        ),
        (None, None) => {}
    }
    if !r.recent_observations.is_empty() {
        let failing = r
            .recent_observations
            .iter()
            .filter(|o| o.get("status").and_then(Value::as_str) != Some("healthy"))
            .count();
        sentence(
            &mut text,
            &format!(
                "{failing} of the last {} observation(s) failed",
                r.recent_observations.len()
            ),
        );
    }
    match &r.last_good_at {
        Some(at) => sentence(&mut text, &format!("Last healthy observation: {at}")),
        None => sentence(&mut text, "No healthy observation is on record"),
    }
    other_issues(&mut text, r);
    envelope(&mut text, r);
    if let Some(runbook) = &r.runbook {
        sentence(&mut text, &format!("Runbook: {runbook}"));
    }
    text
}

fn resolved_summary(r: &InvestigationRequest) -> String {
    let mut text = format!(
        "Resolved: probe {} on {} recovered from {}.",
        r.probe,
        r.component,
        // The resolved row's title only says "recovered"; the category names what was wrong.
        if r.category.is_empty() {
            issue_name(r)
        } else {
            r.category.replace('_', " ")
        }
    );
    match open_for(r) {
        Some((opened, open)) => sentence(
            &mut text,
            &format!("The issue was open for {open} (since {opened})"),
        ),
        None => {
            if let Some(since) = &r.first_failed_at {
                sentence(&mut text, &format!("It had been failing since {since}"));
            }
        }
    }
    if let Some(count) = r.consecutive_failures {
        sentence(
            &mut text,
            &format!("It failed {count} consecutive check(s)"),
        );
    }
    other_issues(&mut text, r);
    if let Some(runbook) = &r.runbook {
        sentence(&mut text, &format!("Runbook: {runbook}"));
    }
    text
}

fn open_actions(r: &InvestigationRequest) -> Vec<String> {
    let mut actions = Vec::new();
    if let Some(runbook) = &r.runbook {
        actions.push(format!("Check the runbook: {runbook}"));
    }
    actions.push(format!(
        "Look at the probe's latest observations: GET /api/probes/{}",
        r.probe
    ));
    actions.push(format!("Read the issue's story: {}", audit_command(r)));
    if !r.open_issues.is_empty() {
        actions.push(format!(
            "Look at the other open issues on {} first; they may share a cause",
            r.component
        ));
    }
    match (r.envelope_status.as_str(), &r.envelope_action) {
        ("enabled", Some(_)) => actions.push(
            "Watch the audit log for the fix envelope's result before acting by hand".to_owned(),
        ),
        ("disabled", _) => actions.push(format!(
            "Fix {} by hand: its fix envelope is disabled",
            r.component
        )),
        _ => actions.push(format!(
            "Fix {} by hand: it has no fix envelope",
            r.component
        )),
    }
    actions
}

fn resolved_actions(r: &InvestigationRequest) -> Vec<String> {
    let mut actions = vec![
        format!("Confirm the recovery: GET /api/probes/{}", r.probe),
        format!("Review what happened: {}", audit_command(r)),
    ];
    if let Some(runbook) = &r.runbook {
        actions.push(format!("Note the cause and fix in the runbook: {runbook}"));
    }
    actions
}

/// `warden audit tail` starting at the issue's first row when known.
fn audit_command(r: &InvestigationRequest) -> String {
    let first = r
        .caller_session_id
        .as_deref()
        .and_then(|id| id.rsplit(':').next())
        .and_then(|seq| seq.parse::<u64>().ok());
    match first {
        Some(seq) => format!("warden audit tail --since {seq}"),
        None => "warden audit tail --seam 'probe.*'".to_owned(),
    }
}

fn issue_name(r: &InvestigationRequest) -> String {
    let title = r.title.trim().trim_end_matches('.');
    match (title.is_empty(), r.category.is_empty()) {
        (false, false) => format!("{title} (probe {}, {})", r.probe, r.category),
        (false, true) => format!("{title} (probe {})", r.probe),
        (true, false) => format!("{} on probe {}", r.category, r.probe),
        (true, true) => format!("a failure of probe {}", r.probe),
    }
}

fn other_issues(text: &mut String, r: &InvestigationRequest) {
    if r.open_issues.is_empty() {
        sentence(text, &format!("No other issue is open on {}", r.component));
        return;
    }
    let mut names: Vec<String> = r
        .open_issues
        .iter()
        .take(LISTED_ISSUES)
        .map(describe_issue)
        .collect();
    if r.open_issues.len() > LISTED_ISSUES {
        names.push(format!("and {} more", r.open_issues.len() - LISTED_ISSUES));
    }
    sentence(
        text,
        &format!(
            "{} other open issue(s) on {}: {}",
            r.open_issues.len(),
            r.component,
            names.join(", ")
        ),
    );
}

fn describe_issue(issue: &Value) -> String {
    let field = |key: &str| issue.get(key).and_then(Value::as_str);
    match (field("title"), field("probe"), field("category")) {
        (Some(title), Some(probe), _) => format!("{title} (probe {probe})"),
        (Some(title), None, _) => title.to_owned(),
        (None, Some(probe), Some(category)) => format!("{category} on probe {probe}"),
        (None, Some(probe), None) => format!("probe {probe}"),
        (None, None, Some(category)) => category.to_owned(),
        (None, None, None) => issue.to_string(),
    }
}

fn envelope(text: &mut String, r: &InvestigationRequest) {
    let action = r
        .envelope_action
        .as_deref()
        .map(|a| a.trim().trim_end_matches('.'))
        .filter(|a| !a.is_empty());
    let line = match (r.envelope_status.as_str(), action) {
        ("enabled", Some(action)) => format!(
            "The fix envelope will {action} unless Warden is paused or an incident freezes {}",
            r.component
        ),
        ("enabled", None) => {
            "The fix envelope is enabled but has no action for this issue".to_owned()
        }
        ("disabled", Some(action)) => format!(
            "The fix envelope is disabled, so nothing will be done automatically (it would {action})"
        ),
        ("disabled", None) => {
            "The fix envelope is disabled, so nothing will be done automatically".to_owned()
        }
        ("" | "absent" | "not_configured", _) => format!(
            "{} has no fix envelope, so nothing will be done automatically",
            r.component
        ),
        (status, Some(action)) => format!("Fix envelope: {status} (it would {action})"),
        (status, None) => format!("Fix envelope: {status}"),
    };
    sentence(text, &line);
}

/// How long the issue was open, from the request's own timestamps only:
/// first failure (or earliest related row) to the latest row or observation.
fn open_for(r: &InvestigationRequest) -> Option<(String, String)> {
    let times = r
        .related_rows
        .iter()
        .filter_map(|row| row.get("ts").and_then(Value::as_str))
        .chain(
            r.observation
                .as_ref()
                .and_then(|o| o.get("at"))
                .and_then(Value::as_str),
        )
        .filter_map(|text| text.parse::<jiff::Timestamp>().ok().map(|at| (at, text)));
    let (mut earliest, mut latest): (Option<(jiff::Timestamp, &str)>, Option<jiff::Timestamp>) =
        (None, None);
    for (at, text) in times {
        if earliest.is_none_or(|(e, _)| at < e) {
            earliest = Some((at, text));
        }
        if latest.is_none_or(|l| at > l) {
            latest = Some(at);
        }
    }
    let first = r
        .first_failed_at
        .as_deref()
        .and_then(|text| text.parse::<jiff::Timestamp>().ok().map(|at| (at, text)));
    let (opened, opened_text) = match (first, earliest) {
        (Some(first), Some(earliest)) if earliest.0 < first.0 => earliest,
        (Some(first), _) => first,
        (None, Some(earliest)) => earliest,
        (None, None) => return None,
    };
    let latest = latest?;
    let seconds = latest.duration_since(opened).as_secs();
    if seconds <= 0 {
        return None;
    }
    let open = humantime::format_duration(Duration::from_secs(seconds.unsigned_abs()));
    Some((opened_text.to_owned(), open.to_string()))
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Appends `line` as one more sentence.
fn sentence(text: &mut String, line: &str) {
    if !text.is_empty() {
        text.push(' ');
    }
    text.push_str(line);
    text.push('.');
}
