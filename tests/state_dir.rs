//! The state directory stays bounded and private to its instance: config
//! versions stored once by digest, retention of audit segments and resolved
//! incidents, disk-use gauges, and a known DR epoch per state dir.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::path::Path;

use warden::app;
use warden::settings::{ConfigSource, Settings, load_with_env};

fn settings(state_dir: &Path, body: &str) -> Settings {
    let toml = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\n\n{body}",
        state_dir.display()
    );
    load_with_env(
        &ConfigSource::Text {
            name: "test".into(),
            toml,
        },
        Some(HashMap::new()),
    )
    .unwrap_or_else(|e| panic!("{:?}", e.lines()))
}

#[test]
fn sibling_state_dirs_get_distinct_default_known_epoch_files() {
    let root = tempfile::tempdir().unwrap();
    let a = settings(&root.path().join("a"), "");
    let b = settings(&root.path().join("b"), "");
    let known_a = a.dr.known_epoch_path(&a.service.state_dir);
    let known_b = b.dr.known_epoch_path(&b.service.state_dir);
    assert_ne!(known_a, known_b);
    // Still outside each state dir, and still under a `warden-dr` directory
    // next to it (what the README promises).
    for (known, state) in [
        (&known_a, root.path().join("a")),
        (&known_b, root.path().join("b")),
    ] {
        assert!(!known.starts_with(&state), "{}", known.display());
        assert!(
            known.starts_with(root.path().join("warden-dr")),
            "{}",
            known.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_in_a_sibling_dir_does_not_trip_the_other_ones_rewind_gate() {
    let root = tempfile::tempdir().unwrap();
    // Instance A runs, stops, and has recorded its epoch and high-water mark.
    let a = app::start(settings(&root.path().join("a"), ""))
        .await
        .unwrap();
    assert!(a.rewind_detected().is_none());
    a.shutdown().await.unwrap();

    // Instance B boots for the first time next to it: nothing was restored.
    let b = app::start(settings(&root.path().join("b"), ""))
        .await
        .unwrap();
    assert!(
        b.rewind_detected().is_none(),
        "a fresh sibling instance was taken for a restore: {:?}",
        b.rewind_detected()
    );
    b.shutdown().await.unwrap();

    // And A, restarted, still finds its own epoch consistent.
    let a = app::start(settings(&root.path().join("a"), ""))
        .await
        .unwrap();
    assert!(a.rewind_detected().is_none(), "{:?}", a.rewind_detected());
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_adopts_the_known_epoch_from_its_old_default_location() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("a");
    let a = app::start(settings(&state, "")).await.unwrap();
    a.shutdown().await.unwrap();
    // What an older release left behind: the known epoch in the shared place.
    let s = settings(&state, "");
    let known = s.dr.known_epoch_path(&state);
    let legacy = root.path().join("warden-dr").join("known_epoch");
    std::fs::rename(&known, &legacy).unwrap();

    let a = app::start(settings(&state, "")).await.unwrap();
    assert!(a.rewind_detected().is_none(), "{:?}", a.rewind_detected());
    a.shutdown().await.unwrap();
    assert!(known.exists());
}

use serde_json::{Value, json};
use support::instance::{self as instance, rows};
use support::process::TOKEN;

async fn post(base: &str, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

fn probes(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[probes]]\nname = \"beat-{i}\"\nkind = \"heartbeat\"\nmax_silence = \"1h\"\n\n"
            )
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_refer_to_one_stored_config_version_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let warden = instance::start(dir.path(), &probes(200)).await;
    let base = format!("http://{}", warden.addr);
    let mut ids = Vec::new();
    for n in 0..3 {
        let body = post(
            &base,
            "/api/incidents",
            json!({ "title": format!("drill {n}") }),
        )
        .await;
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let state = dir.path().join("var");
    let mut digests = Vec::new();
    for id in &ids {
        let evidence = state.join("incidents").join(id).join("evidence");
        let file = std::fs::read_dir(&evidence)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with("effective-config.json"))
            .unwrap_or_else(|| panic!("no effective-config evidence in {}", evidence.display()));
        let bytes = std::fs::read(&file).unwrap();
        // A reference, not a copy of a 200-probe configuration.
        assert!(
            bytes.len() < 1024,
            "{} is {} bytes",
            file.display(),
            bytes.len()
        );
        let reference: Value = serde_json::from_slice(&bytes).unwrap();
        let stored = state.join(reference["path"].as_str().unwrap());
        let content = std::fs::read(&stored).unwrap();
        assert_eq!(
            sha256(&content),
            reference["config_digest"].as_str().unwrap()
        );
        // The stored version is the redacted serialization.
        let text = String::from_utf8(content).unwrap();
        assert!(text.contains("beat-199"));
        assert!(
            !text.contains(TOKEN),
            "the stored config holds the token in clear"
        );
        digests.push(reference["config_digest"].as_str().unwrap().to_owned());
    }
    digests.dedup();
    assert_eq!(digests.len(), 1, "{digests:?}");
    let versions = std::fs::read_dir(state.join("config")).unwrap().count();
    assert_eq!(versions, 1);
    warden.shutdown().await.unwrap();
}

fn set_age(path: &Path, age: std::time::Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - age)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_old_segments_and_resolved_incidents_and_metrics_show_disk_use() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("var");
    let small_log = "[audit]\nrotate_bytes = \"4KiB\"\n\n";

    // A first run: an incident opened and resolved, and enough rows for
    // several log files.
    let warden = instance::start(dir.path(), small_log).await;
    let base = format!("http://{}", warden.addr);
    let id = post(&base, "/api/incidents", json!({ "title": "old drill" })).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let open = post(&base, "/api/incidents", json!({ "title": "still open" })).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    post(
        &base,
        &format!("/api/incidents/{id}/resolve"),
        json!({ "note": "drill over", "force": true }),
    )
    .await;
    for n in 0..60 {
        post(
            &base,
            "/api/audit/notes",
            json!({ "text": format!("note {n} {}", "x".repeat(200)) }),
        )
        .await;
    }
    warden.shutdown().await.unwrap();

    // Age everything: the resolved incident resolved ten days ago, and every
    // log file's rows are ten days old.
    let ten_days = std::time::Duration::from_secs(10 * 24 * 3600);
    let record = state.join("incidents").join(&id).join("incident.json");
    let mut incident: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(incident["status"], "resolved");
    let resolved = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(240);
    incident["resolved_at"] = json!(resolved.to_string());
    std::fs::write(&record, serde_json::to_vec(&incident).unwrap()).unwrap();
    let segments = |state: &Path| -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(state.join("audit"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".jsonl"))
            .collect();
        files.sort();
        files
    };
    let before = segments(&state);
    assert!(before.len() >= 4, "{before:?}");
    for file in &before {
        set_age(file, ten_days);
    }
    // The wake consumer has read part of the log only: the files after its
    // cursor must stay.
    let reader = warden::audit::AuditReader::open(&state.join("audit")).unwrap();
    let last = reader.last_seq().unwrap().unwrap();
    let held_from = warden::audit::list_segments(&state.join("audit")).unwrap()[2].0;
    std::fs::write(
        state.join("cursors/wake-consumer"),
        format!("{}\n", held_from - 1),
    )
    .unwrap();

    let warden = instance::start(
        dir.path(),
        "[audit]\nrotate_bytes = \"4KiB\"\nretain_for = \"1h\"\n\n[incidents]\nretain_for = \"7d\"\n\n",
    )
    .await;
    let base = format!("http://{}", warden.addr);
    let pruned = instance::wait_rows(dir.path(), "storage.pruned", 1).await;
    let report = &pruned[0].details;
    assert_eq!(report["incidents"], json!([id]), "{report:#}");
    assert!(!state.join("incidents").join(&id).exists());
    assert!(state.join("incidents").join(&open).exists());
    let after = segments(&state);
    // The two files the cursor had finished are gone (the consumer may have
    // moved on since and freed more); the file being written stays.
    assert!(
        !after.contains(&before[0]) && !after.contains(&before[1]),
        "{report:#}"
    );
    assert!(after.contains(before.last().unwrap()), "{report:#}");
    // What is left is whole: no gap from the first kept row to the last.
    let kept = warden::audit::AuditReader::open(&state.join("audit")).unwrap();
    let seqs: Vec<u64> = kept.rows_from(1, None).map(|r| r.unwrap().seq).collect();
    assert!(seqs[0] >= held_from, "{:?}", &seqs[..3]);
    assert_eq!(seqs.len() as u64, seqs.last().unwrap() - seqs[0] + 1);
    assert!(*seqs.last().unwrap() > last);

    let listed: Value = reqwest::get(format!("{base}/api/incidents"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!listed.to_string().contains(&id), "{listed:#}");
    assert!(listed.to_string().contains(&open), "{listed:#}");

    // Disk use by area.
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gauge = |area: &str| -> u64 {
        let prefix = format!("warden_state_dir_bytes{{area=\"{area}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert!(gauge("audit") > 0);
    assert!(gauge("incidents") > 0);
    assert!(gauge("config") > 0);
    let _ = gauge("snapshots");
    assert!(gauge("total") >= gauge("audit") + gauge("incidents") + gauge("config"));
    assert!(rows(dir.path(), "storage.pruned").len() == 1);
    warden.shutdown().await.unwrap();
}

#[test]
fn retention_keys_are_validated() {
    let bad = load_with_env(
        &ConfigSource::Text {
            name: "test".into(),
            toml: "[audit]\nretain_for = \"10s\"\nretain_bytes = \"1KiB\"\n[incidents]\nretain_for = \"1h\"\n".into(),
        },
        Some(HashMap::new()),
    )
    .unwrap_err();
    let lines = bad.lines().join("\n");
    for key in [
        "audit.retain_for",
        "audit.retain_bytes",
        "incidents.retain_for",
    ] {
        assert!(lines.contains(key), "{key} not named in: {lines}");
    }
    let ok = settings(
        Path::new("/tmp/x"),
        "[audit]\nretain_for = \"30d\"\nretain_bytes = \"10GiB\"\n[incidents]\nretain_for = \"90d\"\n",
    );
    assert_eq!(
        ok.audit.retain_bytes.unwrap().as_u64(),
        10 * 1024 * 1024 * 1024
    );
    let defaults = settings(Path::new("/tmp/x"), "");
    assert!(defaults.audit.retain_for.is_none() && defaults.audit.retain_bytes.is_none());
    assert!(defaults.incidents.retain_for.is_none());
}
