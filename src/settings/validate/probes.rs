//! Validation of `[[probes]]`: per probe, and the fields each kind needs.

use super::*;

pub(super) fn probes(settings: &Settings, problems: &mut Problems) {
    let defaults = &settings.probe_defaults;
    if defaults.interval < MIN_INTERVAL {
        problems.push("probe_defaults.interval", "must be at least 100ms");
    }
    positive(problems, "probe_defaults.timeout", defaults.timeout);
    let mut seen = BTreeSet::new();
    for (index, probe) in settings.probes.iter().enumerate() {
        let at = format!("probes[{index}]");
        name_rules(
            problems,
            format!("{at}.name"),
            &probe.name,
            &mut seen,
            "probe",
        );
        let interval = probe.interval.unwrap_or(defaults.interval);
        let timeout = probe.timeout.unwrap_or(defaults.timeout);
        if probe.interval.is_some() && interval < MIN_INTERVAL {
            problems.push(format!("{at}.interval"), "must be at least 100ms");
        }
        if timeout.is_zero() {
            problems.push(format!("{at}.timeout"), "must be greater than zero");
        } else if timeout > interval {
            problems.push(
                format!("{at}.timeout"),
                format!(
                    "({}) must not exceed the interval ({})",
                    humantime::format_duration(timeout),
                    humantime::format_duration(interval)
                ),
            );
        }
        for (key, category) in [
            ("category", &probe.category),
            ("degraded_category", &probe.degraded_category),
        ] {
            if let Some(category) = category
                && !valid_category(category)
            {
                problems.push(
                    format!("{at}.{key}"),
                    "use 1-64 characters from a-z, 0-9 and '_'",
                );
            }
        }
        debounce_rules(
            problems,
            &format!("{at}.debounce"),
            &settings.debounce.with(&probe.debounce),
        );
        for (key, list) in [
            ("unhealthy_if", &probe.unhealthy_if),
            ("degraded_if", &probe.degraded_if),
        ] {
            for (c, expression) in list.iter().enumerate() {
                if let Err(error) = crate::probes::classify::parse(expression) {
                    problems.push(
                        format!("{at}.{key}[{c}]"),
                        format!("invalid condition \"{expression}\": {error}"),
                    );
                }
            }
        }
        match probe.kind {
            None => problems.push(
                format!("{at}.kind"),
                "is required (http, tcp, command, heartbeat or credential_expiry)",
            ),
            Some(kind) => probe_kind_fields(problems, &at, kind, probe),
        }
    }
}

pub(super) fn probe_kind_fields(
    problems: &mut Problems,
    at: &str,
    kind: ProbeKind,
    probe: &ProbeSettings,
) {
    let uses = |field: &str| match field {
        "url" | "method" | "headers" | "headers_files" | "body" | "expect_status"
        | "max_body_bytes" | "max_redirects" => kind == ProbeKind::Http,
        "address" => kind == ProbeKind::Tcp,
        "command" => kind == ProbeKind::Command,
        "max_silence" => kind == ProbeKind::Heartbeat,
        "expires_at" | "expires_at_file" | "expires_at_env" | "alert_days" => {
            kind == ProbeKind::CredentialExpiry
        }
        _ => true,
    };
    let given = [
        ("url", probe.url.is_some()),
        ("method", probe.method.is_some()),
        ("headers", probe.headers.len() > probe.headers_files.len()),
        ("headers_files", !probe.headers_files.is_empty()),
        ("body", probe.body.is_some()),
        ("expect_status", probe.expect_status.is_some()),
        ("max_body_bytes", probe.max_body_bytes.is_some()),
        ("max_redirects", probe.max_redirects.is_some()),
        ("address", probe.address.is_some()),
        ("command", !probe.command.is_empty()),
        ("max_silence", probe.max_silence.is_some()),
        ("expires_at", probe.expires_at.is_some()),
        ("expires_at_file", probe.expires_at_file.is_some()),
        ("expires_at_env", probe.expires_at_env.is_some()),
        ("alert_days", probe.alert_days.is_some()),
    ];
    for (field, present) in given {
        if present && !uses(field) {
            problems.push(
                format!("{at}.{field}"),
                format!("is not used by kind {}", kind.as_str()),
            );
        }
    }
    match kind {
        ProbeKind::Http => match probe.url.as_deref() {
            None => problems.push(format!("{at}.url"), "is required for kind http"),
            Some(url) => match url.parse::<axum::http::Uri>() {
                Ok(uri)
                    if matches!(uri.scheme_str(), Some("http" | "https"))
                        && uri.host().is_some() => {}
                _ => problems.push(
                    format!("{at}.url"),
                    format!("\"{}\" is not an http(s) URL", redact_url(url, false)),
                ),
            },
        },
        ProbeKind::Tcp => match probe.address.as_deref() {
            None => problems.push(format!("{at}.address"), "is required for kind tcp"),
            Some(address) => {
                let port_ok = address.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
                });
                if !port_ok {
                    problems.push(
                        format!("{at}.address"),
                        format!("\"{address}\" is not host:port"),
                    );
                }
            }
        },
        ProbeKind::Command => {
            if probe
                .command
                .first()
                .is_none_or(|program| program.is_empty())
            {
                problems.push(
                    format!("{at}.command"),
                    "is required for kind command (an argv list)",
                );
            }
        }
        ProbeKind::Heartbeat => match probe.max_silence {
            None => problems.push(
                format!("{at}.max_silence"),
                "is required for kind heartbeat",
            ),
            Some(silence) if silence.is_zero() => {
                problems.push(format!("{at}.max_silence"), "must be greater than zero")
            }
            Some(_) => {}
        },
        ProbeKind::CredentialExpiry => {
            let sources = [
                probe.expires_at.is_some(),
                probe.expires_at_file.is_some(),
                probe.expires_at_env.is_some(),
            ];
            match sources.iter().filter(|given| **given).count() {
                0 => problems.push(
                    format!("{at}.expires_at"),
                    "kind credential_expiry needs one of expires_at, expires_at_file or expires_at_env",
                ),
                1 => {}
                _ => problems.push(
                    format!("{at}.expires_at"),
                    "set only one of expires_at, expires_at_file and expires_at_env",
                ),
            }
            if let Some(when) = probe.expires_at.as_deref()
                && when.parse::<jiff::Timestamp>().is_err()
            {
                problems.push(
                    format!("{at}.expires_at"),
                    format!("\"{when}\" is not an RFC 3339 time such as 2026-12-18T00:00:00Z"),
                );
            }
            if probe.alert_days.as_ref().is_some_and(Vec::is_empty) {
                problems.push(format!("{at}.alert_days"), "must list at least one day");
            }
        }
    }
}
