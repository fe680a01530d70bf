//! Semantic checks that serde cannot express: ranges, required-per-kind
//! fields, uniqueness and cross-references. Every problem is collected, each
//! with the key path an operator would edit.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use super::InvestigatorKind;
use super::components::{ComponentSettings, FixKind, TierKind};
use super::{
    NotifierKind, NotifierSettings, ProbeKind, ProbeSettings, SecretUrl, Settings, redact_url,
};

/// The shortest probe interval Warden accepts; faster polling is load, not insight.
mod components;
mod notifiers;
mod probes;

#[cfg(test)]
pub(crate) use components::valid_stop_signal;
use components::*;
use notifiers::*;
use probes::*;

const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a key path (`probes[2].interval`); empty for the file as a whole.
    pub key: String,
    /// What is wrong, in lowercase words.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// The problems found so far; each check pushes into it rather than
/// stopping, so one pass reports every bad key.
#[derive(Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    /// Records that `key` is wrong, and why.
    pub(crate) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(key, message));
    }
}

/// Every semantic problem in `settings`.
pub(crate) fn validate(settings: &Settings) -> Vec<Problem> {
    let mut problems = Problems::default();
    service(settings, &mut problems);
    audit(settings, &mut problems);
    telemetry(settings, &mut problems);
    supervision(settings, &mut problems);
    debounce(settings, &mut problems);
    probes(settings, &mut problems);
    components(settings, &mut problems);
    maintenance(settings, &mut problems);
    wake(settings, &mut problems);
    notifiers(settings, &mut problems);
    investigator(settings, &mut problems);
    incidents(settings, &mut problems);
    listener_hardening(settings, &mut problems);
    if settings.chaos.enabled && !settings.service.has_operator_token() {
        problems.push(
            "chaos.enabled",
            "the chaos surface refuses every call without an operator token; configure service.operator_token_file (or operator_tokens)",
        );
    }
    problems.0
}

fn service(settings: &Settings, problems: &mut Problems) {
    let service = &settings.service;
    if service.state_dir.as_os_str().is_empty() {
        problems.push("service.state_dir", "must not be empty");
    }
    if service.operator_token.is_some() && service.operator_token_file.is_some() {
        problems.push(
            "service.operator_token",
            "set either operator_token or operator_token_file, not both",
        );
    }
    if let Some(token) = &service.operator_token
        && token.expose().trim().len() < 16
    {
        problems.push("service.operator_token", "must be at least 16 characters");
    }
    for (i, token) in service.operator_tokens.iter().enumerate() {
        if token.expose().trim().len() < 16 {
            problems.push(
                format!("service.operator_tokens[{i}]"),
                "must be at least 16 characters",
            );
        }
    }
    if !service.api_listen.ip().is_loopback() && !service.has_operator_token() {
        problems.push(
            "service.api_listen",
            format!(
                "{} is not a loopback address and no operator token is configured; set service.operator_token_file (or operator_tokens) or listen on 127.0.0.1",
                service.api_listen
            ),
        );
    }
    let known = super::dr::lexical(&settings.dr.known_epoch_path(&service.state_dir));
    if known.starts_with(super::dr::lexical(&service.state_dir)) {
        problems.push(
            "dr.known_epoch_path",
            "must not be inside service.state_dir (a restored state dir would restore it too)",
        );
    }
    positive(
        problems,
        "service.shutdown_timeout",
        service.shutdown_timeout,
    );
    positive(problems, "service.call_timeout", service.call_timeout);
}

fn audit(settings: &Settings, problems: &mut Problems) {
    let audit = &settings.audit;
    if !(1..=65_536).contains(&audit.batch_max) {
        problems.push("audit.batch_max", "must be between 1 and 65536");
    }
    if audit.rotate_bytes.as_u64() < 4096 {
        problems.push("audit.rotate_bytes", "must be at least 4KiB");
    }
    if let Some(keep) = audit.retain_for
        && keep < Duration::from_secs(60)
    {
        problems.push("audit.retain_for", "must be at least 1m (or \"none\")");
    }
    if let Some(limit) = audit.retain_bytes
        && limit < audit.rotate_bytes
    {
        problems.push(
            "audit.retain_bytes",
            format!(
                "must be at least audit.rotate_bytes ({}) (or \"none\")",
                audit.rotate_bytes
            ),
        );
    }
}

fn telemetry(settings: &Settings, problems: &mut Problems) {
    let t = &settings.telemetry;
    if !(0.0..=1.0).contains(&t.sample_ratio) {
        problems.push("telemetry.sample_ratio", "must be between 0.0 and 1.0");
    }
    if !t.otlp_endpoint.is_empty() && !http_url(&t.otlp_endpoint) {
        problems.push(
            "telemetry.otlp_endpoint",
            format!("\"{}\" is not an http(s) URL", t.otlp_endpoint),
        );
    }
    if t.service_name.trim().is_empty() {
        problems.push("telemetry.service_name", "must not be empty");
    }
    if let Err(error) = tracing_subscriber::EnvFilter::try_new(&settings.telemetry.log_level) {
        problems.push(
            "telemetry.log_level",
            format!("not a valid filter: {error}"),
        );
    }
}

fn supervision(settings: &Settings, problems: &mut Problems) {
    let s = &settings.supervision;
    positive(
        problems,
        "supervision.child_shutdown_timeout",
        s.child_shutdown_timeout,
    );
    // `max_restarts = 0` is allowed here: any failure escalates.
    restart_policy(problems, "supervision", &s.restart);
}

/// The rules both restart policies share; `at` is where their keys sit.
fn restart_policy(problems: &mut Problems, at: &str, restart: &super::RestartSettings) {
    positive(problems, &format!("{at}.period"), restart.period);
    if restart.backoff_min > restart.backoff_max {
        problems.push(
            format!("{at}.backoff_min"),
            format!("must not exceed {at}.backoff_max"),
        );
    }
    if !(0.0..=1.0).contains(&restart.backoff_jitter) {
        problems.push(
            format!("{at}.backoff_jitter"),
            "must be between 0.0 and 1.0",
        );
    }
}

fn debounce_rules(problems: &mut Problems, at: &str, d: &super::DebounceSettings) {
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

fn debounce(settings: &Settings, problems: &mut Problems) {
    debounce_rules(problems, "debounce", &settings.debounce);
}

fn valid_category(category: &str) -> bool {
    !category.is_empty()
        && category.len() <= 64
        && category
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn maintenance(settings: &Settings, problems: &mut Problems) {
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

fn wake(settings: &Settings, problems: &mut Problems) {
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

fn investigator(settings: &Settings, problems: &mut Problems) {
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

fn check_http_url(problems: &mut Problems, key: &str, url: &str) {
    match url.parse::<axum::http::Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {}
        _ => problems.push(
            key,
            format!("\"{}\" is not an http(s) URL", redact_url(url, false)),
        ),
    }
}

fn incidents(settings: &Settings, problems: &mut Problems) {
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

fn positive(problems: &mut Problems, key: &str, value: Duration) {
    if value.is_zero() {
        problems.push(key, "must be greater than zero");
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn name_rules(
    problems: &mut Problems,
    key: String,
    name: &str,
    seen: &mut BTreeSet<String>,
    what: &str,
) {
    if name.is_empty() {
        problems.push(key, "is required");
    } else if name == "." || name == ".." {
        // Names become file and folder names in the state dir (logs,
        // process records, snapshots): these two would escape them.
        problems.push(key, format!("\"{name}\" is not a name"));
    } else if !valid_name(name) {
        problems.push(
            key,
            format!(
                "use 1-64 characters from a-z, A-Z, 0-9, '-', '_' and '.' (got \"{}\")",
                name.escape_debug()
            ),
        );
    } else if !seen.insert(name.to_owned()) {
        problems.push(key, format!("duplicate {what} name \"{name}\""));
    }
}

/// A `depends_on` cycle, if any, as the names along it.
fn dependency_cycle(settings: &Settings) -> Option<Vec<String>> {
    let edges: BTreeMap<&str, &[String]> = settings
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.depends_on.as_slice()))
        .collect();
    // Depth-first search with an explicit stack: 0 = unvisited, 1 = on path, 2 = done.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    for &start in edges.keys() {
        if state.get(start).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        state.insert(start, 1);
        while let Some((node, next)) = path.last_mut() {
            let deps = edges.get(*node).copied().unwrap_or(&[]);
            if let Some(dep) = deps.get(*next) {
                *next += 1;
                let dep = dep.as_str();
                if !edges.contains_key(dep) || dep == *node {
                    continue; // unknown or self edges are reported elsewhere
                }
                match state.get(dep).copied().unwrap_or(0) {
                    0 => {
                        state.insert(dep, 1);
                        path.push((dep, 0));
                    }
                    1 => {
                        let from = path.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            path[from..].iter().map(|(n, _)| (*n).to_owned()).collect();
                        cycle.push(dep.to_owned());
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                state.insert(*node, 2);
                path.pop();
            }
        }
    }
    None
}

/// The API's defences against hostile clients: timeouts, the connection cap,
/// the host allow-list, TLS files and heartbeat tokens.
fn listener_hardening(settings: &Settings, problems: &mut Problems) {
    let service = &settings.service;
    for (key, value) in [
        ("service.header_read_timeout", service.header_read_timeout),
        ("service.request_timeout", service.request_timeout),
        ("service.idle_timeout", service.idle_timeout),
    ] {
        positive(problems, key, value);
    }
    if !(1..=1_000_000).contains(&service.max_connections) {
        problems.push("service.max_connections", "must be between 1 and 1000000");
    }
    for (i, host) in service.allowed_hosts.iter().enumerate() {
        let host = host.trim();
        let bad = host.is_empty()
            || host.contains(['/', ' ', '@', '?', '#'])
            || host.chars().any(char::is_control);
        if bad {
            problems.push(
                format!("service.allowed_hosts[{i}]"),
                "must be a host name or IP address without scheme or path (or \"*\")",
            );
        }
    }
    match (&service.tls_cert_file, &service.tls_key_file) {
        (Some(_), None) => problems.push(
            "service.tls_key_file",
            "is required when service.tls_cert_file is set",
        ),
        (None, Some(_)) => problems.push(
            "service.tls_cert_file",
            "is required when service.tls_key_file is set",
        ),
        _ => {}
    }
    for (index, probe) in settings.probes.iter().enumerate() {
        if probe.token_file.is_some() && probe.kind != Some(ProbeKind::Heartbeat) {
            problems.push(
                format!("probes[{index}].token_file"),
                "only heartbeat probes take a token",
            );
        }
    }
}
