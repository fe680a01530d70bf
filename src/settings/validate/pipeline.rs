//! Validation of the pipeline's sections: `[debounce]` (and each probe's
//! override), `[[maintenance]]`, `[wake]`, `[investigator]` and
//! `[incidents]`.

use super::*;

pub(super) fn debounce_rules(
    problems: &mut Problems,
    at: &str,
    d: &crate::settings::DebounceSettings,
) {
    if d.failure_threshold == 0 {
        problems.push(format!("{at}.failure_threshold"), "must be at least 1");
    }
    if d.recovery_threshold == 0 {
        problems.push(format!("{at}.recovery_threshold"), "must be at least 1");
    }
    if d.remind_after.is_zero() {
        problems.push(format!("{at}.remind_after"), "must be greater than zero");
    }
    if d.remind_max < d.remind_after {
        problems.push(format!("{at}.remind_max"), "must be at least remind_after");
    }
    if d.flap_threshold == 0 {
        problems.push(format!("{at}.flap_threshold"), "must be at least 1");
    }
    if d.flap_window.is_zero() {
        problems.push(format!("{at}.flap_window"), "must be greater than zero");
    }
}

pub(super) fn debounce(settings: &Settings, problems: &mut Problems) {
    debounce_rules(problems, "debounce", &settings.debounce);
}

pub(super) fn valid_category(category: &str) -> bool {
    !category.is_empty()
        && category.len() <= 64
        && category
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub(super) fn maintenance(settings: &Settings, problems: &mut Problems) {
    let components: BTreeSet<&str> = settings
        .components
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let mut seen = BTreeSet::new();
    for (index, window) in settings.maintenance.iter().enumerate() {
        let at = format!("maintenance[{index}]");
        name_rules(
            problems,
            format!("{at}.name"),
            &window.name,
            &mut seen,
            "maintenance window",
        );
        for (c, component) in window.components.iter().enumerate() {
            let implicit = settings
                .probes
                .iter()
                .any(|p| p.component_name() == component);
            if !components.contains(component.as_str()) && !implicit {
                problems.push(
                    format!("{at}.components[{c}]"),
                    format!("unknown component \"{component}\""),
                );
            }
        }
        for (key, message) in crate::debounce::maintenance::check(window) {
            problems.push(format!("{at}.{key}"), message);
        }
    }
}

pub(super) fn wake(settings: &Settings, problems: &mut Problems) {
    let wake = &settings.wake;
    if wake.max_concurrency == 0 {
        problems.push("wake.max_concurrency", "must be at least 1");
    }
    if wake.max_in_flight < wake.max_concurrency {
        problems.push(
            "wake.max_in_flight",
            "must be at least wake.max_concurrency",
        );
    }
    positive(problems, "wake.redeliver_every", wake.redeliver_every);
    if wake.history == 0 || wake.history > 1000 {
        problems.push("wake.history", "must be between 1 and 1000");
    }
}

pub(super) fn investigator(settings: &Settings, problems: &mut Problems) {
    let inv = &settings.investigator;
    match inv.kind {
        InvestigatorKind::None => {}
        InvestigatorKind::Webhook => match inv.url.as_ref().map(SecretUrl::expose) {
            None => problems.push("investigator.url", "is required for kind webhook"),
            Some(url) => check_http_url(problems, "investigator.url", url),
        },
        InvestigatorKind::Openai => {
            match inv.base_url.as_ref().map(SecretUrl::expose) {
                None => problems.push("investigator.base_url", "is required for kind openai"),
                Some(url) => check_http_url(problems, "investigator.base_url", url),
            }
            if inv
                .model
                .as_deref()
                .is_none_or(|model| model.trim().is_empty())
            {
                problems.push("investigator.model", "is required for kind openai");
            }
        }
    }
    positive(problems, "investigator.timeout", inv.timeout);
    if !inv.daily_budget_usd.is_finite() || inv.daily_budget_usd < 0.0 {
        problems.push(
            "investigator.daily_budget_usd",
            "must be a finite number of at least 0",
        );
    }
    for (key, price) in [
        (
            "investigator.price_in_per_mtok_usd",
            inv.price_in_per_mtok_usd,
        ),
        (
            "investigator.price_out_per_mtok_usd",
            inv.price_out_per_mtok_usd,
        ),
    ] {
        if !price.is_finite() || price < 0.0 {
            problems.push(key, "must be a finite number of at least 0");
        }
    }
    let sources = [
        inv.api_key.is_some(),
        inv.api_key_file.is_some(),
        inv.api_key_env.is_some(),
    ];
    if sources.iter().filter(|given| **given).count() > 1 {
        problems.push(
            "investigator.api_key",
            "set only one of api_key, api_key_file and api_key_env",
        );
    }
    if let Some(name) = inv.api_key_env.as_deref()
        && name.is_empty()
    {
        problems.push("investigator.api_key_env", "must not be empty");
    }
}

pub(super) fn check_http_url(problems: &mut Problems, key: &str, url: &str) {
    match url.parse::<axum::http::Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {}
        _ => problems.push(
            key,
            format!("\"{}\" is not an http(s) URL", redact_url(url, false)),
        ),
    }
}

pub(super) fn incidents(settings: &Settings, problems: &mut Problems) {
    let incidents = &settings.incidents;
    let cycles = incidents.resolve_after_healthy_cycles as usize;
    if cycles == 0 {
        problems.push(
            "incidents.resolve_after_healthy_cycles",
            "must be at least 1",
        );
    } else if cycles > settings.wake.history {
        // Only `wake.history` observations are kept per probe, so more could never be seen.
        problems.push(
            "incidents.resolve_after_healthy_cycles",
            format!(
                "must be at most wake.history ({}), the observations kept per probe",
                settings.wake.history
            ),
        );
    }
    for (key, cadence) in incidents.cadence.entries() {
        if let Some(cadence) = cadence
            && cadence < Duration::from_secs(1)
        {
            problems.push(
                format!("incidents.cadence.{key}"),
                "must be at least 1s (or \"none\")",
            );
        }
    }
    positive(
        problems,
        "incidents.related_window",
        incidents.related_window,
    );
    if !(1..=100_000).contains(&incidents.evidence_rows) {
        problems.push("incidents.evidence_rows", "must be between 1 and 100000");
    }
    // Ids are dated by the day an incident opened and reuse a free number:
    // a folder removed the same day would let its id be handed out again.
    if let Some(keep) = incidents.retain_for
        && keep < Duration::from_secs(24 * 3600)
    {
        problems.push("incidents.retain_for", "must be at least 1d (or \"none\")");
    }
}
