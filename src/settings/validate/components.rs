//! Validation of `[[components]]`: names and probes, the managed process,
//! the fix envelope, the tiers and the patch allow-list.

use super::*;

pub(super) fn components(settings: &Settings, problems: &mut Problems) {
    let probe_names: BTreeMap<&str, &ProbeSettings> = settings
        .probes
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    let component_names: BTreeSet<&str> = settings
        .components
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let notifier_names: BTreeSet<&str> =
        settings.notifiers.iter().map(|n| n.name.as_str()).collect();
    let mut seen = BTreeSet::new();
    // The first component that lists each probe: a probe belongs to one.
    let mut first_lister: BTreeMap<&str, &str> = BTreeMap::new();
    for (index, component) in settings.components.iter().enumerate() {
        let at = format!("components[{index}]");
        for (p, probe) in component.probes.iter().enumerate() {
            match first_lister.get(probe.as_str()) {
                Some(other) if *other != component.name => problems.push(
                    format!("{at}.probes[{p}]"),
                    format!(
                        "probe \"{probe}\" is already listed by component \"{other}\"; a probe belongs to one component"
                    ),
                ),
                Some(_) => {}
                None => {
                    first_lister.insert(probe, &component.name);
                }
            }
        }
        name_rules(
            problems,
            format!("{at}.name"),
            &component.name,
            &mut seen,
            "component",
        );
        for (p, probe) in component.probes.iter().enumerate() {
            match probe_names.get(probe.as_str()) {
                None => problems.push(
                    format!("{at}.probes[{p}]"),
                    format!("unknown probe \"{probe}\""),
                ),
                Some(found)
                    if found
                        .component
                        .as_deref()
                        .is_some_and(|c| c != component.name) =>
                {
                    problems.push(
                        format!("{at}.probes[{p}]"),
                        format!(
                            "probe \"{probe}\" sets component = \"{}\", but a probe listed by component \"{}\" belongs to it: drop the probe's `component` or list it under \"{}\"",
                            found.component_name(),
                            component.name,
                            found.component_name()
                        ),
                    )
                }
                Some(_) => {}
            }
        }
        for (d, dependency) in component.depends_on.iter().enumerate() {
            if dependency == &component.name {
                problems.push(
                    format!("{at}.depends_on[{d}]"),
                    "a component cannot depend on itself",
                );
            } else if !component_names.contains(dependency.as_str()) {
                problems.push(
                    format!("{at}.depends_on[{d}]"),
                    format!("unknown component \"{dependency}\""),
                );
            }
        }
        component_process(problems, &at, component);
        component_fix(problems, &at, component);
        component_tiers(problems, &at, component, &notifier_names);
        component_patch(problems, &at, component);
        for (s, path) in component.rollback.snapshot.iter().enumerate() {
            // Absolute only: Warden's cwd differs between a shell and a
            // service manager, and a rollback must restore the file it copied.
            if !path.is_absolute() {
                problems.push(
                    format!("{at}.rollback.snapshot[{s}]"),
                    format!("\"{}\" must be an absolute path", path.display()),
                );
            }
        }
    }
    if let Some(cycle) = dependency_cycle(settings) {
        problems.push(
            "components",
            format!("depends_on forms a cycle: {}", cycle.join(" -> ")),
        );
    }
}

/// `[components.patch]`: absolute globs that compile, and a positive size cap.
pub(super) fn component_patch(problems: &mut Problems, at: &str, component: &ComponentSettings) {
    for (g, pattern) in component.patch.paths.iter().enumerate() {
        if let Err(reason) = crate::escalation::patches::glob(pattern) {
            problems.push(format!("{at}.patch.paths[{g}]"), reason);
        }
    }
    if component.patch.max_bytes.as_u64() == 0 {
        problems.push(format!("{at}.patch.max_bytes"), "must be at least 1B");
    }
}

/// The signals a managed process may be asked to stop with.
pub(super) const STOP_SIGNALS: [&str; 6] = ["TERM", "INT", "HUP", "QUIT", "USR1", "USR2"];

/// Whether `signal` names one of [`STOP_SIGNALS`], case-insensitively and
/// with or without the `SIG` prefix.
pub(crate) fn valid_stop_signal(signal: &str) -> bool {
    let upper = signal.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    STOP_SIGNALS.contains(&bare)
}

/// The managed-process keys: `run`, `stop_signal`, timeouts, restart ladder, logs.
pub(super) fn component_process(problems: &mut Problems, at: &str, component: &ComponentSettings) {
    if component.run.first().is_some_and(String::is_empty) {
        problems.push(
            format!("{at}.run"),
            "the program (run[0]) must not be empty",
        );
    }
    if !valid_stop_signal(&component.stop_signal) {
        problems.push(
            format!("{at}.stop_signal"),
            format!(
                "\"{}\" is not one of TERM, INT, HUP, QUIT, USR1, USR2",
                component.stop_signal
            ),
        );
    }
    positive(
        problems,
        &format!("{at}.stop_timeout"),
        component.stop_timeout,
    );
    positive(
        problems,
        &format!("{at}.start_timeout"),
        component.start_timeout,
    );
    // A managed process needs at least one restart before it is FATAL.
    if component.restart.max_restarts == 0 {
        problems.push(format!("{at}.restart.max_restarts"), "must be at least 1");
    }
    restart_policy(problems, &format!("{at}.restart"), &component.restart);
    if component.log_files == 0 {
        problems.push(format!("{at}.log_files"), "must be at least 1");
    }
    if component.log_max_bytes.as_u64() < 1024 {
        problems.push(format!("{at}.log_max_bytes"), "must be at least 1KiB");
    }
}

/// `[components.fix]`: the envelope and its action's per-kind fields.
pub(super) fn component_fix(problems: &mut Problems, at: &str, component: &ComponentSettings) {
    let fix = &component.fix;
    let at = format!("{at}.fix");
    if fix.attempts == 0 {
        problems.push(format!("{at}.attempts"), "must be at least 1");
    }
    positive(problems, &format!("{at}.cooldown"), fix.cooldown);
    positive(
        problems,
        &format!("{at}.verify_timeout"),
        fix.verify_timeout,
    );
    let action = &fix.action;
    if let Some(timeout) = action.timeout {
        positive(problems, &format!("{at}.action.timeout"), timeout);
    }
    let Some(kind) = action.kind else {
        if fix.enabled {
            problems.push(
                format!("{at}.action.kind"),
                "is required when fix.enabled is true (restart, command or http)",
            );
        }
        return;
    };
    let name = kind.as_str();
    let uses = |field: &str| match field {
        "command" => kind == FixKind::Command,
        "url" | "method" | "headers" | "headers_files" | "body" => kind == FixKind::Http,
        _ => true,
    };
    let given = [
        ("command", !action.command.is_empty()),
        ("url", action.url.is_some()),
        ("method", action.method.is_some()),
        ("headers", action.headers.len() > action.headers_files.len()),
        ("headers_files", !action.headers_files.is_empty()),
        ("body", action.body.is_some()),
    ];
    for (field, present) in given {
        if present && !uses(field) {
            problems.push(
                format!("{at}.action.{field}"),
                format!("is not used by kind {name}"),
            );
        }
    }
    match kind {
        FixKind::Restart => {
            if !component.is_managed() {
                problems.push(
                    format!("{at}.action.kind"),
                    "kind restart needs a managed component (set run)",
                );
            }
        }
        FixKind::Command => {
            if action.command.first().is_none_or(String::is_empty) {
                problems.push(
                    format!("{at}.action.command"),
                    "is required for kind command (an argv list)",
                );
            }
        }
        FixKind::Http => {
            match action.url.as_deref() {
                None => problems.push(format!("{at}.action.url"), "is required for kind http"),
                Some(url) => check_http_url(problems, &format!("{at}.action.url"), url),
            }
            if let Some(method) = action.method.as_deref()
                && axum::http::Method::from_bytes(method.as_bytes()).is_err()
            {
                problems.push(
                    format!("{at}.action.method"),
                    format!("\"{method}\" is not an HTTP method"),
                );
            }
        }
    }
}

/// `[[components.tiers]]`: names, kinds and per-kind fields.
pub(super) fn component_tiers(
    problems: &mut Problems,
    at: &str,
    component: &ComponentSettings,
    notifiers: &BTreeSet<&str>,
) {
    let mut seen = BTreeSet::new();
    for (index, tier) in component.tiers.iter().enumerate() {
        let at = format!("{at}.tiers[{index}]");
        name_rules(
            problems,
            format!("{at}.name"),
            &tier.name,
            &mut seen,
            "tier",
        );
        if tier.attempts == Some(0) {
            problems.push(format!("{at}.attempts"), "must be at least 1");
        }
        if let Some(timeout) = tier.timeout {
            positive(problems, &format!("{at}.timeout"), timeout);
        }
        match tier.kind {
            None => problems.push(format!("{at}.kind"), "is required (webhook or notifier)"),
            Some(TierKind::Webhook) => {
                if tier.notifier.is_some() {
                    problems.push(format!("{at}.notifier"), "is not used by kind webhook");
                }
                match tier.url.as_ref().map(SecretUrl::expose) {
                    None => problems.push(format!("{at}.url"), "is required for kind webhook"),
                    Some(url) => {
                        check_http_url(problems, &format!("{at}.url"), url);
                        tier_transport(problems, &at, url, tier.allow_insecure_http);
                    }
                }
                header_names(problems, &format!("{at}.headers"), tier.headers.keys());
            }
            Some(TierKind::Notifier) => {
                for (field, given) in [
                    ("url", tier.url.is_some() && tier.url_file.is_none()),
                    ("url_file", tier.url_file.is_some()),
                    (
                        "headers",
                        tier.headers.len()
                            > tier.headers_files.len()
                                + usize::from(tier.bearer_token_file.is_some()),
                    ),
                    ("headers_files", !tier.headers_files.is_empty()),
                    ("bearer_token_file", tier.bearer_token_file.is_some()),
                    ("allow_insecure_http", tier.allow_insecure_http),
                ] {
                    if given {
                        problems.push(format!("{at}.{field}"), "is not used by kind notifier");
                    }
                }
                match tier.notifier.as_deref() {
                    None => {
                        problems.push(format!("{at}.notifier"), "is required for kind notifier")
                    }
                    Some(name) if !notifiers.contains(name) => problems.push(
                        format!("{at}.notifier"),
                        format!("unknown notifier \"{name}\""),
                    ),
                    Some(_) => {}
                }
            }
        }
    }
}

/// A tier can act on the system and carries credentials, so it is reached
/// over TLS unless it runs on this host or the operator opts out by name.
pub(super) fn tier_transport(
    problems: &mut Problems,
    at: &str,
    url: &str,
    allow_insecure_http: bool,
) {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return;
    };
    if parsed.scheme() != "http" || allow_insecure_http {
        return;
    }
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        problems.push(
            format!("{at}.url"),
            format!(
                "\"{}\" is plain http to a host that is not loopback; use https, or set {at}.allow_insecure_http = true",
                redact_url(url, false)
            ),
        );
    }
}

/// Each header name must be a valid HTTP header name.
pub(super) fn header_names<'a>(
    problems: &mut Problems,
    at: &str,
    names: impl Iterator<Item = &'a String>,
) {
    for name in names {
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.push(format!("{at}.{name}"), "is not a valid HTTP header name");
        }
    }
}
