//! Validation of `[[notifiers]]`: per notifier, and the fields each kind needs.

use super::*;

pub(super) fn notifiers(settings: &Settings, problems: &mut Problems) {
    let mut seen = BTreeSet::new();
    for (index, notifier) in settings.notifiers.iter().enumerate() {
        let at = format!("notifiers[{index}]");
        name_rules(
            problems,
            format!("{at}.name"),
            &notifier.name,
            &mut seen,
            "notifier",
        );
        positive(problems, &format!("{at}.timeout"), notifier.timeout);
        if notifier.backoff_min > notifier.backoff_max {
            problems.push(
                format!("{at}.backoff_min"),
                format!("must not exceed {at}.backoff_max"),
            );
        }
        if notifier.secret.is_some() && notifier.secret_file.is_some() {
            problems.push(
                format!("{at}.secret"),
                "set either secret or secret_file, not both",
            );
        }
        if notifier.routing_key.is_some() && notifier.routing_key_file.is_some() {
            problems.push(
                format!("{at}.routing_key"),
                "set either routing_key or routing_key_file, not both",
            );
        }
        if let Some(url) = notifier.dashboard_url.as_deref()
            && !http_url(url)
        {
            problems.push(
                format!("{at}.dashboard_url"),
                format!("\"{url}\" is not an http(s) URL"),
            );
        }
        for (at_matcher, matcher) in notifier.matchers.iter().enumerate() {
            if let Err(reason) = crate::settings::Matcher::parse(matcher) {
                problems.push(format!("{at}.matchers[{at_matcher}]"), reason);
            }
        }
        match notifier.kind {
            None => problems.push(
                format!("{at}.kind"),
                "is required (log, webhook, slack or pagerduty)",
            ),
            Some(kind) => notifier_kind_fields(problems, &at, kind, notifier),
        }
    }
}

pub(super) fn notifier_kind_fields(
    problems: &mut Problems,
    at: &str,
    kind: NotifierKind,
    notifier: &NotifierSettings,
) {
    let uses = |field: &str| match field {
        "url" => kind != NotifierKind::Log,
        "url_file" => kind != NotifierKind::Log,
        "secret" | "secret_file" | "headers" | "headers_files" => kind == NotifierKind::Webhook,
        "routing_key" | "routing_key_file" => kind == NotifierKind::Pagerduty,
        "channel" => kind == NotifierKind::Slack,
        _ => true,
    };
    let given = [
        ("url", notifier.url.is_some() && notifier.url_file.is_none()),
        ("url_file", notifier.url_file.is_some()),
        ("secret", notifier.secret.is_some()),
        ("secret_file", notifier.secret_file.is_some()),
        (
            "headers",
            notifier.headers.len() > notifier.headers_files.len(),
        ),
        ("headers_files", !notifier.headers_files.is_empty()),
        ("routing_key", notifier.routing_key.is_some()),
        ("routing_key_file", notifier.routing_key_file.is_some()),
        ("channel", notifier.channel.is_some()),
    ];
    for (field, present) in given {
        if present && !uses(field) {
            problems.push(
                format!("{at}.{field}"),
                format!("is not used by kind {}", kind.as_str()),
            );
        }
    }
    match (kind, notifier.url.as_ref().map(SecretUrl::expose)) {
        (NotifierKind::Log | NotifierKind::Pagerduty, None) => {}
        (NotifierKind::Webhook | NotifierKind::Slack, None) => problems.push(
            format!("{at}.url"),
            format!("is required for kind {}", kind.as_str()),
        ),
        (_, Some(url)) => {
            if !http_url(url) {
                problems.push(
                    format!("{at}.url"),
                    format!("\"{}\" is not an http(s) URL", redact_url(url, false)),
                );
            }
        }
    }
    if kind == NotifierKind::Pagerduty
        && notifier.routing_key.is_none()
        && notifier.routing_key_file.is_none()
    {
        problems.push(
            format!("{at}.routing_key"),
            "kind pagerduty needs routing_key or routing_key_file",
        );
    }
}

pub(super) fn http_url(url: &str) -> bool {
    url.parse::<axum::http::Uri>()
        .is_ok_and(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some())
}
