//! A new configuration that melts the supervision tree down is set aside for
//! the last-known-good one (DESIGN §3), without ever writing the operator's
//! `--config` file: Warden boots from its state dir's copy, says so in
//! `/api/boot-status`, on the dashboard and in the audit log, and takes its
//! operator tokens from the operator's current configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::instance::rows;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use warden::settings::ConfigSource;

const WAIT: Duration = Duration::from_secs(30);
const OLD_TOKEN: &str = "old-token-revoked-0123456789";
const NEW_TOKEN: &str = "new-token-current-0123456789";

fn config(state: &Path, token: &str, probes: &[&str]) -> String {
    let mut text = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\noperator_token = \"{token}\"\n\n[supervision]\nmax_restarts = 1\nperiod = \"60s\"\nstable_after = \"300ms\"\n\n",
        state.display()
    );
    for probe in probes {
        text.push_str(&format!(
            "[[probes]]\nname = \"{probe}\"\nkind = \"heartbeat\"\nmax_silence = \"1h\"\n\n"
        ));
    }
    text
}

fn digest(text: &str) -> String {
    use sha2::Digest;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    )
}

type Stop = tokio::sync::oneshot::Sender<()>;
type Run = tokio::task::JoinHandle<Result<(), warden::app::AppError>>;

fn run(path: &Path) -> (Stop, Run) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(warden::app::run_source(
        ConfigSource::File(path.to_owned()),
        async {
            let _ = stopped.await;
        },
    ));
    (stop, run)
}

/// The API address of the newest boot (from its `service.boot` row).
fn latest_api(dir: &Path, boots_before: usize) -> Option<String> {
    let boots = rows(dir, "service.boot");
    (boots.len() > boots_before)
        .then(|| boots.last()?.details["api"].as_str().map(str::to_owned))
        .flatten()
}

async fn boot_status(api: &str) -> Option<Value> {
    let response = reqwest::get(format!("http://{api}/api/boot-status"))
        .await
        .ok()?;
    response.json().await.ok()
}

/// Waits for the boot after `boots_before` boots to answer, returning its
/// address and boot status.
async fn next_boot(dir: &Path, boots_before: usize) -> (String, Value) {
    let found = std::sync::Arc::new(std::sync::Mutex::new(None));
    let ok = support::eventually(WAIT, || {
        let api = latest_api(dir, boots_before);
        let found = found.clone();
        async move {
            let Some(api) = api else { return false };
            match boot_status(&api).await {
                Some(status) => {
                    *found.lock().unwrap() = Some((api, status));
                    true
                }
                None => false,
            }
        }
    })
    .await;
    assert!(
        ok,
        "no boot after {boots_before}: {:#?}",
        rows(dir, "service.*")
    );
    found.lock().unwrap().take().unwrap()
}

async fn pause(api: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{api}/api/control"))
        .bearer_auth(token)
        .json(&json!({ "command": "pause", "reason": "test" }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_that_melts_the_tree_down_is_set_aside_without_touching_the_operators_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("var");
    let path = dir.path().join("warden.toml");
    let good = config(&state, OLD_TOKEN, &["good"]);
    std::fs::write(&path, &good).unwrap();

    // A stable run makes this configuration the last-known-good one.
    let (stop, running) = run(&path);
    assert!(
        support::eventually(WAIT, || {
            let kept = !rows(dir.path(), "service.config_known_good").is_empty();
            async move { kept }
        })
        .await
    );
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();

    // The operator revokes the old token, deploys a new configuration, and
    // the tree melts down on it.
    let bad = config(&state, NEW_TOKEN, &["good", "new"]);
    std::fs::write(&path, &bad).unwrap();
    let boots = rows(dir.path(), "service.boot").len();
    let (stop, running) = run(&path);
    let rolled_back = support::eventually(WAIT, || {
        let done = !rows(dir.path(), "service.config_rolled_back").is_empty();
        if !done {
            // Kill the audit writer until the restart budget (1 in 60 s) is spent.
            for name in ractor::registry::registered() {
                if name.ends_with(".audit")
                    && let Some(cell) = ractor::registry::where_is(name)
                {
                    cell.kill();
                }
            }
        }
        async move { done }
    })
    .await;
    assert!(
        rolled_back,
        "no rollback: {:#?}",
        rows(dir.path(), "service.*")
    );

    // The operator's file is untouched and nothing was written next to it;
    // the rejected text is kept in the state dir.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), bad);
    assert!(!path.with_extension("toml.rejected").exists());
    // The kept copy has its inline secrets redacted, like every config copy.
    let kept = std::fs::read_to_string(state.join("snapshots/_warden/rejected.toml")).unwrap();
    assert_eq!(kept, warden::settings::seal_config_text(&bad));
    assert!(!kept.contains(NEW_TOKEN), "{kept}");

    // Warden runs on the good configuration and says so.
    let (api, status) = next_boot(dir.path(), boots + 1).await;
    let origin = &status["config"];
    assert_eq!(origin["source"], "last_known_good", "{status:#}");
    // The digest of the kept copy, whose inline secrets are redacted.
    assert_eq!(
        origin["digest"],
        digest(&warden::settings::seal_config_text(&good))
    );
    assert_eq!(origin["operator_config"]["digest"], digest(&bad));
    assert_eq!(
        origin["operator_config"]["path"],
        path.display().to_string()
    );
    assert!(
        origin["reason"].as_str().unwrap().contains("melted"),
        "{origin:#}"
    );
    let dashboard: Value = reqwest::get(format!("http://{api}/api/dashboard"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dashboard["boot"]["config"]["source"], "last_known_good");
    let started = rows(dir.path(), "service.started");
    assert!(
        started.last().unwrap().details["summary"]
            .as_str()
            .unwrap()
            .starts_with("1 probe(s)"),
        "{started:#?}"
    );
    let origins = rows(dir.path(), "service.config_origin");
    assert_eq!(origins.last().unwrap().details["source"], "last_known_good");
    let meltdowns = rows(dir.path(), "service.meltdown");
    assert_eq!(
        meltdowns.last().unwrap().details["action"],
        "rollback_config"
    );

    // Tokens come from the operator's current configuration: the revoked
    // one in the last-known-good text is not revived.
    assert_eq!(pause(&api, OLD_TOKEN).await, 403);
    assert_eq!(pause(&api, NEW_TOKEN).await, 200);
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();

    // A restart with the same file boots from the copy again, at once.
    let boots = rows(dir.path(), "service.boot").len();
    let (stop, running) = run(&path);
    let (api, status) = next_boot(dir.path(), boots).await;
    assert_eq!(status["config"]["source"], "last_known_good", "{status:#}");
    assert_eq!(
        status["config"]["digest"],
        digest(&warden::settings::seal_config_text(&good))
    );
    assert_eq!(pause(&api, OLD_TOKEN).await, 403);
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), bad);

    // A changed file is the operator's next attempt: it is booted as usual.
    let fixed = config(&state, NEW_TOKEN, &["good", "fixed"]);
    std::fs::write(&path, &fixed).unwrap();
    let boots = rows(dir.path(), "service.boot").len();
    let (stop, running) = run(&path);
    let (_, status) = next_boot(dir.path(), boots).await;
    assert_eq!(status["config"]["source"], "operator", "{status:#}");
    assert_eq!(status["config"]["digest"], digest(&fixed));
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}
