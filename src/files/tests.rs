#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

use std::os::unix::fs::symlink;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o777
}

#[test]
fn a_new_file_is_private_and_an_existing_one_keeps_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh");
    write_atomic(&fresh, b"one").unwrap();
    assert_eq!(std::fs::read(&fresh).unwrap(), b"one");
    assert_eq!(mode(&fresh), 0o600);

    let shared = dir.path().join("shared.conf");
    std::fs::write(&shared, "old").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
    write_atomic(&shared, b"new").unwrap();
    assert_eq!(std::fs::read(&shared).unwrap(), b"new");
    assert_eq!(mode(&shared), 0o640);
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn a_symlink_at_the_target_is_replaced_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let target = dir.path().join("target");
    symlink(&victim, &target).unwrap();
    write_atomic(&target, b"written").unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    assert!(
        !std::fs::symlink_metadata(&target)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"written");
    assert_eq!(mode(&target), 0o600);
}

#[test]
fn reads_and_checks_refuse_symlinks_anywhere_in_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("file"), "data").unwrap();
    symlink(&real, dir.path().join("linkdir")).unwrap();
    symlink(real.join("file"), real.join("linkfile")).unwrap();

    assert_eq!(read_nofollow(&real.join("file")).unwrap(), b"data");
    refuse_symlinks(&real.join("file")).unwrap();
    refuse_symlinks(&real.join("not-yet")).unwrap();
    for bad in [
        dir.path().join("linkdir/file"),
        real.join("linkfile"),
        dir.path().join("linkdir/new"),
    ] {
        let error = refuse_symlinks(&bad).unwrap_err();
        assert!(
            error.to_string().contains("symbolic link"),
            "{bad:?}: {error}"
        );
    }
    for bad in [dir.path().join("linkdir/file"), real.join("linkfile")] {
        let error = read_nofollow(&bad).unwrap_err();
        assert!(
            error.to_string().contains("symbolic link"),
            "{bad:?}: {error}"
        );
    }
    assert!(read_nofollow(Path::new("relative")).is_err());
    assert!(read_nofollow(&real.join("../real/file")).is_err());
    assert!(read_nofollow(&real).is_err(), "a directory is not a file");
}

#[test]
fn private_dirs_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("a/b/c");
    create_private_dir_all(&deep).unwrap();
    assert_eq!(mode(&dir.path().join("a")), 0o700);
    assert_eq!(mode(&deep), 0o700);
    let log = deep.join("log");
    open_private_append(&log).unwrap().write_all(b"x").unwrap();
    assert_eq!(mode(&log), 0o600);
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "v").unwrap();
    symlink(&victim, deep.join("link")).unwrap();
    assert!(open_private_append(&deep.join("link")).is_err());
    assert!(create_private_new(&deep.join("link")).is_err());
    assert_eq!(std::fs::read(&victim).unwrap(), b"v");
}

#[test]
fn loose_token_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    let closed = dir.path().join("closed");
    for (path, mode) in [(&open, 0o644), (&closed, 0o600)] {
        std::fs::write(path, "token").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let warnings = token_file_warnings([
        ("service.operator_token_file".to_owned(), open.as_path()),
        (
            "service.operator_token_files[0]".to_owned(),
            closed.as_path(),
        ),
    ]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("0644") && warnings[0].starts_with("service.operator_token_file:")
    );
}

#[test]
fn the_nofollow_write_keeps_the_mode_and_replaces_a_link_at_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.conf");
    write_atomic_nofollow(&path, b"one").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"one");
    assert_eq!(mode(&path), 0o600);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_atomic_nofollow(&path, b"two").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"two");
    assert_eq!(mode(&path), 0o644);

    let outside = dir.path().join("outside");
    std::fs::write(&outside, b"secret").unwrap();
    let link = dir.path().join("link.conf");
    symlink(&outside, &link).unwrap();
    write_atomic_nofollow(&link, b"patched").unwrap();
    assert_eq!(std::fs::read(&outside).unwrap(), b"secret");
    assert!(
        !std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_nofollow_write_refuses_a_directory_swapped_for_a_link() {
    // What a racing local user would do between a patch's check and its
    // write: replace a checked directory with a link to somewhere else.
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("etc");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("shadow"), b"root:x").unwrap();
    let allowed = dir.path().join("site");
    symlink(&elsewhere, &allowed).unwrap();
    let error = write_atomic_nofollow(&allowed.join("shadow"), b"pwned").unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
    assert!(error.to_string().contains("symbolic link"), "{error}");
    assert_eq!(std::fs::read(elsewhere.join("shadow")).unwrap(), b"root:x");
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        1,
        "no temp file left there"
    );
    assert!(write_atomic_nofollow(Path::new("relative/file"), b"x").is_err());
    assert!(write_atomic_nofollow(&dir.path().join("site/../x"), b"x").is_err());
}
