use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ractor::Actor;

use super::super::test_support::{
    args, assert_gap_free, eventually, line, raw_lines, read_all, spawn, start,
};
use super::super::{AuditFaults, AuditLog, AuditMsg, AuditWriter, FsyncPolicy, NewRow};

const WAIT: Duration = Duration::from_secs(10);

fn new_row(i: u64) -> NewRow {
    NewRow::new("test.row", serde_json::json!({ "i": i }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_distinct_gap_free_seqs_and_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let w = start(dir.path()).await;
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let log = w.log.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..8 {
                    seqs.push(log.append(new_row(t * 100 + i)).await.unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for task in tasks {
        for seq in task.await.unwrap() {
            assert!(seqs.insert(seq), "seq {seq} handed out twice");
        }
    }
    assert_eq!(seqs, (1..=512).collect());
    let rows = raw_lines(dir.path());
    assert_gap_free(&rows);
    let health = w.log.health().snapshot();
    assert_eq!(health.rows_written, 512);
    assert!(health.fsyncs < 512, "no group commit: {health:?}");
    assert_eq!(health.last_durable_seq, 512);
    w.stop().await;
}

#[tokio::test]
async fn rows_queued_before_start_are_committed_in_batch_max_groups() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut args) = args(dir.path());
    args.batch_max = 32;
    let pending: Vec<_> = (0..100)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.append(new_row(i)).await })
        })
        .collect();
    eventually(|| log.queued() == 100, WAIT).await;
    let w = spawn(log, args).await;
    for task in pending {
        task.await.unwrap().unwrap();
    }
    let health = w.log.health().snapshot();
    assert_eq!((health.batches, health.fsyncs), (4, 4), "{health:?}");
    assert_gap_free(&raw_lines(dir.path()));
    w.stop().await;
}

#[tokio::test]
async fn lone_append_is_synced_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let w = start(dir.path()).await;
    let seq = tokio::time::timeout(WAIT, w.log.append(new_row(0)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seq, 1);
    let health = w.log.health().snapshot();
    assert_eq!(
        (health.batches, health.fsyncs, health.rows_written),
        (1, 1, 1)
    );
    assert_eq!(*w.log.subscribe().borrow(), 1);
    w.stop().await;
}

#[tokio::test]
async fn always_syncs_each_row_and_never_syncs_only_on_flush() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut args) = args(dir.path());
    args.fsync = FsyncPolicy::Always;
    for i in 0..10 {
        log.append_nowait(new_row(i));
    }
    let w = spawn(log, args).await;
    assert_eq!(w.log.flush_seq().await.unwrap(), 10);
    let health = w.log.health().snapshot();
    assert_eq!((health.batches, health.fsyncs), (10, 10), "{health:?}");
    let (log, mut args) = w.stop().await;

    args.fsync = FsyncPolicy::Never;
    let w = spawn(log, args).await;
    for i in 0..5 {
        w.log.append(new_row(i)).await.unwrap();
    }
    assert_eq!(w.log.health().snapshot().fsyncs, 10);
    let last = ractor::call!(w.actor, AuditMsg::Flush).unwrap().unwrap();
    assert_eq!(last, 15);
    let stats = ractor::call!(w.actor, AuditMsg::Stats).unwrap();
    assert_eq!(stats.fsyncs, 11);
    w.stop().await;
}

#[tokio::test]
async fn restart_continues_the_seq() {
    let dir = tempfile::tempdir().unwrap();
    let w = start(dir.path()).await;
    for i in 0..3 {
        w.log.append(new_row(i)).await.unwrap();
    }
    let (log, args) = w.stop().await;
    let w = spawn(log, args).await;
    assert_eq!(w.log.append(new_row(3)).await.unwrap(), 4);
    w.stop().await;
    // A fresh process (new queue) on the same dir continues too.
    let w = start(dir.path()).await;
    assert_eq!(w.log.append(new_row(4)).await.unwrap(), 5);
    w.stop().await;
    assert_gap_free(&raw_lines(dir.path()));
}

#[tokio::test]
async fn torn_tail_is_truncated_and_reported_as_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let w = start(dir.path()).await;
    for i in 0..3 {
        w.log.append(new_row(i)).await.unwrap();
    }
    w.stop().await;
    let before = read_all(dir.path());
    let file = dir.path().join(super::super::file_name(1));
    let half = line(4, "test.row");
    super::super::test_support::append_bytes(&file, &half[..half.len() / 2]);

    let w = start(dir.path()).await;
    assert_eq!(w.log.append(new_row(9)).await.unwrap(), 5);
    w.stop().await;
    let rows = raw_lines(dir.path());
    assert_gap_free(&rows);
    assert_eq!(rows[..3], before[..]);
    assert_eq!(rows[3].seam, "audit.recovered");
    assert_eq!(rows[3].details["truncated_bytes"], (half.len() / 2) as u64);
    assert_eq!(rows[3].details["last_good_seq"], 3);
    assert_eq!(rows[3].details["file"], file.display().to_string());
}

#[tokio::test]
async fn rotation_splits_files_named_for_their_first_seq() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut args) = args(dir.path());
    args.rotate_bytes = 300;
    let w = spawn(log, args).await;
    for i in 0..20 {
        w.log.append(new_row(i)).await.unwrap();
    }
    let (log, args) = w.stop().await;
    let files = super::super::file::list_files(dir.path()).unwrap();
    assert!(files.len() >= 4, "{files:?}");
    let newest_before = files.last().unwrap().clone();
    let w = spawn(log, args).await;
    assert_eq!(w.log.append(new_row(20)).await.unwrap(), 21);
    w.stop().await;

    let rows = read_all(dir.path());
    assert_eq!(rows.len(), 21);
    assert_gap_free(&rows);
    // Every file starts with the seq in its name, and rows continue across files.
    for (first, path) in super::super::file::list_files(dir.path()).unwrap() {
        let text = std::fs::read_to_string(&path).unwrap();
        let head: super::super::AuditRow =
            serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(head.seq, first);
    }
    // The restart continued the newest file (or rotated out of it) rather than
    // starting a stray file.
    let text = std::fs::read_to_string(&newest_before.1).unwrap();
    let in_newest = text.contains("\"seq\":21,");
    let rotated = dir.path().join(super::super::file_name(21)).exists();
    assert!(in_newest ^ rotated);
}

#[tokio::test]
async fn write_faults_hold_rows_then_deliver_each_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut args) = args(dir.path());
    let faults = Arc::new(AuditFaults::new());
    args.faults = Some(faults.clone());
    args.batch_max = 4;
    let w = spawn(log, args).await;
    w.log.append(new_row(0)).await.unwrap();

    // Disk "full": every write fails after writing half its bytes.
    faults.fail_next_writes(u32::MAX, true);
    let pending: Vec<_> = (1..=10)
        .map(|i| {
            let log = w.log.clone();
            tokio::spawn(async move { log.append(new_row(i)).await })
        })
        .collect();
    let health = w.log.health();
    eventually(|| health.snapshot().write_errors >= 3, WAIT).await;
    let failing = health.snapshot();
    assert!(
        failing
            .last_error
            .as_deref()
            .unwrap()
            .contains("injected fault")
    );
    assert!(failing.failing_since.is_some());
    assert!(
        pending.iter().all(|t| !t.is_finished()),
        "acked while failing"
    );
    // The file holds only the committed row: partial bytes were truncated.
    assert_eq!(raw_lines(dir.path()).len(), 1);

    faults.fail_next_writes(0, false);
    faults.fail_next_syncs(2);
    let mut seqs: Vec<u64> = Vec::new();
    for task in pending {
        seqs.push(task.await.unwrap().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (2..=11).collect::<Vec<_>>());
    let rows = raw_lines(dir.path());
    assert_gap_free(&rows);
    let mut payloads: Vec<u64> = rows
        .iter()
        .map(|r| r.details["i"].as_u64().unwrap())
        .collect();
    payloads.sort_unstable();
    assert_eq!(payloads, (0..=10).collect::<Vec<_>>(), "lost or duplicated");
    let healed = health.snapshot();
    assert_eq!((healed.last_error, healed.failing_since), (None, None));
    assert!(healed.write_errors >= 5);
    w.stop().await;
}

#[tokio::test]
async fn failed_rotation_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut args) = args(dir.path());
    let faults = Arc::new(AuditFaults::new());
    args.faults = Some(faults.clone());
    args.rotate_bytes = 1;
    let w = spawn(log, args).await;
    w.log.append(new_row(0)).await.unwrap();
    faults.fail_next_rotations(3);
    assert_eq!(w.log.append(new_row(1)).await.unwrap(), 2);
    assert_eq!(w.log.health().snapshot().write_errors, 3);
    assert!(dir.path().join(super::super::file_name(2)).exists());
    w.stop().await;
    assert_gap_free(&read_all(dir.path()));
}

#[tokio::test]
async fn queue_survives_a_killed_writer() {
    let dir = tempfile::tempdir().unwrap();
    let w = start(dir.path()).await;
    assert_eq!(w.log.append(new_row(0)).await.unwrap(), 1);
    w.actor.kill();
    w.handle.await.unwrap();
    let log = w.log.clone();
    let pending = tokio::spawn(async move { log.append(new_row(1)).await });
    eventually(|| w.log.queued() == 1, WAIT).await;
    w.log.append_nowait(new_row(2));
    eventually(|| w.log.queued() == 2, WAIT).await;
    assert!(!pending.is_finished());

    let (actor, handle) = Actor::spawn(None, AuditWriter, w.args.clone())
        .await
        .unwrap();
    assert_eq!(pending.await.unwrap().unwrap(), 2);
    w.log.flush().await.unwrap();
    actor.stop(None);
    handle.await.unwrap();
    assert_gap_free(&raw_lines(dir.path()));
    assert_eq!(raw_lines(dir.path()).len(), 3);
}

#[tokio::test]
async fn writer_killed_while_retrying_hands_its_batch_to_the_next_instance() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut args) = args(dir.path());
    let faults = Arc::new(AuditFaults::new());
    args.faults = Some(faults.clone());
    faults.fail_next_writes(u32::MAX, true);
    let w = spawn(log, args).await;
    let log = w.log.clone();
    let pending = tokio::spawn(async move { log.append(new_row(0)).await });
    let health = w.log.health();
    eventually(|| health.snapshot().write_errors >= 2, WAIT).await;
    w.actor.kill();
    w.handle.await.unwrap();

    faults.fail_next_writes(0, false);
    let (actor, handle) = Actor::spawn(None, AuditWriter, w.args.clone())
        .await
        .unwrap();
    assert_eq!(pending.await.unwrap().unwrap(), 1);
    assert_eq!(w.log.append(new_row(1)).await.unwrap(), 2);
    actor.stop(None);
    handle.await.unwrap();
    assert_gap_free(&raw_lines(dir.path()));
    assert_eq!(raw_lines(dir.path()).len(), 2);
}

#[tokio::test]
async fn graceful_stop_commits_everything_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut args) = args(dir.path());
    args.batch_max = 7;
    let w = spawn(log, args).await;
    for i in 0..500 {
        w.log.append_nowait(new_row(i));
    }
    let (log, _) = w.stop().await;
    assert_eq!(log.queued(), 0);
    assert_eq!(raw_lines(dir.path()).len(), 500);
    assert_gap_free(&raw_lines(dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_ends_while_appends_keep_coming() {
    let dir = tempfile::tempdir().unwrap();
    let w = start(dir.path()).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let (log, stop) = (w.log.clone(), stop.clone());
        load.spawn(async move {
            let mut i = 0;
            // Bounded by the stop flag, raised once the writer has stopped.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                log.append_nowait(new_row(worker * 1_000_000 + i));
                i += 1;
                if i % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
    }
    eventually(|| w.log.queued() > 1000, Duration::from_secs(20)).await;
    let (log, args) = tokio::time::timeout(Duration::from_secs(20), w.stop())
        .await
        .expect("a graceful stop under sustained appends never ended");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while load.join_next().await.is_some() {}
    // What the stopped writer left is the next instance's, in order.
    let w = spawn(log, args).await;
    w.log.flush().await.unwrap();
    let _ = w.stop().await;
    assert_gap_free(&raw_lines(dir.path()));
}

#[tokio::test]
async fn graceful_stop_on_a_failing_disk_keeps_rows_for_the_next_instance() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut args) = args(dir.path());
    let faults = Arc::new(AuditFaults::new());
    args.faults = Some(faults.clone());
    // Long backoff: the stop must cut it short rather than wait it out.
    args.retry_min = Duration::from_secs(600);
    faults.fail_next_writes(u32::MAX, false);
    let w = spawn(log, args).await;
    let log = w.log.clone();
    let pending = tokio::spawn(async move { log.append(new_row(0)).await });
    let health = w.log.health();
    eventually(|| health.is_failing(), WAIT).await;
    let (log, args) = tokio::time::timeout(WAIT, w.stop()).await.unwrap();
    assert_eq!(log.queued(), 1);
    faults.fail_next_writes(0, false);
    let w = spawn(log, args).await;
    assert_eq!(pending.await.unwrap().unwrap(), 1);
    w.stop().await;
    assert_eq!(raw_lines(dir.path()).len(), 1);
}

#[tokio::test]
async fn unrecoverable_dir_fails_the_spawn() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let (_log, queue) = AuditLog::new();
    let args = super::AuditWriterArgs::new(&not_a_dir, queue);
    assert!(Actor::spawn(None, AuditWriter, args).await.is_err());
}
