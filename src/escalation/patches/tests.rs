#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

fn patch(files: &[(&Path, &str)]) -> serde_json::Value {
    serde_json::json!({
        "files": files
            .iter()
            .map(|(path, content)| serde_json::json!({"path": path, "content": content}))
            .collect::<Vec<_>>()
    })
}

/// A policy allowing everything under `dir`.
fn allow(dir: &Path) -> PatchPolicy {
    PatchPolicy::new(&PatchSettings {
        paths: vec![format!("{}/**", dir.display())],
        ..PatchSettings::default()
    })
    .unwrap()
}

#[test]
fn apply_then_revert_restores_bytes_and_removes_created_files() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let binary = work.path().join("app.bin");
    let text = work.path().join("app.conf");
    let created = work.path().join("new.conf");
    let old_binary: Vec<u8> = (0..=255).rev().collect();
    std::fs::write(&binary, &old_binary).unwrap();
    std::fs::write(&text, "pool = 5\n").unwrap();

    let history = PatchHistory::open(state.path()).unwrap();
    assert_eq!(history.last_for("site").unwrap(), None);
    let entry = history
        .apply_patch(
            "site",
            "agent",
            &patch(&[
                (&binary, "now text"),
                (&text, "pool = 50\n"),
                (&created, "fresh\n"),
            ]),
            &allow(work.path()),
        )
        .unwrap();
    assert_eq!(entry.id, 1);
    assert_eq!(entry.files[0].before, Some(ContentRef::of(&old_binary)));
    assert_eq!(entry.files[1].before, Some(ContentRef::of(b"pool = 5\n")));
    assert_eq!(entry.files[1].after, Some(ContentRef::of(b"pool = 50\n")));
    assert_eq!(entry.files[2].before, None);
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "pool = 50\n");
    assert_eq!(std::fs::read_to_string(&created).unwrap(), "fresh\n");
    assert_eq!(history.last_for("site").unwrap().unwrap().id, 1);
    assert_eq!(history.last_for("other").unwrap(), None);

    let report = history.revert_last("site").unwrap();
    assert_eq!(report.reverted, 1);
    assert_eq!(report.removed, std::slice::from_ref(&created));
    assert_eq!(report.restored.len(), 2);
    assert!(report.drifted.is_empty());
    assert_eq!(std::fs::read(&binary).unwrap(), old_binary);
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "pool = 5\n");
    assert!(!created.exists());

    // The reverted entry is on disk; nothing is left to revert.
    let entries = history.entries().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].action, PatchAction::Reverted);
    assert_eq!(entries[1].reverts, Some(1));
    assert!(matches!(
        history.revert_last("site"),
        Err(PatchError::NothingToRevert(_))
    ));
}

#[test]
fn the_history_holds_digests_and_the_old_content_lives_in_a_private_store() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let secret = work.path().join("secret.conf");
    std::fs::write(&secret, "password = hunter2-old-secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let history = PatchHistory::open(state.path()).unwrap();
    history
        .apply_patch(
            "site",
            "agent",
            &patch(&[(&secret, "password = brand-new-secret\n")]),
            &allow(work.path()),
        )
        .unwrap();
    let log = std::fs::read_to_string(state.path().join(FILE_NAME)).unwrap();
    assert!(!log.contains("hunter2-old-secret"), "{log}");
    assert!(!log.contains("brand-new-secret"), "{log}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state.path().join(FILE_NAME)), 0o600);
    let store = state.path().join(CONTENT_DIR);
    assert_eq!(mode(&store), 0o700);
    let kept: Vec<_> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(mode(&kept[0]), 0o600);
    assert_eq!(
        std::fs::read_to_string(&kept[0]).unwrap(),
        "password = hunter2-old-secret\n"
    );
    // The patched file kept its mode.
    assert_eq!(mode(&secret), 0o600);

    // A damaged store restores nothing.
    std::fs::write(&kept[0], "tampered").unwrap();
    assert!(matches!(
        history.revert_last("site"),
        Err(PatchError::Corrupt { .. })
    ));
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "password = brand-new-secret\n"
    );
}

#[test]
fn revert_undoes_the_latest_patch_first_and_notes_drift() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("app.conf");
    std::fs::write(&file, "v1").unwrap();
    let history = PatchHistory::open(state.path()).unwrap();
    let policy = allow(work.path());
    history
        .apply_patch("site", "agent", &patch(&[(&file, "v2")]), &policy)
        .unwrap();
    history
        .apply_patch("site", "agent", &patch(&[(&file, "v3")]), &policy)
        .unwrap();
    std::fs::write(&file, "edited by hand").unwrap();

    let report = history.revert_last("site").unwrap();
    assert_eq!(report.reverted, 2);
    assert_eq!(report.drifted, std::slice::from_ref(&file));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "v2");
    // The hand edit is kept in the store.
    assert!(
        state
            .path()
            .join(CONTENT_DIR)
            .join(sha256_hex(b"edited by hand"))
            .exists()
    );
    let report = history.revert_last("site").unwrap();
    assert_eq!(report.reverted, 1);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "v1");
}

#[test]
fn invalid_patches_touch_nothing() {
    let state = tempfile::tempdir().unwrap();
    let history = PatchHistory::open(state.path()).unwrap();
    let policy = allow(Path::new("/tmp"));
    for bad in [
        serde_json::json!({"files": []}),
        serde_json::json!({"files": [{"path": "relative.conf", "content": "x"}]}),
        serde_json::json!({"files": [{"path": "/tmp/../etc/x", "content": "x"}]}),
        serde_json::json!({"files": [{"path": "/tmp//x", "content": "x"}]}),
        serde_json::json!({"nope": true}),
        serde_json::json!({"files": [{"path": "/tmp/x", "content": 1}]}),
    ] {
        assert!(
            matches!(
                history.apply_patch("site", "agent", &bad, &policy),
                Err(PatchError::Invalid(_))
            ),
            "{bad}"
        );
    }
    assert!(history.entries().unwrap().is_empty());
}

/// Runs `apply_patch` expecting a refusal whose reason contains `why`, and
/// checks that nothing was written or recorded.
fn refused(
    history: &PatchHistory,
    policy: &PatchPolicy,
    files: &[(&Path, &str)],
    why: &str,
    untouched: &[(&Path, Option<&str>)],
) {
    let error = history
        .apply_patch("site", "agent", &patch(files), policy)
        .unwrap_err();
    match &error {
        PatchError::Refused(reason) => assert!(reason.contains(why), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    for (path, content) in untouched {
        assert_eq!(
            std::fs::read_to_string(path).ok().as_deref(),
            *content,
            "{path:?} changed"
        );
    }
    assert!(history.entries().unwrap().is_empty());
}

#[test]
fn patches_outside_the_allow_list_through_symlinks_or_too_big_are_refused() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let allowed = work.path().join("etc/site");
    let outside = work.path().join("etc/shadow-dir");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let victim = outside.join("shadow");
    std::fs::write(&victim, "root-only").unwrap();
    let good = allowed.join("app.conf");
    std::fs::write(&good, "v1").unwrap();
    let history = PatchHistory::open(state.path()).unwrap();

    // Patching is off by default.
    let off = PatchPolicy::new(&PatchSettings::default()).unwrap();
    refused(
        &history,
        &off,
        &[(&good, "v2")],
        "patching is off",
        &[(&good, Some("v1"))],
    );

    let policy = PatchPolicy::new(&PatchSettings {
        paths: vec![format!("{}/*.conf", allowed.display())],
        max_bytes: bytesize::ByteSize::b(8),
    })
    .unwrap();
    // Outside the globs, even with an allowed file in the same patch.
    refused(
        &history,
        &policy,
        &[(&good, "v2"), (&victim, "pwned")],
        "matches none",
        &[(&good, Some("v1")), (&victim, Some("root-only"))],
    );
    // `*` does not cross a directory.
    let nested = allowed.join("sub/deep.conf");
    refused(
        &history,
        &policy,
        &[(&nested, "x")],
        "matches none",
        &[(&nested, None)],
    );
    // The target is a symlink pointing out.
    let link = allowed.join("link.conf");
    symlink(&victim, &link).unwrap();
    refused(
        &history,
        &policy,
        &[(&link, "pwned")],
        "symbolic link",
        &[(&victim, Some("root-only"))],
    );
    // A directory on the way is a symlink.
    let policy_deep = PatchPolicy::new(&PatchSettings {
        paths: vec![format!("{}/**", allowed.display())],
        ..PatchSettings::default()
    })
    .unwrap();
    symlink(&outside, allowed.join("via")).unwrap();
    refused(
        &history,
        &policy_deep,
        &[(&allowed.join("via/shadow"), "pwned")],
        "symbolic link",
        &[(&victim, Some("root-only"))],
    );
    // Over max_bytes, all files together.
    let other = allowed.join("b.conf");
    refused(
        &history,
        &policy,
        &[(&good, "12345"), (&other, "6789")],
        "over patch.max_bytes",
        &[(&good, Some("v1")), (&other, None)],
    );
    // Within every limit it applies.
    history
        .apply_patch("site", "agent", &patch(&[(&good, "v2")]), &policy)
        .unwrap();
    assert_eq!(std::fs::read_to_string(&good).unwrap(), "v2");
}

#[test]
fn globs_must_be_absolute_and_valid() {
    assert!(glob("/etc/site/*.conf").is_ok());
    assert!(glob("etc/site/*.conf").unwrap_err().contains("absolute"));
    assert!(glob("/etc/../root/*").unwrap_err().contains(".."));
    assert!(glob("/etc/[").unwrap_err().contains("not a valid glob"));
}

#[test]
fn the_digest_ignores_key_order() {
    let a = serde_json::json!({"files": [{"path": "/a", "content": "x"}]});
    let b: serde_json::Value =
        serde_json::from_str(r#"{"files": [{"content": "x", "path": "/a"}]}"#).unwrap();
    assert_eq!(digest(&a), digest(&b));
    assert_ne!(digest(&a), digest(&serde_json::json!({"files": []})));
    let described = describe(&a);
    assert_eq!(described[0]["size"], 1);
    assert!(described.to_string().find("\"x\"").is_none());
}

#[test]
fn a_torn_last_line_is_dropped_on_open() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("app.conf");
    std::fs::write(&file, "v1").unwrap();
    let policy = allow(work.path());
    let history = PatchHistory::open(state.path()).unwrap();
    history
        .apply_patch("site", "agent", &patch(&[(&file, "v2")]), &policy)
        .unwrap();
    let path = state.path().join(FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"id":2,"at":"2026-"#);
    std::fs::write(&path, &bytes).unwrap();

    let history = PatchHistory::open(state.path()).unwrap();
    assert_eq!(history.entries().unwrap().len(), 1);
    history
        .apply_patch("site", "agent", &patch(&[(&file, "v3")]), &policy)
        .unwrap();
    let entries = history.entries().unwrap();
    assert_eq!(entries.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2]);
    history.revert_last("site").unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "v2");
}

#[test]
fn append_records_changes_made_elsewhere() {
    let state = tempfile::tempdir().unwrap();
    let history = PatchHistory::open(state.path()).unwrap();
    let change = FileChange {
        path: "/etc/site/app.conf".into(),
        before: Some(ContentRef::of(b"a")),
        after: Some(ContentRef::of(b"b")),
    };
    let entry = history
        .append("site", "agent", "digest", vec![change.clone()])
        .unwrap();
    assert_eq!(history.last_for("site").unwrap(), Some(entry));
}
