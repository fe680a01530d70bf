#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::HashMap;
use std::path::Path;

use crate::settings::{ConfigSource, Settings, SettingsError, load_with_env};

fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    load_with_env(
        &ConfigSource::Text {
            name: "test.toml".into(),
            toml: toml.into(),
        },
        Some(
            env.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
        ),
    )
}

fn problems(toml: &str) -> Vec<String> {
    match load(toml, &[]) {
        Ok(settings) => panic!("expected problems, got {settings:?}"),
        Err(error) => error.lines(),
    }
}

fn file(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

fn tier(extra: &str) -> String {
    format!(
        "[[components]]\nname = \"api\"\n[[components.tiers]]\nname = \"agent\"\nkind = \"webhook\"\n{extra}\n"
    )
}

#[test]
fn secrets_come_from_files_and_print_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[[probes]]\nname = \"p\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nheaders = {{ X-Inline = \"probe-inline-secret\" }}\nheaders_files = {{ X-File = \"{}\" }}\n\n\
         [[notifiers]]\nname = \"chat\"\nkind = \"slack\"\nurl_file = \"{}\"\n\n\
         [[notifiers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"https://u:notifier-pass@example.com/h?k=notifier-query\"\nheaders_files = {{ X-Key = \"{}\" }}\n\n\
         [[components]]\nname = \"api\"\nrun = [\"true\"]\nenv = {{ A = \"env-inline-secret\" }}\nenv_files = {{ B = \"{}\" }}\n\
         [components.fix]\naction = {{ kind = \"http\", url = \"http://127.0.0.1:1/fix\", headers_files = {{ X-Fix = \"{}\" }} }}\n\
         [[components.tiers]]\nname = \"agent\"\nkind = \"webhook\"\nurl_file = \"{}\"\nheaders = {{ X-Tier = \"tier-inline-secret\" }}\nbearer_token_file = \"{}\"\n\n\
         [investigator]\nkind = \"webhook\"\nurl_file = \"{}\"\n",
        file(dir.path(), "probe", "probe-file-secret\n"),
        file(
            dir.path(),
            "slack",
            "https://hooks.slack.com/services/T0/B0/slack-path-secret\n"
        ),
        file(dir.path(), "hook", "  notifier-header-secret \n"),
        file(dir.path(), "env", "env-file-secret"),
        file(dir.path(), "fix", "fix-file-secret"),
        file(
            dir.path(),
            "tier-url",
            "https://tier.example.com/t?sig=tier-query-secret"
        ),
        file(dir.path(), "bearer", "tier-bearer-secret\n"),
        file(
            dir.path(),
            "inv",
            "https://inv.example.com/i?token=inv-query-secret"
        ),
    );
    let settings = load(
        &toml,
        &[("WARDEN__INVESTIGATOR__API_KEY", "inv-env-secret")],
    )
    .unwrap_or_else(|e| panic!("{:?}", e.lines()));

    // Each secret reached the place that uses it ...
    assert_eq!(
        settings.probes[0].headers["X-File"].expose(),
        "probe-file-secret"
    );
    assert_eq!(
        settings.notifiers[0].url.as_ref().unwrap().expose(),
        "https://hooks.slack.com/services/T0/B0/slack-path-secret"
    );
    assert_eq!(
        settings.notifiers[1].headers["X-Key"].expose(),
        "notifier-header-secret"
    );
    let component = &settings.components[0];
    assert_eq!(component.env["B"].expose(), "env-file-secret");
    assert_eq!(
        component.fix.action.headers["X-Fix"].expose(),
        "fix-file-secret"
    );
    let tier = &component.tiers[0];
    assert_eq!(
        tier.headers["Authorization"].expose(),
        "Bearer tier-bearer-secret"
    );
    assert_eq!(
        tier.url.as_ref().unwrap().expose(),
        "https://tier.example.com/t?sig=tier-query-secret"
    );
    assert_eq!(
        settings.investigator.url.as_ref().unwrap().expose(),
        "https://inv.example.com/i?token=inv-query-secret"
    );
    assert_eq!(
        settings.investigator.api_key.as_ref().unwrap().expose(),
        "inv-env-secret"
    );

    // ... and none of them shows in Debug or the serialised settings.
    let shown = format!(
        "{settings:?}\n{}",
        serde_json::to_string(&settings).unwrap()
    );
    for secret in [
        "probe-inline-secret",
        "probe-file-secret",
        "slack-path-secret",
        "services/T0",
        "notifier-pass",
        "notifier-query",
        "notifier-header-secret",
        "env-inline-secret",
        "env-file-secret",
        "fix-file-secret",
        "tier-query-secret",
        "tier-inline-secret",
        "tier-bearer-secret",
        "inv-query-secret",
        "inv-env-secret",
    ] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
    assert!(shown.contains("https://hooks.slack.com/***"), "{shown}");
    assert!(shown.contains("https://***@example.com/h?***"), "{shown}");
}

#[test]
fn a_value_set_inline_and_from_a_file_is_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "x", "v");
    let found = problems(&tier(&format!(
        "url = \"https://a.example.com/\"\nurl_file = \"{path}\"\nheaders = {{ Authorization = \"Bearer x\", X-A = \"1\" }}\nheaders_files = {{ X-A = \"{path}\" }}\nbearer_token_file = \"{path}\""
    )));
    assert!(
        found.contains(
            &"components[0].tiers[0].url: set either url or url_file, not both".to_owned()
        ),
        "{found:?}"
    );
    assert!(
        found.contains(&"components[0].tiers[0].headers_files.X-A: X-A is also set in headers; set it in one place".to_owned()),
        "{found:?}"
    );
    assert!(
        found.contains(&"components[0].tiers[0].bearer_token_file: set either bearer_token_file or an Authorization header, not both".to_owned()),
        "{found:?}"
    );
}

#[test]
fn an_unreadable_or_empty_secret_file_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let empty = file(dir.path(), "empty", " \n");
    let absent = dir.path().join("absent").display().to_string();
    let found = problems(&format!(
        "[[probes]]\nname = \"p\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nheaders_files = {{ X-A = \"{empty}\" }}\n\n{}",
        tier(&format!("bearer_token_file = \"{absent}\""))
    ));
    assert!(
        found.contains(&format!("probes[0].headers_files.X-A: {empty} is empty")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.starts_with(&format!(
            "components[0].tiers[0].bearer_token_file: cannot read {absent}"
        ))),
        "{found:?}"
    );
}

#[test]
fn a_tier_url_needs_https_unless_loopback_or_allowed() {
    let found = problems(&tier(
        "url = \"http://user:tier-pass@agent.example.com/call?key=tier-query\"",
    ));
    assert_eq!(
        found,
        [
            "components[0].tiers[0].url: \"http://***@agent.example.com/call?***\" is plain http to a host that is not loopback; use https, or set components[0].tiers[0].allow_insecure_http = true"
        ]
    );
    for ok in [
        "url = \"https://agent.example.com/call\"",
        "url = \"http://127.0.0.1:9/call\"",
        "url = \"http://localhost:9/call\"",
        "url = \"http://[::1]:9/call\"",
        "url = \"http://agent.example.com/call\"\nallow_insecure_http = true",
    ] {
        load(&tier(ok), &[]).unwrap_or_else(|e| panic!("{ok}: {:?}", e.lines()));
    }
}

#[test]
fn a_bad_url_is_reported_without_its_secret_parts() {
    let found = problems(
        "[[notifiers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"ftp://u:bad-url-pass@example.com/?k=bad-url-query\"\n",
    );
    let text = found.join("\n");
    assert!(
        !text.contains("bad-url-pass") && !text.contains("bad-url-query"),
        "{text}"
    );
    assert!(text.contains("notifiers[0].url"), "{text}");
}
