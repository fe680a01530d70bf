//! `POST /api/control`, overlap operator tokens, SIGHUP reloads, the
//! `cursors_consistent` and `dr_epoch` boot gates, and `warden control`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use warden::app::{self, Warden};
use warden::settings::{ConfigSource, load_with_env};

const TOKEN: &str = support::process::TOKEN;
const OTHER: &str = "second-operator-token-abcdef";

fn service_toml(dir: &Path, tokens: &str) -> String {
    format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\nshutdown_timeout = \"10s\"\n{tokens}\n",
        dir.join("var").display()
    )
}

async fn start_with(dir: &Path, tokens: &str) -> Warden {
    let settings = load_with_env(
        &ConfigSource::Text {
            name: "test".into(),
            toml: service_toml(dir, tokens),
        },
        Some(HashMap::new()),
    )
    .unwrap();
    app::start(settings).await.unwrap()
}

async fn start(dir: &Path) -> Warden {
    start_with(dir, &format!("operator_token = \"{TOKEN}\"")).await
}

/// POSTs `body` to `path` with an optional bearer token: `(status, json)`.
async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn control(base: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    post(base, "/api/control", token, body).await
}

async fn get(base: &str, path: &str) -> Value {
    reqwest::get(format!("{base}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn rows(base: &str, seam: &str) -> Vec<Value> {
    let body = get(base, &format!("/api/audit?seam={seam}&limit=1000")).await;
    body["rows"].as_array().cloned().unwrap_or_default()
}

fn gate<'a>(boot: &'a Value, name: &str) -> &'a Value {
    boot["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no gate {name} in {boot}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_need_the_token_and_change_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start(dir.path()).await;
    let base = format!("http://{}", warden.addr);
    let pause = json!({ "command": "pause", "reason": "deploy" });

    let (status, body) = control(&base, None, pause.clone()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = control(&base, Some("wrong-token-wrong-token"), pause.clone()).await;
    assert_eq!(status, 403);
    assert_eq!(
        get(&base, "/api/operational-state").await["state"],
        "RUNNING"
    );
    assert!(rows(&base, "control.command").await.is_empty());

    let (status, body) = control(&base, Some(TOKEN), json!({ "command": "explode" })).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
    let response = reqwest::Client::new()
        .post(format!("{base}/api/control"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let (status, body) = control(&base, Some(TOKEN), pause.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "state": "PAUSED", "degradation_reasons": ["operator"] })
    );
    let (_, body) = control(&base, Some(TOKEN), json!({ "command": "resume" })).await;
    assert_eq!(
        body,
        json!({ "state": "RUNNING", "degradation_reasons": [] })
    );

    // Reset clears explicit reasons, whoever set them.
    warden.state.pause("meltdown");
    control(&base, Some(TOKEN), pause).await;
    let (_, body) = control(&base, Some(TOKEN), json!({ "command": "reset" })).await;
    assert_eq!(
        body,
        json!({ "state": "RUNNING", "degradation_reasons": [] })
    );

    let commands = rows(&base, "control.command").await;
    assert_eq!(commands.len(), 4, "{commands:?}");
    let first = &commands[0]["details"];
    assert_eq!(first["command"], "pause");
    assert_eq!(first["reason"], "deploy");
    assert_eq!(first["actor"], "operator");
    assert_eq!(first["result"], "applied");
    assert_eq!(first["before"]["state"], "RUNNING");
    assert_eq!(first["after"]["degradation_reasons"], json!(["operator"]));
    assert_eq!(
        commands[3]["details"]["before"]["degradation_reasons"],
        json!(["meltdown", "operator"])
    );
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_configured_token_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("third");
    std::fs::write(&file, "third-operator-token-0000\n").unwrap();
    let tokens = format!(
        "operator_token = \"{TOKEN}\"\noperator_tokens = [\"{OTHER}\"]\noperator_token_files = [\"{}\"]",
        file.display()
    );
    let warden = start_with(dir.path(), &tokens).await;
    let base = format!("http://{}", warden.addr);
    for token in [TOKEN, OTHER, "third-operator-token-0000"] {
        let (status, body) = control(&base, Some(token), json!({ "command": "pause" })).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _) = control(
        &base,
        Some("third-operator-token"),
        json!({ "command": "pause" }),
    )
    .await;
    assert_eq!(status, 403);
    warden.shutdown().await.unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_state_dir_boots_paused_until_bumped_and_reset() {
    let dir = tempfile::tempdir().unwrap();
    let var = dir.path().join("var");
    // The default known-epoch file, named after the state dir (`var`).
    let known = dir.path().join("warden-dr/var/known_epoch");

    let warden = start(dir.path()).await;
    assert!(warden.rewind_detected().is_none());
    warden.shutdown().await.unwrap();
    let first: Value = serde_json::from_slice(&std::fs::read(&known).unwrap()).unwrap();
    assert_eq!(first["epoch"], 1);
    let backup = dir.path().join("backup");
    copy_dir(&var, &backup);

    let warden = start(dir.path()).await;
    let base = format!("http://{}", warden.addr);
    let note = json!({ "text": "after the backup" });
    for _ in 0..3 {
        let response = reqwest::Client::new()
            .post(format!("{base}/api/audit/notes"))
            .bearer_auth(TOKEN)
            .json(&note)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    warden.shutdown().await.unwrap();

    std::fs::remove_dir_all(&var).unwrap();
    copy_dir(&backup, &var);
    let warden = start(dir.path()).await;
    let base = format!("http://{}", warden.addr);
    assert!(warden.rewind_detected().is_some());
    let state = get(&base, "/api/operational-state").await;
    assert_eq!(state["state"], "PAUSED", "{state}");
    assert_eq!(state["degradation_reasons"], json!(["substrate"]));
    let boot = get(&base, "/api/boot-status").await;
    assert_eq!(boot["ready"], false);
    let names: Vec<&str> = boot["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "config_valid",
            "state_dir_writable",
            "audit_recovered",
            "cursors_consistent",
            "dr_epoch"
        ]
    );
    assert_eq!(gate(&boot, "dr_epoch")["status"], "fail");
    assert_eq!(gate(&boot, "cursors_consistent")["status"], "pass");
    let detected = rows(&base, "dr.rewind_detected").await;
    assert_eq!(detected.len(), 1, "{detected:?}");
    let details = &detected[0]["details"];
    assert_eq!(details["state_epoch"], 1);
    assert_eq!(details["known_epoch"], 1);
    assert!(details["log_last_seq"].as_u64() < details["known_high_water"].as_u64());
    // The rewind is an incident of its own: SEV1, opened once the commander is up.
    let client = reqwest::Client::new();
    let mut listed = serde_json::Value::Null;
    let opened = support::eventually(Duration::from_secs(20), || {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let Ok(response) = client.get(format!("{base}/api/incidents")).send().await else {
                return false;
            };
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            body["incidents"]
                .as_array()
                .is_some_and(|list| list.iter().any(|i| i["severity"] == "SEV1"))
        }
    })
    .await;
    if !opened {
        listed = client
            .get(format!("{base}/api/incidents"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    assert!(opened, "no SEV1 incident for the rewind: {listed}");

    // Reset alone does not clear an unresolved rewind.
    let (_, body) = control(&base, Some(TOKEN), json!({ "command": "reset" })).await;
    assert_eq!(body["degradation_reasons"], json!(["substrate"]));
    let (status, body) = control(
        &base,
        Some(TOKEN),
        json!({ "command": "bump_epoch", "reason": "restore verified" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rows(&base, "dr.epoch_bumped").await.len(), 1);
    let (_, body) = control(&base, Some(TOKEN), json!({ "command": "reset" })).await;
    assert_eq!(
        body,
        json!({ "state": "RUNNING", "degradation_reasons": [] })
    );
    warden.shutdown().await.unwrap();
    let bumped: Value = serde_json::from_slice(&std::fs::read(&known).unwrap()).unwrap();
    assert_eq!(bumped["epoch"], 2);
    let state_epoch: Value =
        serde_json::from_slice(&std::fs::read(var.join("state_epoch")).unwrap()).unwrap();
    assert_eq!(state_epoch["epoch"], 2);

    // The next boot is clean.
    let warden = start(dir.path()).await;
    assert!(warden.rewind_detected().is_none());
    assert_eq!(warden.state.state(), warden::control::RunState::Running);
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_beyond_the_log_boots_paused() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start(dir.path()).await;
    warden.shutdown().await.unwrap();
    let cursors = dir.path().join("var/cursors");
    std::fs::create_dir_all(&cursors).unwrap();
    std::fs::write(cursors.join("test-consumer"), "1000000\n").unwrap();

    let warden = start(dir.path()).await;
    let base = format!("http://{}", warden.addr);
    assert!(warden.rewind_detected().is_some());
    let state = get(&base, "/api/operational-state").await;
    assert_eq!(state["degradation_reasons"], json!(["substrate"]));
    let boot = get(&base, "/api/boot-status").await;
    let cursors_gate = gate(&boot, "cursors_consistent");
    assert_eq!(cursors_gate["status"], "fail");
    assert!(
        cursors_gate["detail"]
            .as_str()
            .unwrap()
            .contains("test-consumer at 1000000"),
        "{cursors_gate}"
    );
    // Not a DR rewind: reset clears it.
    let (_, body) = control(&base, Some(TOKEN), json!({ "command": "reset" })).await;
    assert_eq!(body["state"], "RUNNING");
    warden.shutdown().await.unwrap();
}

// --- The real binary: stop and SIGHUP need a process. -----------------------

fn write_process_config(dir: &Path, tokens: &str) -> std::path::PathBuf {
    let path = dir.join("warden.toml");
    let text = format!(
        "{}\n[telemetry]\nlog_format = \"json\"\n",
        service_toml(dir, tokens)
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn signal(child: &tokio::process::Child, name: &str) {
    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_control_stop_exits_the_process_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_process_config(dir.path(), &format!("operator_token = \"{TOKEN}\""));
    let mut running = support::process::start(&config).await;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();

    let cli = |args: Vec<String>| {
        std::process::Command::new(support::process::warden_bin())
            .args(args)
            .env_remove("WARDEN_OPERATOR_TOKEN")
            .output()
            .unwrap()
    };
    let pause = cli(vec![
        "control".into(),
        "pause".into(),
        "--api".into(),
        running.base.clone(),
        "--token-file".into(),
        token_file.display().to_string(),
        "--reason".into(),
        "test".into(),
    ]);
    assert_eq!(pause.status.code(), Some(0), "{pause:?}");
    assert_eq!(
        String::from_utf8_lossy(&pause.stdout).trim(),
        "state: PAUSED (operator)"
    );
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "not-the-operator-token").unwrap();
    let refused = cli(vec![
        "control".into(),
        "resume".into(),
        "--api".into(),
        running.base.clone(),
        "--token-file".into(),
        bad.display().to_string(),
    ]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("the operator token is wrong"));
    let usage = cli(vec!["control".into(), "explode".into()]);
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");

    let stop = cli(vec![
        "control".into(),
        "stop".into(),
        "--api".into(),
        running.base.clone(),
        "--token-file".into(),
        token_file.display().to_string(),
    ]);
    assert_eq!(stop.status.code(), Some(0), "{stop:?}");
    let status = tokio::time::timeout(Duration::from_secs(30), running.child.wait())
        .await
        .expect("warden did not stop after `control stop`")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let reader = warden::audit::AuditReader::open(&dir.path().join("var/audit")).unwrap();
    let seams: Vec<String> = reader
        .rows_from(1, None)
        .map(|row| row.unwrap().seam)
        .collect();
    assert!(seams.contains(&"service.stopping".to_owned()), "{seams:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rereads_token_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let config = write_process_config(
        dir.path(),
        &format!("operator_token_files = [\"{}\"]", file.display()),
    );
    let mut running = support::process::start(&config).await;
    let base = running.base.clone();
    let pause = json!({ "command": "pause" });
    assert_eq!(control(&base, Some(TOKEN), pause.clone()).await.0, 200);
    assert_eq!(control(&base, Some(OTHER), pause.clone()).await.0, 403);

    std::fs::write(&file, format!("{OTHER}\n")).unwrap();
    signal(&running.child, "HUP");
    let rotated = support::eventually(Duration::from_secs(10), || {
        let (base, pause) = (base.clone(), pause.clone());
        async move { control(&base, Some(OTHER), pause).await.0 == 200 }
    })
    .await;
    assert!(rotated, "the new token was not accepted after SIGHUP");
    assert_eq!(control(&base, Some(TOKEN), pause).await.0, 403);
    let reloaded = rows(&base, "service.secrets_reloaded").await;
    assert_eq!(reloaded.len(), 1);
    assert_eq!(reloaded[0]["details"]["operator_tokens"], 1);

    support::process::terminate(&running.child);
    let status = tokio::time::timeout(Duration::from_secs(30), running.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let log = std::fs::read_to_string(
        std::fs::read_dir(dir.path().join("var/audit"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    assert!(!log.contains(TOKEN) && !log.contains(OTHER));
}

async fn chaos(base: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    post(base, "/api/chaos/faults", token, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chaos_surface_is_absent_unless_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start(dir.path()).await;
    let base = format!("http://{}", warden.addr);
    let kill = json!({ "fault": "kill_actor", "target": "wake" });
    let (status, body) = chaos(&base, Some(TOKEN), kill).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    assert!(warden.chaos.is_none());
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chaos_surface_needs_the_token_and_kills_what_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start_with(
        dir.path(),
        &format!("operator_token = \"{TOKEN}\"\n\n[chaos]\nenabled = true"),
    )
    .await;
    let base = format!("http://{}", warden.addr);
    let kill = json!({ "fault": "kill_actor", "target": "wake" });
    assert_eq!(chaos(&base, None, kill.clone()).await.0, 401);
    assert_eq!(chaos(&base, Some(OTHER), kill.clone()).await.0, 403);
    let (status, body) = chaos(
        &base,
        Some(TOKEN),
        json!({ "fault": "kill_actor", "target": "root" }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown target")
    );
    let (status, _) = chaos(
        &base,
        Some(TOKEN),
        json!({ "fault": "audit_write_errors", "count": 0 }),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        rows(&base, "supervision.exited").await.is_empty(),
        "a refused call changed nothing"
    );

    let (status, body) = chaos(&base, Some(TOKEN), kill).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["landed"], true);
    assert!(
        support::eventually(support::instance::WAIT, || {
            let base = base.clone();
            async move {
                rows(&base, "supervision.restarted")
                    .await
                    .iter()
                    .any(|row| row["details"]["child"] == "wake")
            }
        })
        .await,
        "the wake consumer was not restarted after the injected kill"
    );
    // Armed write failures: the writer retries, the row still lands.
    let (status, _) = chaos(
        &base,
        Some(TOKEN),
        json!({ "fault": "audit_write_errors", "count": 2, "partial": true }),
    )
    .await;
    assert_eq!(status, 200);
    let seq = warden
        .audit
        .append(warden::audit::NewRow::new("after.faults", json!({})))
        .await
        .unwrap();
    assert!(seq > 0);
    let faults = rows(&base, "chaos.fault").await;
    assert_eq!(faults.len(), 2, "{faults:?}");
    warden.shutdown().await.unwrap();
}
