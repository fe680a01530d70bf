//! Files are private and symlinks do not redirect writes: symlinks planted at
//! the temporary names the old writers used and at snapshot sources change
//! nothing outside the intended file, and a real run of the binary leaves a
//! 0700 state dir holding only 0600 files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use warden::audit::Cursor;
use warden::control::DrEpoch;
use warden::escalation::{PatchHistory, PatchPolicy, Snapshots, snapshot};
use warden::settings::PatchSettings;

const VICTIM: &str = "must not change";

/// A file outside the directories Warden writes to, readable by its owner only.
fn victim(dir: &Path) -> PathBuf {
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let path = outside.join("victim");
    std::fs::write(&path, VICTIM).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Plants symlinks to `victim` at every temporary name the old writers
/// derived from `target`: `<target>.tmp` (with_extension), `.<name>.tmp`
/// and `.<name>.warden-tmp-<pid>-<n>`.
fn plant(target: &Path, victim: &Path) {
    let dir = target.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let name = target.file_name().unwrap().to_string_lossy().into_owned();
    let mut names = vec![
        target.with_extension("tmp"),
        dir.join(format!(".{name}.tmp")),
    ];
    for n in 0..64 {
        names.push(dir.join(format!(".{name}.warden-tmp-{}-{n}", std::process::id())));
    }
    for link in names {
        let _ = symlink(victim, link);
    }
}

fn assert_victim(victim: &Path) {
    assert_eq!(std::fs::read_to_string(victim).unwrap(), VICTIM);
    assert_eq!(mode(victim), 0o600);
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o777
}

#[test]
fn symlinks_at_predictable_temp_names_redirect_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let victim = victim(dir.path());
    let state = dir.path().join("var");

    // Cursors.
    let cursors = state.join("cursors");
    plant(&cursors.join("wake"), &victim);
    Cursor::new(&cursors, "wake").unwrap().store(42).unwrap();
    assert_eq!(Cursor::load(&cursors, "wake").unwrap(), Some(42));
    assert_eq!(mode(&cursors.join("wake")), 0o600);
    assert_victim(&victim);

    // The DR epoch files, in and outside the state dir.
    let known = dir.path().join("dr/known_epoch");
    plant(&state.join("state_epoch"), &victim);
    plant(&known, &victim);
    DrEpoch::new(&state, &known).check(0).unwrap();
    assert_eq!(mode(&state.join("state_epoch")), 0o600);
    assert_eq!(mode(&known), 0o600);
    assert_victim(&victim);

    // Warden's own config snapshot.
    let config = snapshot::config_snapshot_path(&state);
    plant(&config, &victim);
    snapshot::snapshot_config(&state, "[service]\n").unwrap();
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "[service]\n");
    assert_eq!(mode(&config), 0o600);
    assert_victim(&victim);

    // A patched file: the write lands in the file, not in a planted link.
    let site = dir.path().join("etc/site");
    let conf = site.join("app.conf");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(&conf, "v1").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o640)).unwrap();
    plant(&conf, &victim);
    let policy = PatchPolicy::new(&PatchSettings {
        paths: vec![format!("{}/*.conf", site.display())],
        ..PatchSettings::default()
    })
    .unwrap();
    let history = PatchHistory::open(&state).unwrap();
    let patch = serde_json::json!({ "files": [{ "path": conf, "content": "v2" }] });
    history
        .apply_patch("site", "agent", &patch, &policy)
        .unwrap();
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "v2");
    assert_eq!(mode(&conf), 0o640, "a patched file keeps its mode");
    history.revert_last("site").unwrap();
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "v1");
    assert_victim(&victim);
}

#[test]
fn snapshots_do_not_follow_symlinks_out_of_their_paths() {
    let dir = tempfile::tempdir().unwrap();
    let victim = victim(dir.path());
    let state = dir.path().join("var");
    let site = dir.path().join("etc/site");
    std::fs::create_dir_all(&site).unwrap();
    let good = site.join("good.conf");
    std::fs::write(&good, "setting = good\n").unwrap();
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The source itself is a link to the root-only file...
    let linked = site.join("linked.conf");
    symlink(&victim, &linked).unwrap();
    // ...or a directory on its way is.
    symlink(victim.parent().unwrap(), site.join("via")).unwrap();
    let through = site.join("via/victim");

    let report = Snapshots::take(
        &state,
        "site",
        &[good.clone(), linked.clone(), through.clone()],
    )
    .unwrap();
    assert_eq!(report.copied, std::slice::from_ref(&good));
    assert_eq!(report.refused, [linked.clone(), through.clone()]);

    // No copy holds the root-only content, and every copy is private.
    let snapshots = state.join("snapshots");
    let mut files = Vec::new();
    walk(&snapshots, &mut |path, meta| {
        if meta.is_dir() {
            assert_eq!(meta.mode() & 0o777, 0o700, "{path:?}");
        } else {
            assert_eq!(meta.mode() & 0o777, 0o600, "{path:?}");
            files.push(std::fs::read(path).unwrap());
        }
    });
    assert!(!files.is_empty());
    for bytes in &files {
        assert!(!String::from_utf8_lossy(bytes).contains(VICTIM));
    }

    // A restore writes the good file back and leaves the links alone.
    std::fs::write(&good, "setting = broken\n").unwrap();
    let restored = Snapshots::restore(&state, "site").unwrap();
    assert_eq!(restored.restored, std::slice::from_ref(&good));
    assert_eq!(std::fs::read_to_string(&good).unwrap(), "setting = good\n");
    assert_eq!(mode(&good), 0o644);
    assert!(
        std::fs::symlink_metadata(&linked)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_victim(&victim);

    // A restore refuses a path that became a link since the snapshot.
    std::fs::remove_file(&good).unwrap();
    symlink(&victim, &good).unwrap();
    assert!(Snapshots::restore(&state, "site").is_err());
    assert_victim(&victim);
}

fn walk(dir: &Path, visit: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        visit(&path, &meta);
        if meta.is_dir() {
            walk(&path, visit);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_run_leaves_a_private_state_dir() {
    use support::process::{start, terminate, write_config};
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let mode_file = dir.path().join("site.mode");
    std::fs::write(&mode_file, "failing").unwrap();
    let conf = dir.path().join("site.conf");
    std::fs::write(&conf, "setting = good\n").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let bin = support::process::warden_bin();
    let extra = format!(
        "[debounce]\nfailure_threshold = 2\n\n\
         [[probes]]\nname = \"site\"\ncomponent = \"site\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{port}/health\"\ninterval = \"100ms\"\ntimeout = \"80ms\"\n\n\
         [[components]]\nname = \"site\"\ncriticality = \"high\"\nrun = [\"{}\", \"demo-target\", \"--listen\", \"127.0.0.1:{port}\", \"--state-file\", \"{}\"]\n\
         rollback = {{ snapshot = [\"{}\"] }}\n\
         [components.fix]\nenabled = true\naction = {{ kind = \"http\", url = \"http://127.0.0.1:{port}/control/recover\" }}\nverify_timeout = \"5s\"\n",
        bin.display(),
        mode_file.display(),
        conf.display()
    );
    let config = write_config(dir.path(), &extra);
    let mut running = start(&config).await;
    let state = dir.path().join("var");
    // Wait for an incident's evidence, the wake cursor and a fix: most of
    // what Warden writes.
    let written = support::eventually(Duration::from_secs(60), || {
        let evidence = std::fs::read_dir(state.join("incidents"))
            .ok()
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .any(|incident| {
                std::fs::read_dir(incident.path().join("evidence"))
                    .is_ok_and(|mut files| files.next().is_some())
            });
        let cursors =
            std::fs::read_dir(state.join("cursors")).is_ok_and(|mut files| files.next().is_some());
        let snapshot = state.join("snapshots/site/manifest.json").exists();
        async move { evidence && cursors && snapshot }
    })
    .await;
    assert!(written, "no evidence, cursor or snapshot within 60s");
    terminate(&running.child);
    let status = tokio::time::timeout(Duration::from_secs(30), running.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");

    assert_eq!(mode(&state), 0o700);
    let mut seen = 0;
    walk(&state, &mut |path, meta| {
        seen += 1;
        let expected = if meta.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(meta.mode() & 0o777, expected, "{path:?}");
    });
    assert!(seen > 10, "only {seen} entries in the state dir");
    // The operator's file keeps its own mode.
    assert_eq!(mode(&conf), 0o644);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_warns_about_a_token_file_others_can_read() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("operator-token");
    std::fs::write(&token, "an-operator-token-long-enough\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\noperator_token_file = \"{}\"\n\n[telemetry]\nlog_format = \"json\"\n",
            dir.path().join("var").display(),
            token.display()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(support::process::warden_bin())
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let read = async {
        let mut seen = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let listening = line.contains("API listening.");
            seen.push(line);
            if listening {
                break;
            }
        }
        seen
    };
    let seen = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("warden did not start within 60s");
    let _ = child.kill().await;
    assert!(
        seen.iter()
            .any(|line| line.contains("readable by other users")
                && line.contains("service.operator_token_file")
                && line.contains("0644")),
        "{seen:#?}"
    );
}
