//! The command line as an operator uses it: exit codes and messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output};

fn warden(args: &[&str]) -> Output {
    Command::new(support::process::warden_bin())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const BROKEN: &str = r#"
[service]
state_dir = "./var"
listen_adress = "127.0.0.1:9400"

[[probes]]
name = "api"
kind = "http"
url = "http://127.0.0.1:8080/health"
interval = "-5s"

[[components]]
name = "site"
probes = ["api", "missing-probe"]
"#;

#[test]
fn check_config_accepts_the_embedded_default() {
    let output = warden(&["check-config"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).starts_with("config OK: 2 probe(s)"),
        "{}",
        text(&output)
    );
}

#[test]
fn check_config_accepts_the_shipped_default_file_and_examples() {
    let root = env!("CARGO_MANIFEST_DIR");
    for file in ["config/default.toml", "config/examples/small-team.toml"] {
        let output = warden(&["check-config", "--config", &format!("{root}/{file}")]);
        assert_eq!(output.status.code(), Some(0), "{file}: {}", text(&output));
    }
}

#[test]
fn check_config_names_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, BROKEN).unwrap();
    let output = warden(&["check-config", "--config", path.to_str().unwrap()]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("service.listen_adress: unknown field"),
        "{shown}"
    );
    assert!(shown.contains("probes[0].interval:"), "{shown}");
    assert!(
        shown.contains("components[0].probes[1]: unknown probe \"missing-probe\""),
        "{shown}"
    );
}

#[test]
fn run_refuses_an_invalid_config_with_the_same_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, BROKEN).unwrap();
    let output = warden(&["--config", path.to_str().unwrap(), "run"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("components[0].probes[1]: unknown probe"),
        "{shown}"
    );
    assert!(
        !dir.path().join("var").exists(),
        "nothing may be created for an invalid config"
    );
}

#[test]
fn environment_overrides_apply_and_are_validated() {
    let output = Command::new(support::process::warden_bin())
        .args(["check-config"])
        .env("WARDEN__SUPERVISION__MAX_RESTARTS", "seven")
        .output()
        .unwrap();
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("WARDEN__SUPERVISION__MAX_RESTARTS"),
        "{shown}"
    );
}

#[test]
fn missing_config_file_and_bad_usage_exit_2() {
    let output = warden(&["check-config", "--config", "/nonexistent/warden.toml"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("/nonexistent/warden.toml"));
    let output = warden(&["frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn check_config_rejects_a_bad_condition_naming_probe_and_expression() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conditions.toml");
    std::fs::write(
        &path,
        "[[probes]]\nname = \"api\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nunhealthy_if = [\"status != 200\", \"stauts == 500\"]\n",
    )
    .unwrap();
    let output = warden(&["check-config", "--config", path.to_str().unwrap()]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("probes[0].unhealthy_if[1]: invalid condition \"stauts == 500\""),
        "{shown}"
    );
    assert!(!shown.contains("unhealthy_if[0]"), "{shown}");
}

#[test]
fn audit_tail_reads_a_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit");
    std::fs::create_dir_all(&audit).unwrap();
    let rows = [
        r#"{"seq":1,"ts":"2026-11-22T08:00:00.000Z","seam":"service.boot","caller_session_id":null,"trace_id":null,"component":null,"details":{}}"#,
        r#"{"seq":2,"ts":"2026-11-22T08:00:00.001Z","seam":"supervision.started","caller_session_id":null,"trace_id":null,"component":null,"details":{"child":"audit"}}"#,
        r#"{"seq":3,"ts":"2026-11-22T08:00:00.002Z","seam":"operator.note","caller_session_id":"s-1","trace_id":null,"component":"db","details":{"text":"hi"}}"#,
    ];
    std::fs::write(
        audit.join("audit-00000000000000000001.jsonl"),
        format!("{}\n", rows.join("\n")),
    )
    .unwrap();
    let state_dir = dir.path().to_str().unwrap();

    let output = warden(&["audit", "tail", "--state-dir", state_dir]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert_eq!(shown.lines().count(), 3, "{shown}");
    assert!(shown.lines().last().unwrap().starts_with("#3 "), "{shown}");

    let output = warden(&[
        "audit",
        "tail",
        "--state-dir",
        state_dir,
        "--seam",
        "supervision.*",
        "--json",
    ]);
    let shown = text(&output);
    assert_eq!(shown.trim(), rows[1], "{shown}");

    let output = warden(&["audit", "tail", "--state-dir", state_dir, "--since", "3"]);
    assert!(text(&output).contains("operator.note"));
    assert_eq!(text(&output).lines().count(), 1);
}

#[test]
fn run_refuses_a_non_loopback_listener_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open.toml");
    let toml = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"0.0.0.0:0\"\n",
        dir.path().join("var").display()
    );
    std::fs::write(&path, toml).unwrap();
    let output = warden(&["run", "--config", path.to_str().unwrap()]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(shown.contains("service.api_listen"), "{shown}");
    assert!(shown.contains("not a loopback address"), "{shown}");
    assert!(!dir.path().join("var").exists(), "{shown}");
}

#[test]
fn rollback_patch_restores_what_a_tier_changed_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("var");
    let file = dir.path().join("app.conf");
    let original: Vec<u8> = (0..=255u8).collect();
    std::fs::write(&file, &original).unwrap();
    let history = warden::escalation::PatchHistory::open(&state).unwrap();
    let patch = serde_json::json!({ "files": [{ "path": file.display().to_string(), "content": "patched = true\n" }] });
    let policy = warden::escalation::PatchPolicy::new(&warden::settings::PatchSettings {
        paths: vec![file.display().to_string()],
        ..Default::default()
    })
    .unwrap();
    history
        .apply_patch("site", "tier1", &patch, &policy)
        .unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"patched = true\n");

    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!("[service]\nstate_dir = \"{}\"\n", state.display()),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let output = warden(&["--config", config, "escalation", "rollback-patch", "site"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains("reverted patch"),
        "{}",
        text(&output)
    );
    assert_eq!(std::fs::read(&file).unwrap(), original);
    let log = std::fs::read_to_string(state.join("patch_history.jsonl")).unwrap();
    assert!(log.contains("reverted"), "{log}");
    // Nothing left to undo: a clear error, exit 1.
    let output = warden(&["--config", config, "escalation", "rollback-patch", "site"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
}

#[test]
fn check_config_warns_about_a_token_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "an-operator-token-long-enough\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[service]\nstate_dir = \"{}\"\noperator_token_file = \"{}\"\n",
            dir.path().join("var").display(),
            token.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let output = warden(&["--config", config, "check-config"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains("warning: service.operator_token_file:")
            && text(&output).contains("0644"),
        "{}",
        text(&output)
    );
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let output = warden(&["--config", config, "check-config"]);
    assert!(!text(&output).contains("warning"), "{}", text(&output));
}

#[test]
fn check_config_refuses_relative_patch_globs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        "[[components]]\nname = \"site\"\npatch = { paths = [\"etc/site/*.conf\", \"/etc/[\"], max_bytes = \"0B\" }\n",
    )
    .unwrap();
    let output = warden(&["--config", config.to_str().unwrap(), "check-config"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let out = text(&output);
    assert!(
        out.contains("components[0].patch.paths[0]") && out.contains("absolute"),
        "{out}"
    );
    assert!(out.contains("components[0].patch.paths[1]"), "{out}");
    assert!(out.contains("components[0].patch.max_bytes"), "{out}");
}
