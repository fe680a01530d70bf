//! The audit-log reader and crash recovery over torn and garbled files.
//!
//! Input: the log's files, one after another; a line `#segment N` starts the
//! file whose first seq is N (the text before the first marker goes to the
//! file of seq 1), and a line `#cursor` starts the content of a consumer's
//! cursor file. The files are written to a scratch directory, then:
//! - reading never panics, and the wake consumer's light parse yields exactly
//!   the rows the full parse yields;
//! - `recover` (the writer's crash recovery) never loses a row the reader
//!   could read;
//! - a garbled cursor is an error or a seq, never a panic.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden::audit::{AuditReader, Cursor, file_name, inspect, recover};

fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // tmpfs when there is one: each input rewrites the files.
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_owned()
        } else {
            std::env::temp_dir()
        };
        base.join(format!("warden-fuzz-audit-{}", std::process::id()))
    })
}

fn reset(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("scratch dir");
}

/// Seqs of the rows a plain read yields from `since`.
fn read_all(reader: &AuditReader, since: u64) -> Vec<u64> {
    reader
        .rows_from(since, None)
        .filter_map(Result::ok)
        .map(|row| row.seq)
        .collect()
}

/// Seqs of the rows the cursor consumers hand on (every row, as the wake
/// consumer reads them): each must be a row the plain read yields too.
fn read_head(reader: &AuditReader, since: u64) -> Vec<u64> {
    let mut iter = reader.rows_from(since, None);
    let mut seqs = Vec::new();
    while let Some(item) = iter.next_head(|_| true, |row| Some(row.seq)) {
        if let Ok((_, Some(seq))) = item {
            seqs.push(seq);
        }
    }
    seqs
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    reset(dir);
    let mut files: Vec<(u64, Vec<u8>)> = vec![(1, Vec::new())];
    let mut cursor: Option<Vec<u8>> = None;
    for line in data.split_inclusive(|b| *b == b'\n') {
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        if let Some(number) = bare.strip_prefix(b"#segment ") {
            let first = std::str::from_utf8(number)
                .ok()
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(1);
            files.push((first, Vec::new()));
        } else if bare == b"#cursor" {
            cursor = Some(Vec::new());
        } else if let Some(cursor) = cursor.as_mut() {
            cursor.extend_from_slice(line);
        } else if let Some((_, content)) = files.last_mut() {
            content.extend_from_slice(line);
        }
    }
    for (first, content) in &files {
        // A repeated seq names the same file: its parts are appended.
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(file_name(*first)))
            .expect("segment file");
        file.write_all(content).expect("segment write");
    }
    if let Some(cursor) = &cursor {
        let cursors = dir.join("cursors");
        std::fs::create_dir_all(&cursors).expect("cursor dir");
        std::fs::write(cursors.join("fuzz"), cursor).expect("cursor write");
        let _ = Cursor::load(&cursors, "fuzz");
    }

    let reader = AuditReader::open(dir).expect("reader");
    let before = read_all(&reader, 1);
    assert_eq!(before, read_head(&reader, 1), "head and full parse disagree");
    if let Some(middle) = before.get(before.len() / 2) {
        let _ = read_all(&reader, *middle);
    }
    let _ = reader.last_seq();
    let _ = inspect(dir);
    let report = recover(dir).expect("recover");
    let _ = report.next_seq();
    assert_eq!(before, read_all(&reader, 1), "recovery lost a readable row");
});
