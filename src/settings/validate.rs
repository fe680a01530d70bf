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

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
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

fn notifiers(settings: &Settings, problems: &mut Problems) {
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
        match notifier.kind {
            None => problems.push(
                format!("{at}.kind"),
                "is required (log, webhook, slack or pagerduty)",
            ),
            Some(kind) => notifier_kind_fields(problems, &at, kind, notifier),
        }
    }
}

fn notifier_kind_fields(
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

fn http_url(url: &str) -> bool {
    url.parse::<axum::http::Uri>()
        .is_ok_and(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some())
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

fn probes(settings: &Settings, problems: &mut Problems) {
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

fn probe_kind_fields(problems: &mut Problems, at: &str, kind: ProbeKind, probe: &ProbeSettings) {
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

fn components(settings: &Settings, problems: &mut Problems) {
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
fn component_patch(problems: &mut Problems, at: &str, component: &ComponentSettings) {
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
const STOP_SIGNALS: [&str; 6] = ["TERM", "INT", "HUP", "QUIT", "USR1", "USR2"];

/// Whether `signal` names one of [`STOP_SIGNALS`], case-insensitively and
/// with or without the `SIG` prefix.
pub(crate) fn valid_stop_signal(signal: &str) -> bool {
    let upper = signal.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    STOP_SIGNALS.contains(&bare)
}

/// The managed-process keys: `run`, `stop_signal`, timeouts, restart ladder, logs.
fn component_process(problems: &mut Problems, at: &str, component: &ComponentSettings) {
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
fn component_fix(problems: &mut Problems, at: &str, component: &ComponentSettings) {
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
fn component_tiers(
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
fn tier_transport(problems: &mut Problems, at: &str, url: &str, allow_insecure_http: bool) {
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
fn header_names<'a>(problems: &mut Problems, at: &str, names: impl Iterator<Item = &'a String>) {
    for name in names {
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.push(format!("{at}.{name}"), "is not a valid HTTP header name");
        }
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
