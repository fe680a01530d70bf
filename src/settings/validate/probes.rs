//! Validation of `[[probes]]`: what every probe shares (name, cadence,
//! categories, conditions). Each kind checks its own keys in its file under
//! `src/probes/`, reached through [`crate::probes::validate_kind_keys`].

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
            None => problems.push(format!("{at}.kind"), format!("is required ({})", kinds())),
            Some(kind) => crate::probes::validate_kind_keys(kind, probe, &at, problems),
        }
    }
}

/// The kinds as a list for messages: `http, tcp, … or dns`.
fn kinds() -> String {
    let names: Vec<&str> = ProbeKind::ALL.iter().map(|kind| kind.as_str()).collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}
