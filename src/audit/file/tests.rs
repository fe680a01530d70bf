use proptest::prelude::*;

use super::super::test_support::{append_bytes, line};
use super::*;

fn write_log(dir: &Path, first: u64, seqs: std::ops::RangeInclusive<u64>) -> (PathBuf, Vec<u8>) {
    let path = dir.join(file_name(first));
    let bytes: Vec<u8> = seqs.flat_map(|seq| line(seq, "test.row")).collect();
    append_bytes(&path, &bytes);
    (path, bytes)
}

#[test]
fn names_encode_the_first_seq_and_sort() {
    assert_eq!(file_name(1), "audit-00000000000000000001.jsonl");
    assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
    assert_eq!(parse_file_name("audit-1.jsonl"), None);
    assert_eq!(parse_file_name("audit-0000000000000000000x.jsonl"), None);
    let dir = tempfile::tempdir().unwrap();
    for first in [100, 2, 30] {
        std::fs::write(dir.path().join(file_name(first)), b"").unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), b"").unwrap();
    let firsts: Vec<u64> = list_files(dir.path())
        .unwrap()
        .iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(firsts, [2, 30, 100]);
}

#[test]
fn empty_or_missing_dir_starts_at_one() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit");
    let report = recover(&audit).unwrap();
    assert!(audit.is_dir());
    assert_eq!((report.last_good_seq, report.next_seq()), (None, 1));
    assert_eq!(report.truncated, None);
}

#[test]
fn complete_file_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = write_log(dir.path(), 1, 1..=5);
    let report = recover(dir.path()).unwrap();
    assert_eq!(report.last_good_seq, Some(5));
    assert_eq!(report.truncated, None);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn torn_line_without_newline_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = write_log(dir.path(), 1, 1..=3);
    // A complete JSON row missing only its newline is still torn: it was never acknowledged.
    let torn = line(4, "test.row");
    append_bytes(&path, &torn[..torn.len() - 1]);
    let report = recover(dir.path()).unwrap();
    assert_eq!(report.last_good_seq, Some(3));
    let t = report.truncated.unwrap();
    assert_eq!(
        (t.truncated_bytes, t.last_good_seq),
        ((torn.len() - 1) as u64, Some(3))
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn inspect_reports_without_truncating() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        inspect(&dir.path().join("missing")).unwrap(),
        RecoveryReport::default()
    );
    let (path, bytes) = write_log(dir.path(), 1, 1..=3);
    append_bytes(&path, b"{\"seq\":4");
    let report = inspect(dir.path()).unwrap();
    assert_eq!(report.last_good_seq, Some(3));
    assert_eq!(report.truncated.unwrap().truncated_bytes, 8);
    assert_eq!(std::fs::read(&path).unwrap().len(), bytes.len() + 8);
    assert_eq!(
        recover(dir.path())
            .unwrap()
            .truncated
            .unwrap()
            .truncated_bytes,
        8
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn unparsable_final_line_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = write_log(dir.path(), 1, 1..=2);
    append_bytes(&path, b"{\"seq\":3,\"ts\n");
    let report = recover(dir.path()).unwrap();
    assert_eq!(report.truncated.unwrap().truncated_bytes, 13);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn corrupt_middle_row_is_reported_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_log(dir.path(), 1, 1..=2);
    append_bytes(&path, b"garbage\n");
    append_bytes(&path, &line(3, "test.row"));
    let before = std::fs::read(&path).unwrap();
    let report = recover(dir.path()).unwrap();
    assert_eq!(report.last_good_seq, Some(3));
    assert_eq!(report.truncated, None);
    assert_eq!(report.corrupt_rows.len(), 1);
    let offset = (line(1, "test.row").len() + line(2, "test.row").len()) as u64;
    assert_eq!(report.corrupt_rows[0].offset, offset);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn newest_file_with_only_a_torn_row_falls_back_to_the_previous_file() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 1, 1..=4);
    let newest = dir.path().join(file_name(5));
    append_bytes(&newest, b"{\"seq\":5");
    let report = recover(dir.path()).unwrap();
    assert_eq!(report.last_good_seq, Some(4));
    assert_eq!(report.truncated.unwrap().file, newest);
    assert_eq!(std::fs::metadata(&newest).unwrap().len(), 0);
    assert_eq!(report.newest_file, Some(newest));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Rows written in random batches across rotated files, cut at a random
    /// byte: recovery keeps exactly the complete rows and the seq continues.
    #[test]
    fn recovery_keeps_every_complete_row(
        batches in prop::collection::vec(1usize..6, 1..12),
        rotate_every in 1usize..5,
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut seq = 1u64;
        let mut files: Vec<(PathBuf, Vec<u64>, Vec<u8>)> = Vec::new();
        for (i, size) in batches.iter().enumerate() {
            if i % rotate_every == 0 {
                files.push((dir.path().join(file_name(seq)), Vec::new(), Vec::new()));
            }
            let (_, seqs, bytes) = files.last_mut().unwrap();
            for _ in 0..*size {
                seqs.push(seq);
                bytes.extend(line(seq, "test.row"));
                seq += 1;
            }
        }
        for (path, _, bytes) in &files {
            std::fs::write(path, bytes).unwrap();
        }
        // Crash mid-write of the newest file.
        let (newest, seqs, bytes) = files.last().unwrap();
        let at = cut.index(bytes.len() + 1);
        std::fs::OpenOptions::new().write(true).open(newest).unwrap().set_len(at as u64).unwrap();

        let report = recover(dir.path()).unwrap();
        let kept = bytes[..at].iter().filter(|b| **b == b'\n').count();
        let end_of_kept = bytes[..at].iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        let expected_last = if kept > 0 {
            Some(seqs[kept - 1])
        } else {
            files.len().checked_sub(2).map(|i| *files[i].1.last().unwrap())
        };
        prop_assert_eq!(report.last_good_seq, expected_last);
        prop_assert_eq!(std::fs::read(newest).unwrap(), bytes[..end_of_kept].to_vec());
        prop_assert_eq!(report.truncated.as_ref().map(|t| t.truncated_bytes), (at != end_of_kept).then(|| (at - end_of_kept) as u64));
        prop_assert!(report.corrupt_rows.is_empty());
        let rows = super::super::test_support::read_all(dir.path());
        let expected: Vec<u64> = (1..report.next_seq()).collect();
        prop_assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// End to end through the writer: rows committed in random batch sizes,
    /// the newest file cut at a random byte (a crash), then a new writer:
    /// every complete row survives unchanged, a cut mid-row is reported as an
    /// `audit.recovered` row, and seqs stay gap-free.
    #[test]
    fn writer_recovers_from_a_crash_at_any_byte(
        batch_max in 1usize..8,
        rows in 1u64..40,
        cut in any::<prop::sample::Index>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            use super::super::test_support::{args, raw_lines, read_all, spawn};
            let dir = tempfile::tempdir().unwrap();
            let (log, mut writer_args) = args(dir.path());
            writer_args.batch_max = batch_max;
            writer_args.rotate_bytes = 1_000;
            for i in 0..rows {
                log.append_nowait(super::super::NewRow::new("test.row", serde_json::json!({ "i": i })));
            }
            let w = spawn(log, writer_args).await;
            w.log.flush().await.unwrap();
            let (log, writer_args) = w.stop().await;
            let before = read_all(dir.path());

            let (_, newest) = list_files(dir.path()).unwrap().pop().unwrap();
            let bytes = std::fs::read(&newest).unwrap();
            let at = cut.index(bytes.len() + 1);
            std::fs::OpenOptions::new().write(true).open(&newest).unwrap().set_len(at as u64).unwrap();
            let kept_in_file = bytes[..at].iter().filter(|b| **b == b'\n').count();
            let end_of_kept = bytes[..at].iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            let lost = bytes.iter().filter(|b| **b == b'\n').count() - kept_in_file;
            let kept = before.len() - lost;

            let w = spawn(log, writer_args).await;
            let seq = w.log.append(super::super::NewRow::new("after", serde_json::json!({}))).await.unwrap();
            w.stop().await;

            let after = raw_lines(dir.path());
            super::super::test_support::assert_gap_free(&after);
            assert_eq!(&after[..kept], &before[..kept]);
            let torn = at != end_of_kept;
            assert_eq!(after.len(), kept + usize::from(torn) + 1);
            if torn {
                assert_eq!(after[kept].seam.as_str(), "audit.recovered");
                assert_eq!(after[kept].details["truncated_bytes"].as_u64(), Some((at - end_of_kept) as u64));
            }
            assert_eq!(seq, after.len() as u64);
        });
    }
}
