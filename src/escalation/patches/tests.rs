#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

use std::path::Path;

fn patch(files: &[(&Path, &str)]) -> serde_json::Value {
    serde_json::json!({
        "files": files
            .iter()
            .map(|(path, content)| serde_json::json!({"path": path, "content": content}))
            .collect::<Vec<_>>()
    })
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
        )
        .unwrap();
    assert_eq!(entry.id, 1);
    assert_eq!(entry.files[0].before_encoding, ContentEncoding::Hex);
    assert_eq!(entry.files[1].before.as_deref(), Some("pool = 5\n"));
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
fn revert_undoes_the_latest_patch_first_and_notes_drift() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("app.conf");
    std::fs::write(&file, "v1").unwrap();
    let history = PatchHistory::open(state.path()).unwrap();
    history
        .apply_patch("site", "agent", &patch(&[(&file, "v2")]))
        .unwrap();
    history
        .apply_patch("site", "agent", &patch(&[(&file, "v3")]))
        .unwrap();
    std::fs::write(&file, "edited by hand").unwrap();

    let report = history.revert_last("site").unwrap();
    assert_eq!(report.reverted, 2);
    assert_eq!(report.drifted, std::slice::from_ref(&file));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "v2");
    let report = history.revert_last("site").unwrap();
    assert_eq!(report.reverted, 1);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "v1");
}

#[test]
fn invalid_patches_touch_nothing() {
    let state = tempfile::tempdir().unwrap();
    let history = PatchHistory::open(state.path()).unwrap();
    for bad in [
        serde_json::json!({"files": []}),
        serde_json::json!({"files": [{"path": "relative.conf", "content": "x"}]}),
        serde_json::json!({"nope": true}),
        serde_json::json!({"files": [{"path": "/tmp/x", "content": 1}]}),
    ] {
        assert!(
            matches!(
                history.apply_patch("site", "agent", &bad),
                Err(PatchError::Invalid(_))
            ),
            "{bad}"
        );
    }
    assert!(history.entries().unwrap().is_empty());
}

#[test]
fn a_torn_last_line_is_dropped_on_open() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("app.conf");
    std::fs::write(&file, "v1").unwrap();
    let history = PatchHistory::open(state.path()).unwrap();
    history
        .apply_patch("site", "agent", &patch(&[(&file, "v2")]))
        .unwrap();
    let path = state.path().join(FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"id":2,"at":"2026-"#);
    std::fs::write(&path, &bytes).unwrap();

    let history = PatchHistory::open(state.path()).unwrap();
    assert_eq!(history.entries().unwrap().len(), 1);
    history
        .apply_patch("site", "agent", &patch(&[(&file, "v3")]))
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
        before: Some("a".to_owned()),
        before_encoding: ContentEncoding::Text,
        after_sha256: sha256_hex(b"b"),
    };
    let entry = history
        .append("site", "agent", serde_json::json!({}), vec![change.clone()])
        .unwrap();
    assert_eq!(history.last_for("site").unwrap(), Some(entry));
    assert_eq!(FileChange::before_bytes(&change), Some(Some(b"a".to_vec())));
}
