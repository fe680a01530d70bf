//! The dashboard end to end: Warden in-process watching a loopback target,
//! the page at `GET /` rendered by headless Chromium (`--dump-dom`), and the
//! rendered DOM read back as the target fails and recovers.
//!
//! Without a Chromium binary the test prints `SKIPPED` and passes, unless
//! `WARDEN_REQUIRE_BROWSER` is set (CI sets it), when it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::targets::Switchable;
use warden::app::{self, Warden};
use warden::settings::{ConfigSource, load_with_env};

const WAIT: Duration = Duration::from_secs(30);
/// How long one Chromium run may take before it is killed.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);
/// Chromium runs per check: the page polls, so a render can race a change.
const DUMPS: usize = 3;

async fn start(dir: &Path, body: &str) -> Warden {
    let toml = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\n\n{body}",
        dir.join("var").display()
    );
    let settings = load_with_env(
        &ConfigSource::Text {
            name: "test".into(),
            toml,
        },
        Some(HashMap::new()),
    )
    .unwrap_or_else(|e| panic!("{:?}", e.lines()));
    app::start(settings).await.unwrap()
}

/// `chromium` or `chromium-browser` on PATH.
fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| {
        ["chromium", "chromium-browser"]
            .iter()
            .map(|name| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Loads `url` in headless Chromium and returns the DOM after the page's
/// scripts ran (virtual time lets its first fetch finish).
async fn dump_dom(chromium: &Path, profile: &Path, url: &str) -> String {
    let child = tokio::process::Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium starts");
    let output = tokio::time::timeout(BROWSER_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("chromium did not finish within {BROWSER_TIMEOUT:?}"))
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Dumps until `check` holds (at most [`DUMPS`] times); returns the last DOM.
async fn dump_until(
    chromium: &Path,
    profile: &Path,
    url: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    let mut dom = String::new();
    for _ in 0..DUMPS {
        dom = dump_dom(chromium, profile, url).await;
        if check(&dom) {
            break;
        }
    }
    dom
}

/// The opening tag of the element with `id`, if rendered.
fn tag_with_id<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let start = dom[..at].rfind('<')?;
    let end = at + dom[at..].find('>')?;
    Some(&dom[start..=end])
}

/// The `data-status` of the row `probe-<name>`.
fn probe_status(dom: &str, name: &str) -> Option<String> {
    let tag = tag_with_id(dom, &format!("probe-{name}"))?;
    let rest = &tag[tag.find("data-status=\"")? + "data-status=\"".len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

async fn dashboard(client: &reqwest::Client, base: &str) -> Value {
    match client.get(format!("{base}/api/dashboard")).send().await {
        Ok(response) => response.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

fn has_issue(body: &Value, probe: &str) -> bool {
    body["issues"]
        .as_array()
        .is_some_and(|issues| issues.iter().any(|i| i["probe"] == probe))
}

fn has_incident(body: &Value) -> bool {
    body["incidents"]
        .as_array()
        .is_some_and(|incidents| !incidents.is_empty())
}

fn probe_is(body: &Value, probe: &str, status: &str) -> bool {
    body["probes"].as_array().is_some_and(|probes| {
        probes
            .iter()
            .any(|p| p["name"] == probe && p["status"] == status)
    })
}

async fn wait_for(client: &reqwest::Client, base: &str, what: &str, cond: impl Fn(&Value) -> bool) {
    let ok = support::eventually(WAIT, || {
        let (client, base) = (client.clone(), base.to_owned());
        let cond = &cond;
        async move { cond(&dashboard(&client, &base).await) }
    })
    .await;
    assert!(
        ok,
        "{what} within {WAIT:?}; last /api/dashboard: {:#}",
        dashboard(client, base).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_an_outage_its_issue_and_incident_then_the_recovery() {
    let Some(chromium) = find_chromium() else {
        assert!(
            std::env::var_os("WARDEN_REQUIRE_BROWSER").is_none(),
            "WARDEN_REQUIRE_BROWSER is set but neither `chromium` nor `chromium-browser` is on PATH"
        );
        println!("SKIPPED: chromium not installed (dashboard browser test did not run)");
        eprintln!("SKIPPED: chromium not installed (dashboard browser test did not run)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("chromium-profile");
    let target = Switchable::start(200).await;
    let config = format!(
        "[debounce]\nfailure_threshold = 2\n\n\
         [[probes]]\nname = \"api\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"100ms\"\ntimeout = \"80ms\"\n\n\
         [[components]]\nname = \"api\"\nprobes = [\"api\"]\n",
        target.url
    );
    let warden = start(dir.path(), &config).await;
    let base = format!("http://{}", warden.addr);
    let page = format!("{base}/");
    let client = reqwest::Client::new();

    // The page itself: HTML, never cached.
    let response = client.get(&page).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");

    wait_for(&client, &base, "api healthy", |b| {
        probe_is(b, "api", "healthy")
    })
    .await;
    let dom = dump_until(&chromium, &profile, &page, |d| {
        probe_status(d, "api").as_deref() == Some("healthy")
    })
    .await;
    assert_eq!(
        probe_status(&dom, "api").as_deref(),
        Some("healthy"),
        "rendered DOM:\n{dom}"
    );
    assert!(tag_with_id(&dom, "issue-api").is_none(), "{dom}");

    target.set(503);
    wait_for(&client, &base, "an issue and an incident", |b| {
        has_issue(b, "api") && has_incident(b) && probe_is(b, "api", "unhealthy")
    })
    .await;
    let dom = dump_until(&chromium, &profile, &page, |d| {
        probe_status(d, "api").as_deref() == Some("unhealthy")
            && tag_with_id(d, "issue-api").is_some()
            && d.contains("id=\"incident-")
    })
    .await;
    assert_eq!(
        probe_status(&dom, "api").as_deref(),
        Some("unhealthy"),
        "rendered DOM:\n{dom}"
    );
    assert!(tag_with_id(&dom, "issue-api").is_some(), "{dom}");
    assert!(dom.contains("id=\"incident-"), "{dom}");

    target.set(200);
    wait_for(&client, &base, "the issue resolved", |b| {
        !has_issue(b, "api") && probe_is(b, "api", "healthy")
    })
    .await;
    let dom = dump_until(&chromium, &profile, &page, |d| {
        probe_status(d, "api").as_deref() == Some("healthy")
            && tag_with_id(d, "issue-api").is_none()
    })
    .await;
    assert_eq!(
        probe_status(&dom, "api").as_deref(),
        Some("healthy"),
        "rendered DOM:\n{dom}"
    );
    assert!(tag_with_id(&dom, "issue-api").is_none(), "{dom}");
    warden.shutdown().await.unwrap();
}
