#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

#[test]
fn take_and_restore_binary_content_byte_for_byte() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let binary = work.path().join("app.bin");
    let text = work.path().join("app.conf");
    let missing = work.path().join("absent.conf");
    let bytes: Vec<u8> = (0..4096_u32).map(|n| (n * 7 % 256) as u8).collect();
    std::fs::write(&binary, &bytes).unwrap();
    std::fs::write(&text, "good\n").unwrap();

    let paths = vec![binary.clone(), text.clone(), missing.clone()];
    let report = Snapshots::take(state.path(), "site", &paths).unwrap();
    assert_eq!(report.copied, [binary.clone(), text.clone()]);
    assert_eq!(report.missing, std::slice::from_ref(&missing));
    assert!(!report.already_taken);
    let manifest = read_manifest(&report.dir).unwrap().unwrap();
    assert_eq!(manifest.files[0].size, 4096);
    assert_eq!(
        manifest.files[0].sha256.as_deref(),
        Some(sha256_hex(&bytes).as_str())
    );
    assert_eq!(manifest.files[2].copy, None);

    std::fs::write(&binary, b"broken").unwrap();
    std::fs::remove_file(&text).unwrap();
    let restored = Snapshots::restore(state.path(), "site").unwrap();
    assert_eq!(restored.restored, [binary.clone(), text.clone()]);
    assert_eq!(restored.missing, std::slice::from_ref(&missing));
    assert_eq!(std::fs::read(&binary).unwrap(), bytes);
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "good\n");
    assert!(!missing.exists());
}

#[test]
fn a_second_take_in_the_same_boot_keeps_the_first() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("app.conf");
    std::fs::write(&file, "good").unwrap();
    Snapshots::take(state.path(), "site", std::slice::from_ref(&file)).unwrap();
    std::fs::write(&file, "bad").unwrap();
    let again = Snapshots::take(state.path(), "site", std::slice::from_ref(&file)).unwrap();
    assert!(again.already_taken);
    Snapshots::restore(state.path(), "site").unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "good");
}

#[test]
fn a_previous_boots_snapshot_is_overwritten() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("app.conf");
    std::fs::write(&file, "old boot").unwrap();
    let dir = Snapshots::take(state.path(), "site", std::slice::from_ref(&file))
        .unwrap()
        .dir;
    // Pretend the snapshot came from an earlier process.
    let mut manifest = read_manifest(&dir).unwrap().unwrap();
    manifest.boot_id = "earlier".to_owned();
    std::fs::write(dir.join(MANIFEST), serde_json::to_vec(&manifest).unwrap()).unwrap();
    std::fs::write(&file, "this boot").unwrap();
    let report = Snapshots::take(state.path(), "site", std::slice::from_ref(&file)).unwrap();
    assert!(!report.already_taken);
    std::fs::write(&file, "broken").unwrap();
    Snapshots::restore(state.path(), "site").unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "this boot");
}

#[test]
fn a_damaged_copy_restores_nothing() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let a = work.path().join("a.conf");
    let b = work.path().join("b.conf");
    std::fs::write(&a, "a").unwrap();
    std::fs::write(&b, "b").unwrap();
    let dir = Snapshots::take(state.path(), "site", &[a.clone(), b.clone()])
        .unwrap()
        .dir;
    std::fs::write(dir.join("1-b.conf"), "tampered").unwrap();
    std::fs::write(&a, "changed").unwrap();
    assert!(matches!(
        Snapshots::restore(state.path(), "site"),
        Err(SnapshotError::Corrupt(path)) if path == b
    ));
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "changed");
}

#[test]
fn missing_snapshots_and_unsafe_names_are_errors() {
    let state = tempfile::tempdir().unwrap();
    assert!(matches!(
        Snapshots::restore(state.path(), "site"),
        Err(SnapshotError::Missing(_))
    ));
    for bad in ["", ".", "..", "a/b", WARDEN_DIR, ".hidden"] {
        assert!(
            matches!(
                Snapshots::take(state.path(), bad, &[]),
                Err(SnapshotError::BadComponent(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn warden_config_round_trips() {
    let state = tempfile::tempdir().unwrap();
    assert!(matches!(
        restore_config(state.path()),
        Err(SnapshotError::Missing(_))
    ));
    let path = snapshot_config(state.path(), "[service]\n").unwrap();
    assert!(path.ends_with("snapshots/_warden/config.toml"));
    snapshot_config(state.path(), "[service]\nstate_dir = \"/x\"\n").unwrap();
    assert_eq!(
        restore_config(state.path()).unwrap(),
        "[service]\nstate_dir = \"/x\"\n"
    );
}
