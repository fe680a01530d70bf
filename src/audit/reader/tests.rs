use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::super::test_support::{append_bytes, line};
use super::super::{NewRow, file_name};
use super::*;

fn seqs(iter: RowIter) -> Vec<u64> {
    iter.map(|r| r.unwrap().seq).collect()
}

fn sample(dir: &Path) {
    // Two files: 1..=3 and 4..=6, with mixed seams.
    let seams = [
        "probe.wake_requested",
        "supervision.restarted",
        "supervision.backoff",
    ];
    for (first, range) in [(1, 1..=3u64), (4, 4..=6)] {
        for seq in range {
            append_bytes(
                &dir.join(file_name(first)),
                &line(seq, seams[(seq % 3) as usize]),
            );
        }
    }
}

#[test]
fn filters_by_since_and_seam() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let reader = AuditReader::open(dir.path()).unwrap();
    assert_eq!(seqs(reader.rows_from(0, None)), [1, 2, 3, 4, 5, 6]);
    assert_eq!(seqs(reader.rows_from(5, None)), [5, 6]);
    assert_eq!(seqs(reader.rows_from(7, None)), Vec::<u64>::new());
    assert_eq!(
        seqs(reader.rows_from(0, Some("supervision.restarted"))),
        [1, 4]
    );
    assert_eq!(
        seqs(reader.rows_from(0, Some("supervision.*"))),
        [1, 2, 4, 5]
    );
    assert_eq!(seqs(reader.rows_from(2, Some("supervision.*"))), [2, 4, 5]);
    assert_eq!(
        seqs(reader.rows_from(0, Some("supervision"))),
        Vec::<u64>::new()
    );
    assert_eq!(reader.last_seq().unwrap(), Some(6));
}

#[test]
fn torn_last_line_is_invisible_until_complete() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let path = dir.path().join(file_name(4));
    let next = line(7, "x");
    append_bytes(&path, &next[..10]);
    let reader = AuditReader::open(dir.path()).unwrap();
    assert_eq!(seqs(reader.rows_from(0, None)).len(), 6);
    assert_eq!(reader.last_seq().unwrap(), Some(6));
    append_bytes(&path, &next[10..]);
    assert_eq!(seqs(reader.rows_from(6, None)), [6, 7]);
}

#[test]
fn corrupt_row_is_an_error_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name(1));
    append_bytes(&path, &line(1, "x"));
    append_bytes(&path, b"not json\n");
    append_bytes(&path, &line(2, "x"));
    let items: Vec<_> = AuditReader::open(dir.path())
        .unwrap()
        .rows_from(0, None)
        .collect();
    assert_eq!(items.len(), 3);
    assert!(
        matches!(items[1], Err(AuditError::CorruptRow { offset, .. }) if offset == line(1, "x").len() as u64)
    );
    assert_eq!(items[2].as_ref().unwrap().seq, 2);
}

#[test]
fn missing_dir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        AuditReader::open(&dir.path().join("nope")),
        Err(AuditError::Io { .. })
    ));
}

#[tokio::test]
async fn follow_sees_new_rows_across_rotation_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut args) = super::super::test_support::args(dir.path());
    args.rotate_bytes = 200;
    let w = super::super::test_support::spawn(log, args).await;
    w.log
        .append(NewRow::new("a.one", serde_json::json!({})))
        .await
        .unwrap();

    let reader = AuditReader::open(dir.path()).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let follower = tokio::spawn(async move {
        reader
            .follow(
                1,
                Some("a.*"),
                Duration::from_millis(5),
                async {
                    let _ = stopped.await;
                },
                |row| tx.send(row.seq).map_err(|_| AuditError::WriterGone),
            )
            .await
    });
    assert_eq!(rx.recv().await, Some(1));
    for i in 0..6 {
        let seam = if i % 2 == 0 { "a.two" } else { "b.other" };
        w.log
            .append(NewRow::new(seam, serde_json::json!({ "i": i })))
            .await
            .unwrap();
    }
    for expected in [2, 4, 6] {
        assert_eq!(rx.recv().await, Some(expected));
    }
    stop.send(()).unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next, 7);
    assert!(super::super::file::list_files(dir.path()).unwrap().len() > 1);
    w.stop().await;
}

#[test]
fn resuming_reads_each_row_once_and_sees_rows_appended_later() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let reader = AuditReader::open(dir.path()).unwrap();
    let mut first = reader.rows_from(1, None);
    let taken: Vec<u64> = first.by_ref().take(4).map(|r| r.unwrap().seq).collect();
    assert_eq!(taken, [1, 2, 3, 4]);
    let at = first.position();
    assert_eq!(seqs(reader.rows_resume(5, None, at.clone())), [5, 6]);
    // A row appended after the position was taken is found from it.
    append_bytes(&dir.path().join(file_name(4)), &line(7, "probe.resolved"));
    let mut rest = reader.rows_resume(5, None, at);
    assert_eq!(
        rest.by_ref().map(|r| r.unwrap().seq).collect::<Vec<_>>(),
        [5, 6, 7]
    );
    // At the end, the position resumes with nothing new.
    assert_eq!(
        seqs(reader.rows_resume(8, None, rest.position())),
        Vec::<u64>::new()
    );
}

/// Found by the `audit_reader` fuzz target (for the light parse the wake
/// consumer used before the head read): invalid UTF-8 inside a field a
/// reader skips must not make it accept a row the ordinary parse calls
/// corrupt, or a consumer would act on a row no other reader sees.
#[test]
fn a_row_with_invalid_utf8_in_its_details_is_corrupt_to_the_head_read_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name(1));
    let mut bad = br#"{"seq":1,"ts":"2026-12-01T00:00:00.000Z","seam":"prmbe.wake_requested","caller_session_id":"s","trace_id":"t","component":"db","details":{"observation":{"health":""#.to_vec();
    bad.extend_from_slice(&[0x8b, 0x91, 0x97, 0x9a]);
    bad.extend_from_slice(b"\"},\"notice\":\"x\",\"deliveries\":[2,2]}}\n");
    append_bytes(&path, &bad);
    append_bytes(&path, &line(2, "probe.wake_requested"));
    let reader = AuditReader::open(dir.path()).unwrap();
    let full: Vec<_> = reader.rows_from(1, None).collect();
    assert!(matches!(full[0], Err(AuditError::CorruptRow { .. })));
    let mut iter = reader.rows_from(1, None);
    let first = iter.next_head(|_| false, |_| Some(())).unwrap();
    assert!(
        matches!(first, Err(AuditError::CorruptRow { .. })),
        "{first:?}"
    );
    let second = iter.next_head(|_| true, |row| Some(row.seq)).unwrap();
    assert_eq!(second.unwrap(), (2, Some(2)));
}

#[test]
fn the_head_read_parses_only_wanted_rows_and_reports_corrupt_ones() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    append_bytes(&dir.path().join(file_name(4)), b"{\"seq\":7,\"torn\n");
    append_bytes(
        &dir.path().join(file_name(4)),
        &line(8, "probe.wake_requested"),
    );
    let reader = AuditReader::open(dir.path()).unwrap();
    let mut iter = reader.rows_from(2, None);
    let mut got = Vec::new();
    while let Some(item) = iter.next_head(
        |seam| seam == "probe.wake_requested",
        |row| Some(row.seam.to_string()),
    ) {
        got.push(match item {
            Ok((seq, Some(seam))) => format!("{seq}:{seam}"),
            Ok((seq, None)) => format!("{seq}:-"),
            Err(AuditError::CorruptRow { .. }) => "corrupt".to_owned(),
            Err(other) => panic!("{other}"),
        });
    }
    // Seqs 3 and 6 are wake rows (seq % 3 == 0); 1 is before `since`.
    assert_eq!(
        got,
        [
            "2:-",
            "3:probe.wake_requested",
            "4:-",
            "5:-",
            "6:probe.wake_requested",
            "corrupt",
            "8:probe.wake_requested"
        ]
    );
}

/// A consumer keeps its iterator and asks again after each append: it must
/// see rows written later, a torn line only once it is whole (also when the
/// writer truncates a failed attempt and writes the row again), and the next
/// file after a rotation, without ever listing the directory per pass.
#[test]
fn a_kept_iterator_follows_appends_torn_lines_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join(file_name(1));
    append_bytes(&first, &line(1, "probe.resolved"));
    let reader = AuditReader::open(dir.path()).unwrap();
    let mut kept = reader.rows_from(1, None);
    let more = |kept: &mut RowIter| -> Vec<u64> { kept.by_ref().map(|r| r.unwrap().seq).collect() };
    assert_eq!(more(&mut kept), [1]);
    assert_eq!(more(&mut kept), Vec::<u64>::new());

    append_bytes(&first, &line(2, "probe.resolved"));
    assert_eq!(more(&mut kept), [2]);

    // A failed attempt leaves half a row, which the writer truncates away
    // before writing the whole batch again.
    let row3 = line(3, "probe.resolved");
    let len = std::fs::metadata(&first).unwrap().len();
    append_bytes(&first, b"{\"seq\":3,\"ts\":\"garbage from a failed att");
    assert_eq!(more(&mut kept), Vec::<u64>::new());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap()
        .set_len(len)
        .unwrap();
    append_bytes(&first, &row3[..10]);
    assert_eq!(more(&mut kept), Vec::<u64>::new());
    append_bytes(&first, &row3[10..]);
    assert_eq!(more(&mut kept), [3]);

    // Rotation: the next file is named after the next seq.
    append_bytes(&dir.path().join(file_name(4)), &line(4, "probe.resolved"));
    append_bytes(&dir.path().join(file_name(4)), &line(5, "probe.resolved"));
    assert_eq!(more(&mut kept), [4, 5]);
    append_bytes(&dir.path().join(file_name(4)), &line(6, "probe.resolved"));
    assert_eq!(more(&mut kept), [6]);
}

/// A row the ordinary parse refuses is refused by the head read too, even
/// where raw JSON would pass: a number out of range, a lone surrogate,
/// nesting past the limit; unknown top-level fields are ignored by both.
#[test]
fn the_head_read_refuses_what_the_full_parse_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name(1));
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    for (seq, details, extra) in [
        (1, r#"{"x":1e400}"#.to_owned(), ""),
        (2, r#"{"x":"\ud800"}"#.to_owned(), ""),
        (3, format!(r#"{{"x":{deep}}}"#), ""),
        (4, r#"{"x":1}"#.to_owned(), r#","extra":1e400"#),
    ] {
        append_bytes(
            &path,
            format!(
                "{{\"seq\":{seq},\"ts\":\"t\",\"seam\":\"probe.wake_requested\",\"caller_session_id\":null,\"trace_id\":null,\"component\":null,\"details\":{details}{extra}}}\n"
            )
            .as_bytes(),
        );
    }
    let reader = AuditReader::open(dir.path()).unwrap();
    let full: Vec<u64> = reader
        .rows_from(1, None)
        .filter_map(Result::ok)
        .map(|r| r.seq)
        .collect();
    assert_eq!(full, [4]);
    let mut iter = reader.rows_from(1, None);
    let mut head = Vec::new();
    while let Some(item) = iter.next_head(|_| true, |row| Some(row.seq)) {
        if let Ok((_, Some(seq))) = item {
            head.push(seq);
        }
    }
    assert_eq!(head, full);
}

/// Found by the `audit_reader` fuzz target: a damaged file whose last row
/// names an earlier file as the next one sent a reader at the end of the
/// log round the two files forever.
#[test]
fn a_row_out_of_order_does_not_send_the_reader_back_to_an_earlier_file() {
    let dir = tempfile::tempdir().unwrap();
    append_bytes(&dir.path().join(file_name(1)), &line(1, "probe.resolved"));
    append_bytes(&dir.path().join(file_name(1)), &line(4, "probe.resolved"));
    append_bytes(&dir.path().join(file_name(5)), &line(0, "probe.resolved"));
    let reader = AuditReader::open(dir.path()).unwrap();
    let mut iter = reader.rows_from(0, None);
    let seqs: Vec<u64> = iter.by_ref().take(10).map(|r| r.unwrap().seq).collect();
    assert_eq!(seqs, [1, 4, 0]);
    assert!(iter.next().is_none());
}

/// A consumer may make its iterator before the writer made the first file;
/// kept, the iterator must still find that file and its rows (the directory
/// is listed again at most once a second).
#[tokio::test(start_paused = true)]
async fn a_kept_iterator_made_on_an_empty_log_finds_the_first_file() {
    let dir = tempfile::tempdir().unwrap();
    let reader = AuditReader::open(dir.path()).unwrap();
    let mut kept = reader.rows_from(1, None);
    assert!(kept.next().is_none());
    append_bytes(&dir.path().join(file_name(1)), &line(1, "probe.resolved"));
    assert!(kept.next().is_none(), "listed again within the second");
    tokio::time::advance(Duration::from_millis(1_100)).await;
    assert_eq!(kept.next().map(|row| row.unwrap().seq), Some(1));
}

/// `last_seq` reads the newest file from its end; it must agree with a scan
/// of the whole file: past a torn or corrupt tail, in a file larger than its
/// window, and in one whose window holds no good row.
#[test]
fn last_seq_from_the_end_agrees_with_a_whole_scan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name(1));
    let reader = AuditReader::open(dir.path()).unwrap();
    let scanned = || super::super::file::scan_file(&path).unwrap().last_seq;
    assert_eq!(reader.last_seq().unwrap(), None);
    for seq in 1..=3000 {
        append_bytes(&path, &line(seq, "probe.resolved"));
    }
    assert!(std::fs::metadata(&path).unwrap().len() > TAIL_WINDOW);
    assert_eq!(reader.last_seq().unwrap(), Some(3000));
    append_bytes(&path, b"{\"seq\":3001,\"torn");
    assert_eq!(reader.last_seq().unwrap(), Some(3000));
    append_bytes(&path, b"\n{\"not a row\":1}\n");
    assert_eq!(reader.last_seq().unwrap(), scanned());
    // A window of nothing but garbage: the whole file decides.
    let garbage = vec![b'x'; TAIL_WINDOW as usize];
    append_bytes(&path, &garbage);
    append_bytes(&path, b"\n");
    assert_eq!(reader.last_seq().unwrap(), Some(3000));
    assert_eq!(reader.last_seq().unwrap(), scanned());
}
