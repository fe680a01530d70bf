use super::*;

#[test]
fn store_and_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let cursors = dir.path().join("cursors");
    assert_eq!(Cursor::load(&cursors, "wake").unwrap(), None);
    let cursor = Cursor::new(&cursors, "wake").unwrap();
    cursor.store(41).unwrap();
    assert_eq!(Cursor::load(&cursors, "wake").unwrap(), Some(41));
    assert_eq!(
        std::fs::read_to_string(cursors.join("wake")).unwrap(),
        "41\n"
    );
}

#[test]
fn store_replaces_atomically_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let cursor = Cursor::new(dir.path(), "incidents").unwrap();
    for seq in [1, 2, u64::MAX] {
        cursor.store(seq).unwrap();
        assert_eq!(cursor.current().unwrap(), Some(seq));
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["incidents"]);
    // A leftover temp file from a crash before rename does not change the value.
    std::fs::write(dir.path().join(".incidents.tmp"), b"7").unwrap();
    assert_eq!(cursor.current().unwrap(), Some(u64::MAX));
    cursor.store(8).unwrap();
    assert_eq!(cursor.current().unwrap(), Some(8));
}

#[test]
fn bad_names_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "",
        "a/b",
        "..",
        ".hidden",
        "a\\b",
        "sp ace",
        &"x".repeat(129),
    ] {
        assert!(
            matches!(
                Cursor::new(dir.path(), name),
                Err(AuditError::InvalidCursorName(_))
            ),
            "{name:?} accepted"
        );
    }
    assert!(Cursor::new(dir.path(), "wake-consumer_v1.2").is_ok());
}

#[test]
fn garbage_cursor_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c"), b"twelve").unwrap();
    assert!(matches!(
        Cursor::load(dir.path(), "c"),
        Err(AuditError::CorruptCursor { .. })
    ));
}
