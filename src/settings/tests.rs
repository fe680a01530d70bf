use std::collections::HashMap;
use std::time::Duration;

use super::*;

fn text(toml: &str) -> ConfigSource {
    ConfigSource::Text {
        name: "test.toml".to_owned(),
        toml: toml.to_owned(),
    }
}

fn no_env() -> Option<HashMap<String, String>> {
    Some(HashMap::new())
}

fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn problems(toml: &str, environment: Option<HashMap<String, String>>) -> Vec<String> {
    match load_with_env(&text(toml), environment) {
        Ok(settings) => panic!("expected problems, got {settings:?}"),
        Err(error) => error.lines(),
    }
}

#[test]
fn embedded_default_is_valid_and_watches_its_own_api() {
    let settings = load_with_env(&ConfigSource::Embedded, no_env()).unwrap();
    let names: Vec<&str> = settings.probes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["warden-api", "demo"]);
    let url = settings.probes[0].url.as_deref().unwrap();
    assert!(
        url.contains(&settings.service.api_listen.to_string()),
        "{url}"
    );
    assert_eq!(settings.audit, AuditSettings::default());
    assert_eq!(settings.service, ServiceSettings::default());
    let notifiers: Vec<(&str, Option<NotifierKind>)> = settings
        .notifiers
        .iter()
        .map(|n| (n.name.as_str(), n.kind))
        .collect();
    assert_eq!(notifiers, [("console", Some(NotifierKind::Log))]);
}

#[test]
fn empty_file_gives_code_defaults() {
    let settings = load_with_env(&text(""), no_env()).unwrap();
    assert_eq!(settings, Settings::default());
}

#[test]
fn durations_and_sizes_are_human_strings() {
    let settings = load_with_env(
        &text("[audit]\nrotate_bytes = \"1MiB\"\n[supervision]\nperiod = \"1m 5s\"\n"),
        no_env(),
    )
    .unwrap();
    assert_eq!(settings.audit.rotate_bytes.as_u64(), 1024 * 1024);
    assert_eq!(settings.supervision.restart.period, Duration::from_secs(65));
}

#[test]
fn environment_overrides_nested_keys() {
    let settings = load_with_env(
        &text("[supervision]\nmax_restarts = 3\n"),
        env(&[
            ("WARDEN__SUPERVISION__MAX_RESTARTS", "7"),
            ("WARDEN__SUPERVISION__PERIOD", "1m 5s"),
            ("WARDEN__AUDIT__FSYNC", "always"),
        ]),
    )
    .unwrap();
    assert_eq!(settings.supervision.restart.max_restarts, 7);
    assert_eq!(settings.supervision.restart.period, Duration::from_secs(65));
    assert_eq!(settings.audit.fsync, crate::audit::FsyncPolicy::Always);
}

#[test]
fn unknown_key_negative_duration_and_missing_probe_are_all_reported() {
    let lines = problems(
        r#"
[service]
colour = "blue"

[[probes]]
name = "api"
kind = "tcp"
address = "127.0.0.1:1"
interval = "-5s"

[[components]]
name = "site"
probes = ["api", "ghost"]
"#,
        no_env(),
    );
    let joined = lines.join("\n");
    assert!(
        joined.contains("service.colour: unknown field `colour`"),
        "{joined}"
    );
    assert!(joined.contains("probes[0].interval:"), "{joined}");
    assert!(
        joined.contains("components[0].probes[1]: unknown probe \"ghost\""),
        "{joined}"
    );
    assert_eq!(lines.len(), 3, "{joined}");
}

#[test]
fn env_problems_name_the_variable() {
    let lines = problems(
        "",
        env(&[
            ("WARDEN__SUPERVISION__MAX_RESTARTS", "seven"),
            ("WARDEN__LOG_LEVEL", "debug"),
        ]),
    );
    let joined = lines.join("\n");
    assert!(joined.contains("supervision.max_restarts:"), "{joined}");
    assert!(
        joined.contains("WARDEN__SUPERVISION__MAX_RESTARTS"),
        "{joined}"
    );
    assert!(
        joined.contains("log_level: unknown field `log_level`"),
        "{joined}"
    );
}

#[test]
fn semantic_problems_name_their_keys() {
    let lines = problems(
        r#"
[supervision]
backoff_min = "2s"
backoff_max = "1s"

[[probes]]
name = "fast"
kind = "http"
url = "ftp://nope"
interval = "50ms"
timeout = "1s"

[[probes]]
name = "fast"
kind = "tcp"
address = "localhost"
url = "http://x"

[[probes]]
name = "no kind"
"#,
        no_env(),
    );
    let joined = lines.join("\n");
    for needle in [
        "supervision.backoff_min: must not exceed",
        "probes[0].interval: must be at least 100ms",
        "probes[0].timeout: (1s) must not exceed the interval (50ms)",
        "probes[0].url: \"ftp://nope\" is not an http(s) URL",
        "probes[1].name: duplicate probe name \"fast\"",
        "probes[1].url: is not used by kind tcp",
        "probes[1].address: \"localhost\" is not host:port",
        "probes[2].name: use 1-64 characters",
        "probes[2].kind: is required",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
}

#[test]
fn notifier_problems_name_their_keys() {
    let lines = problems(
        r#"
[[notifiers]]
name = "hook"
kind = "webhook"
secret = "k1"
secret_file = "/k"
timeout = "0s"
backoff_min = "2s"
backoff_max = "1s"

[[notifiers]]
name = "hook"
kind = "slack"
url = "ftp://nope"
routing_key = "rk"

[[notifiers]]
name = "pd"
kind = "pagerduty"

[[notifiers]]
name = "nothing"
"#,
        no_env(),
    );
    let joined = lines.join("\n");
    for needle in [
        "notifiers[0].url: is required for kind webhook",
        "notifiers[0].secret: set either secret or secret_file, not both",
        "notifiers[0].timeout: must be greater than zero",
        "notifiers[0].backoff_min: must not exceed notifiers[0].backoff_max",
        "notifiers[1].name: duplicate notifier name \"hook\"",
        "notifiers[1].url: \"ftp://nope\" is not an http(s) URL",
        "notifiers[1].routing_key: is not used by kind slack",
        "notifiers[2].routing_key: kind pagerduty needs routing_key or routing_key_file",
        "notifiers[3].kind: is required",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    assert!(!joined.contains("notifiers[2].url"), "{joined}");
    assert!(
        !joined.contains("k1") && !joined.contains("rk\""),
        "{joined}"
    );
}

#[test]
fn notifier_defaults_and_durations() {
    let settings = load_with_env(
        &text(
            "[[notifiers]]\nname = \"pd\"\nkind = \"pagerduty\"\nrouting_key = \"r\"\nmin_severity = \"critical\"\nbackoff_min = \"10ms\"\n",
        ),
        no_env(),
    )
    .unwrap();
    let pd = &settings.notifiers[0];
    assert_eq!(pd.kind, Some(NotifierKind::Pagerduty));
    assert_eq!(pd.min_severity, Severity::Critical);
    assert_eq!(pd.backoff_min, Duration::from_millis(10));
    assert_eq!(pd.backoff_max, Duration::from_secs(30));
    assert_eq!(pd.timeout, Duration::from_secs(10));
    assert_eq!(pd.retries, 5);
    assert_eq!(NotifierSettings::default().min_severity, Severity::Info);
}

#[test]
fn dependency_cycles_and_unknown_dependencies_are_rejected() {
    let lines = problems(
        r#"
[[components]]
name = "a"
depends_on = ["b"]
[[components]]
name = "b"
depends_on = ["a", "c"]
"#,
        no_env(),
    );
    let joined = lines.join("\n");
    assert!(
        joined.contains("components[1].depends_on[1]: unknown component \"c\""),
        "{joined}"
    );
    assert!(
        joined.contains("components: depends_on forms a cycle: a -> b -> a"),
        "{joined}"
    );
}

#[test]
fn secrets_never_appear_in_messages_or_debug() {
    let lines = problems(
        "[service]\noperator_token = \"hunter2-but-short\"\noperator_token_file = \"/x\"\n",
        no_env(),
    );
    assert!(!lines.join("\n").contains("hunter2"));
    let settings = load_with_env(
        &text("[service]\noperator_token = \"a-long-enough-operator-token\"\n"),
        no_env(),
    )
    .unwrap();
    let shown = format!("{settings:?} {}", serde_json::to_string(&settings).unwrap());
    assert!(!shown.contains("a-long-enough-operator-token"), "{shown}");
}

#[test]
fn example_configs_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let settings = load_with_env(&ConfigSource::File(path.clone()), no_env());
        assert!(
            settings.is_ok(),
            "{}: {:?}",
            path.display(),
            settings.err().map(|e| e.lines())
        );
        checked += 1;
    }
    assert!(checked > 0);
}

#[test]
fn missing_file_is_a_read_error_naming_the_path() {
    let error = load_with_env(
        &ConfigSource::File("/nonexistent/warden.toml".into()),
        no_env(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("/nonexistent/warden.toml"));
}

fn leaf_keys(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaf_keys(&path, child, out);
            }
        }
        serde_json::Value::Array(items)
            if items.first().is_some_and(serde_json::Value::is_object) =>
        {
            leaf_keys(&format!("{prefix}[]"), &items[0], out);
        }
        _ => out.push(prefix.to_owned()),
    }
}

#[test]
fn every_key_is_documented() {
    let settings = Settings {
        probes: vec![ProbeSettings::default()],
        components: vec![ComponentSettings::default()],
        maintenance: vec![MaintenanceSettings::default()],
        notifiers: vec![NotifierSettings::default()],
        ..Settings::default()
    };
    let mut keys = Vec::new();
    leaf_keys("", &serde_json::to_value(&settings).unwrap(), &mut keys);
    let doc_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let doc = std::fs::read_to_string(doc_path).unwrap();
    let missing: Vec<&String> = keys
        .iter()
        .filter(|key| !doc.contains(&format!("`{key}`")))
        .collect();
    assert!(keys.len() > 30, "walked only {keys:?}");
    assert!(
        missing.is_empty(),
        "keys missing from docs/configuration.md: {missing:?}"
    );
}

#[test]
fn investigator_problems_name_their_keys() {
    let lines = problems(
        r#"
[investigator]
kind = "webhook"
url = "ftp://nope"
timeout = "0s"
daily_budget_usd = -1.0
api_key = "sk-secret-value"
api_key_env = "KEY"
"#,
        no_env(),
    );
    let joined = lines.join("\n");
    for needle in [
        "investigator.url: \"ftp://nope\" is not an http(s) URL",
        "investigator.timeout: must be greater than zero",
        "investigator.daily_budget_usd: must be a finite number of at least 0",
        "investigator.api_key: set only one of api_key, api_key_file and api_key_env",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in {joined}");
    }
    assert!(!joined.contains("sk-secret-value"), "{joined}");
    assert_eq!(lines.len(), 4, "{joined}");

    let lines = problems("[investigator]\nkind = \"openai\"\n", no_env());
    assert_eq!(
        lines,
        [
            "investigator.base_url: is required for kind openai",
            "investigator.model: is required for kind openai",
        ]
    );
    let lines = problems("[investigator]\nkind = \"webhook\"\n", no_env());
    assert_eq!(lines, ["investigator.url: is required for kind webhook"]);
}

#[test]
fn investigator_defaults_and_openai_settings_load() {
    let settings = load_with_env(&ConfigSource::Embedded, no_env()).unwrap();
    assert_eq!(settings.investigator, InvestigatorSettings::default());
    let settings = load_with_env(
        &text(
            "[investigator]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:11434/v1\"\nmodel = \"llama3.1:8b\"\ntimeout = \"20s\"\n",
        ),
        env(&[("WARDEN__INVESTIGATOR__MAX_PER_HOUR", "5")]),
    )
    .unwrap();
    assert_eq!(settings.investigator.kind, InvestigatorKind::Openai);
    assert_eq!(settings.investigator.timeout, Duration::from_secs(20));
    assert_eq!(settings.investigator.max_per_hour, 5);
}

#[test]
fn a_fix_envelope_is_switched_by_component_name_from_the_environment() {
    let toml = "[[components]]\nname = \"web-app\"\n[components.fix]\naction = { kind = \"command\", command = [\"true\"] }\n\n[[components]]\nname = \"db\"\n";
    let env: HashMap<String, String> = [(
        "WARDEN__COMPONENTS__WEB_APP__FIX__ENABLED".to_owned(),
        "true".to_owned(),
    )]
    .into();
    let settings = load_with_env(&text(toml), Some(env)).unwrap();
    assert!(settings.components[0].fix.enabled);
    assert!(!settings.components[1].fix.enabled);

    let env: HashMap<String, String> = [
        (
            "WARDEN__COMPONENTS__NOPE__FIX__ENABLED".to_owned(),
            "true".to_owned(),
        ),
        (
            "WARDEN__COMPONENTS__DB__FIX__ENABLED".to_owned(),
            "maybe".to_owned(),
        ),
    ]
    .into();
    let lines = load_with_env(&text(toml), Some(env)).unwrap_err().lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("WARDEN__COMPONENTS__NOPE__FIX__ENABLED")
                && l.contains("no component named \"nope\"")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("must be true or false")),
        "{lines:?}"
    );
}

const SITE_PROBE: &str = r#"
[[probes]]
name = "site"
kind = "tcp"
address = "127.0.0.1:8081"

[[notifiers]]
name = "console"
kind = "log"
"#;

#[test]
fn the_documented_component_example_is_valid() {
    let toml = format!(
        "{SITE_PROBE}{}",
        r#"
[[components]]
name = "site"
probes = ["site"]
run = ["warden", "demo-target", "--listen", "127.0.0.1:8081"]
warning_threshold = 1
final_tier_threshold = 9
rollback = { snapshot = ["/etc/site/app.conf"] }
[components.fix]
enabled = false
action = { kind = "command", command = ["systemctl", "restart", "site"] }
attempts = 2
cooldown = "10m"
verify_timeout = "30s"
[[components.tiers]]
name = "tier1-agent"
kind = "webhook"
url = "http://127.0.0.1:9997/repair"
attempts = 2
enabled = false
[[components.tiers]]
name = "page"
kind = "notifier"
notifier = "console"
"#
    );
    let settings = load_with_env(&text(&toml), no_env()).unwrap();
    let site = &settings.components[0];
    assert_eq!(site.fix.attempts, 2);
    assert_eq!(site.tiers.len(), 2);
    assert!(!site.tiers[0].is_enabled());
    assert!(site.tiers[1].is_enabled());
}

#[test]
fn stop_signals_accept_sig_prefix_and_any_case() {
    for good in ["TERM", "sigint", "SigHup", "QUIT", "usr1", "SIGUSR2"] {
        assert!(validate::valid_stop_signal(good), "{good}");
    }
    for bad in ["KILL", "SIGKILL", "", "SIG", "9", "TERMINATE"] {
        assert!(!validate::valid_stop_signal(bad), "{bad}");
    }
}

#[test]
fn managed_process_problems_name_their_keys() {
    let lines = problems(
        r#"
[[components]]
name = "svc"
run = [""]
stop_signal = "KILL"
stop_timeout = "0s"
start_timeout = "0s"
log_files = 0
log_max_bytes = "512B"
rollback = { snapshot = ["relative/app.conf"] }
[components.restart]
max_restarts = 0
period = "0s"
backoff_min = "10s"
backoff_max = "1s"
backoff_jitter = 1.5
"#,
        no_env(),
    );
    let joined = lines.join("\n");
    for needle in [
        "components[0].run: the program (run[0]) must not be empty",
        "components[0].stop_signal: \"KILL\" is not one of TERM, INT, HUP, QUIT, USR1, USR2",
        "components[0].stop_timeout: must be greater than zero",
        "components[0].start_timeout: must be greater than zero",
        "components[0].restart.period: must be greater than zero",
        "components[0].restart.max_restarts: must be at least 1",
        "components[0].restart.backoff_min: must not exceed components[0].restart.backoff_max",
        "components[0].restart.backoff_jitter: must be between 0.0 and 1.0",
        "components[0].log_files: must be at least 1",
        "components[0].log_max_bytes: must be at least 1KiB",
        "components[0].rollback.snapshot[0]: \"relative/app.conf\" must be an absolute path",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in {joined}");
    }
    assert_eq!(lines.len(), 11, "{joined}");
}

#[test]
fn fix_problems_name_their_keys() {
    let lines = problems(
        r#"
[[components]]
name = "a"
[components.fix]
enabled = true
attempts = 0
cooldown = "0s"
verify_timeout = "0s"

[[components]]
name = "b"
[components.fix]
action = { kind = "restart", url = "http://x/", command = ["true"] }

[[components]]
name = "c"
[components.fix]
action = { kind = "command", method = "POST" }

[[components]]
name = "d"
[components.fix]
action = { kind = "http", url = "ftp://nope", method = "BAD METHOD", timeout = "0s" }

[[components]]
name = "e"
[components.fix]
action = { kind = "http" }
"#,
        no_env(),
    );
    let joined = lines.join("\n");
    for needle in [
        "components[0].fix.attempts: must be at least 1",
        "components[0].fix.cooldown: must be greater than zero",
        "components[0].fix.verify_timeout: must be greater than zero",
        "components[0].fix.action.kind: is required when fix.enabled is true",
        "components[1].fix.action.command: is not used by kind restart",
        "components[1].fix.action.url: is not used by kind restart",
        "components[1].fix.action.kind: kind restart needs a managed component (set run)",
        "components[2].fix.action.method: is not used by kind command",
        "components[2].fix.action.command: is required for kind command",
        "components[3].fix.action.url: \"ftp://nope\" is not an http(s) URL",
        "components[3].fix.action.method: \"BAD METHOD\" is not an HTTP method",
        "components[3].fix.action.timeout: must be greater than zero",
        "components[4].fix.action.url: is required for kind http",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in {joined}");
    }
    assert_eq!(lines.len(), 13, "{joined}");
}

#[test]
fn tier_problems_name_their_keys() {
    let lines = problems(
        &format!(
            "{SITE_PROBE}{}",
            r#"
[[components]]
name = "site"
[[components.tiers]]
name = "t"
kind = "webhook"
[[components.tiers]]
name = "t"
kind = "webhook"
url = "file:///etc/passwd"
notifier = "console"
attempts = 0
timeout = "0s"
[[components.tiers]]
name = ""
[[components.tiers]]
name = "pager"
kind = "notifier"
notifier = "ghost"
url = "http://x/"
[[components.tiers]]
name = "pager2"
kind = "notifier"
"#
        ),
        no_env(),
    );
    let joined = lines.join("\n");
    for needle in [
        "components[0].tiers[0].url: is required for kind webhook",
        "components[0].tiers[1].name: duplicate tier name \"t\"",
        "components[0].tiers[1].url: \"file:///etc/passwd\" is not an http(s) URL",
        "components[0].tiers[1].notifier: is not used by kind webhook",
        "components[0].tiers[1].attempts: must be at least 1",
        "components[0].tiers[1].timeout: must be greater than zero",
        "components[0].tiers[2].name: is required",
        "components[0].tiers[2].kind: is required (webhook or notifier)",
        "components[0].tiers[3].notifier: unknown notifier \"ghost\"",
        "components[0].tiers[3].url: is not used by kind notifier",
        "components[0].tiers[4].notifier: is required for kind notifier",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in {joined}");
    }
    assert_eq!(lines.len(), 11, "{joined}");
}

#[test]
fn service_safety_and_dr_problems_name_their_keys() {
    let lines = problems(
        r#"
[service]
state_dir = "/srv/warden"
api_listen = "0.0.0.0:9400"
operator_tokens = ["short"]

[dr]
known_epoch_path = "/srv/warden/../warden/dr/known_epoch"
"#,
        None,
    );
    let joined = lines.join("\n");
    assert!(
        joined.contains("service.operator_tokens[0]: must be at least 16 characters"),
        "{joined}"
    );
    assert!(
        joined.contains("dr.known_epoch_path: must not be inside service.state_dir"),
        "{joined}"
    );
    let lines = problems("[service]\napi_listen = \"0.0.0.0:9400\"\n", None);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("service.api_listen:") && l.contains("not a loopback")),
        "{lines:?}"
    );
    let ok = load_with_env(
        &text(
            "[service]\nstate_dir = \"/srv/warden\"\n[dr]\nknown_epoch_path = \"/srv/warden-dr/known\"\n",
        ),
        None,
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn chaos_needs_an_operator_token() {
    let lines = problems("[chaos]\nenabled = true\n", no_env());
    assert!(
        lines.iter().any(|l| l.starts_with("chaos.enabled:")),
        "{lines:?}"
    );
    assert!(!load(&ConfigSource::Embedded).unwrap().chaos.enabled);
}

/// Every named thing (probe, component, notifier, tier) refuses `.`, `..`,
/// a `/` and control characters, and the problem names the key.
#[test]
fn names_that_could_escape_a_path_or_forge_output_are_refused() {
    for bad in [
        ".",
        "..",
        "a/b",
        "../x",
        "/abs",
        "tab\there",
        "esc\u{1b}[31m",
        "nl\nx",
        "del\u{7f}",
    ] {
        let quoted = toml_string(bad);
        let config = format!(
            r#"
[[notifiers]]
name = {quoted}
kind = "log"

[[probes]]
name = {quoted}
kind = "tcp"
address = "127.0.0.1:1"

[[components]]
name = {quoted}

[[components.tiers]]
name = {quoted}
kind = "webhook"
url = "http://127.0.0.1:1/"
"#
        );
        let lines = problems(&config, no_env());
        for key in [
            "probes[0].name: ",
            "components[0].name: ",
            "notifiers[0].name: ",
            "components[0].tiers[0].name: ",
        ] {
            assert!(
                lines.iter().any(|line| line.starts_with(key)),
                "{bad:?}: no problem at {key}: {lines:#?}"
            );
        }
        // The message never carries the raw control character.
        assert!(
            lines.iter().all(|line| !line.chars().any(char::is_control)),
            "{lines:?}"
        );
    }
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn a_probe_listed_by_a_component_belongs_to_it() {
    let settings = load_with_env(
        &text(
            r#"
[[probes]]
name = "db-check"
kind = "tcp"
address = "127.0.0.1:5432"

[[probes]]
name = "loose"
kind = "tcp"
address = "127.0.0.1:5433"

[[components]]
name = "db"
probes = ["db-check"]
"#,
        ),
        no_env(),
    )
    .unwrap();
    let probe = |name: &str| settings.probes.iter().find(|p| p.name == name).unwrap();
    assert_eq!(probe("db-check").component.as_deref(), Some("db"));
    assert_eq!(probe("db-check").component_name(), "db");
    // A probe no component lists still reports under its own name.
    assert_eq!(probe("loose").component_name(), "loose");
}

#[test]
fn a_probe_naming_another_component_or_listed_twice_is_refused() {
    let lines = problems(
        r#"
[[probes]]
name = "db-check"
kind = "tcp"
address = "127.0.0.1:5432"
component = "cache"

[[probes]]
name = "shared"
kind = "tcp"
address = "127.0.0.1:5433"

[[components]]
name = "db"
probes = ["db-check", "shared"]

[[components]]
name = "cache"
probes = ["shared"]
"#,
        no_env(),
    );
    let joined = lines.join("\n");
    for needle in [
        "components[0].probes[0]: probe \"db-check\" sets component = \"cache\", but a probe listed by component \"db\" belongs to it",
        "components[1].probes[0]: probe \"shared\" is already listed by component \"db\"; a probe belongs to one component",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in {joined}");
    }
    assert_eq!(lines.len(), 2, "{joined}");
}

#[test]
fn a_fix_envelope_says_whether_it_is_enabled_and_what_it_does() {
    let settings = load_with_env(
        &text(
            r#"
[[components]]
name = "none"

[[components]]
name = "off"
[components.fix]
action = { kind = "command", command = ["/usr/bin/reset-cache", "--token", "s3cret"] }

[[components]]
name = "on"
[components.fix]
enabled = true
action = { kind = "http", url = "https://ops.example:8443/fix?key=s3cret", method = "put" }

[[components]]
name = "managed"
run = ["/bin/sleep", "60"]
[components.fix]
enabled = true
action = { kind = "restart" }
"#,
        ),
        no_env(),
    )
    .unwrap();
    let envelope = |name: &str| {
        let fix = &settings
            .components
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .fix;
        (fix.status(), fix.describe())
    };
    assert_eq!(envelope("none"), ("absent", None));
    assert_eq!(
        envelope("off"),
        ("disabled", Some("run /usr/bin/reset-cache".to_owned()))
    );
    assert_eq!(
        envelope("on"),
        (
            "enabled",
            Some("send PUT to https://ops.example:8443".to_owned())
        )
    );
    assert_eq!(
        envelope("managed"),
        ("enabled", Some("restart the managed process".to_owned()))
    );
}

/// Asserts that `as_str` is the serde name of every variant of `$ty`; the
/// closure is an exhaustive match, so a new variant fails to build here
/// until it is listed.
macro_rules! spelled_as_serialised {
    ($ty:path: $($variant:ident),+ $(,)?) => {{
        use $ty as Kind;
        let _exhaustive = |kind: Kind| match kind {
            $(Kind::$variant)|+ => (),
        };
        for kind in [$(Kind::$variant),+] {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str()),
                "{kind:?}"
            );
        }
    }};
}

#[test]
fn every_kind_is_spelled_as_in_the_configuration() {
    // ProbeKind is declared from one list, so ALL has every variant.
    for kind in ProbeKind::ALL {
        assert_eq!(
            serde_json::to_value(kind).unwrap(),
            serde_json::json!(kind.as_str()),
            "{kind:?}"
        );
    }
    spelled_as_serialised!(FixKind: Restart, Command, Http);
    spelled_as_serialised!(TierKind: Webhook, Notifier);
    spelled_as_serialised!(NotifierKind: Log, Webhook, Slack, Pagerduty);
    spelled_as_serialised!(InvestigatorKind: None, Webhook, Openai);
    spelled_as_serialised!(Severity: Info, Warning, Critical);
    spelled_as_serialised!(crate::messages::Health: Healthy, Degraded, Unhealthy);
    assert_eq!(ProbeKind::CredentialExpiry.as_str(), "credential_expiry");
}

/// One struct, two documented default sets: a table that sets some keys
/// keeps the rest from its own set, and both refuse keys they do not have.
#[test]
fn both_restart_policies_share_keys_but_keep_their_own_defaults() {
    let settings = load_with_env(
        &text(
            "[supervision]\nmax_restarts = 4\n\n[[components]]\nname = \"site\"\n[components.restart]\nperiod = \"2m\"\n",
        ),
        no_env(),
    )
    .unwrap();
    assert_eq!(
        settings.supervision.restart,
        RestartSettings {
            max_restarts: 4,
            ..RestartSettings::supervision()
        }
    );
    assert_eq!(
        settings.supervision.child_shutdown_timeout,
        Duration::from_secs(5)
    );
    assert_eq!(
        settings.components[0].restart,
        RestartSettings {
            period: Duration::from_secs(120),
            ..RestartSettings::managed()
        }
    );
    // The documented defaults (docs/configuration.md).
    let supervision = RestartSettings::supervision();
    assert_eq!(
        (
            supervision.max_restarts,
            supervision.period,
            supervision.backoff_min
        ),
        (3, Duration::from_secs(5), Duration::from_millis(10))
    );
    assert_eq!(
        (supervision.backoff_max, supervision.stable_after),
        (Duration::from_secs(1), Duration::from_secs(5))
    );
    let managed = RestartSettings::managed();
    assert_eq!(
        (managed.max_restarts, managed.period, managed.backoff_min),
        (5, Duration::from_secs(60), Duration::from_millis(200))
    );
    assert_eq!(
        (managed.backoff_max, managed.stable_after),
        (Duration::from_secs(30), Duration::from_secs(30))
    );

    let lines = problems(
        "[supervision]\nchild_shutdown_timeout = \"1s\"\nmax_restart = 2\n\n[[components]]\nname = \"site\"\n[components.restart]\nchild_shutdown_timeout = \"1s\"\nbackoff_min = \"2s\"\nbackoff_max = \"1s\"\n",
        no_env(),
    );
    let joined = lines.join("\n");
    for needle in [
        "supervision.max_restart: unknown field `max_restart`",
        "components[0].restart.child_shutdown_timeout: unknown field `child_shutdown_timeout`",
        "components[0].restart.backoff_min: must not exceed components[0].restart.backoff_max",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in {joined}");
    }
}

#[test]
fn cluster_problems_name_their_keys() {
    let lines = problems(
        r#"
[cluster]
kind = "nats"
urls = ["ws://a:80", "nats://user:pw@b:4222", ""]
stream = "has.dot"
replicas = 7
dedup_window = "1s"
publish_timeout = "2s"
lease_ttl = "1500ms"
credentials_file = "/nonexistent/warden.creds"
"#,
        no_env(),
    );
    let joined = lines.join("\n");
    for needle in [
        "cluster.urls[0]: scheme \"ws\" is not nats:// or tls://",
        "cluster.urls[1]: must not carry a user or password; use cluster.credentials_file",
        "cluster.urls[2]: \"\" names no host",
        "cluster.stream: use 1-64 characters",
        "cluster.replicas: must be between 1 and 5",
        "cluster.dedup_window: must be longer than cluster.publish_timeout",
        "cluster.node_id: is required with kind = \"nats\" (or set WARDEN__CLUSTER__NODE_ID)",
        "cluster.credentials_file: cannot read /nonexistent/warden.creds",
        "cluster.lease_ttl: must be a whole number of seconds, at least 3s",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in {joined}");
    }
    assert!(!joined.contains("pw@"), "a password in an error: {joined}");
    assert_eq!(lines.len(), 9, "{joined}");
    // A local node needs none of it.
    assert!(load_with_env(&text("[cluster]\nkind = \"local\"\n"), no_env()).is_ok());
}

#[test]
fn the_node_id_comes_from_the_environment() {
    let toml = "[cluster]\nkind = \"nats\"\nurls = [\"nats://127.0.0.1:4222\"]\n";
    assert!(
        problems(toml, no_env())
            .iter()
            .any(|p| p.starts_with("cluster.node_id"))
    );
    let settings =
        load_with_env(&text(toml), env(&[("WARDEN__CLUSTER__NODE_ID", "node-b")])).unwrap();
    assert_eq!(settings.cluster.node(), "node-b");
    assert_eq!(settings.cluster.kind, ClusterKind::Nats);
}
