//! Validation of the process's own sections: `[service]` (state dir, API
//! listener, tokens), `[audit]`, `[telemetry]`, `[supervision]` and the
//! listener's hardening limits.

use super::*;

pub(super) fn service(settings: &Settings, problems: &mut Problems) {
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
    let known = crate::settings::dr::lexical(&settings.dr.known_epoch_path(&service.state_dir));
    if known.starts_with(crate::settings::dr::lexical(&service.state_dir)) {
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

pub(super) fn audit(settings: &Settings, problems: &mut Problems) {
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

pub(super) fn telemetry(settings: &Settings, problems: &mut Problems) {
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

pub(super) fn supervision(settings: &Settings, problems: &mut Problems) {
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
pub(super) fn restart_policy(
    problems: &mut Problems,
    at: &str,
    restart: &crate::settings::RestartSettings,
) {
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

/// The API's defences against hostile clients: timeouts, the connection cap,
/// the host allow-list, TLS files and heartbeat tokens.
pub(super) fn listener_hardening(settings: &Settings, problems: &mut Problems) {
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
