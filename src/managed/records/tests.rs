#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command};
use std::time::Duration;

use super::*;

/// `sleep 60` as the leader of its own group.
fn group_leader(script: &str) -> Child {
    Command::new("sh")
        .args(["-c", script])
        .process_group(0)
        .spawn()
        .unwrap()
}

fn alive(pid: u32) -> bool {
    stat(i32::try_from(pid).unwrap()).is_some_and(|stat| !stat.zombie)
}

fn record_of(child: &Child, start_time_offset: u64) -> Record {
    let pgid = i32::try_from(child.id()).unwrap();
    Record {
        pgid,
        start_time: stat(pgid).unwrap().start_time + start_time_offset,
        boot_id: boot_id(),
        stop_signal: "TERM".to_owned(),
        stop_timeout_ms: 2_000,
    }
}

fn save(dir: &Path, component: &str, record: &Record) {
    std::fs::write(path(dir, component), serde_json::to_vec(record).unwrap()).unwrap();
}

#[test]
fn stat_fields_are_counted_from_the_last_parenthesis() {
    let line =
        "4242 (a) (b c) S 1 4240 4240 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100";
    assert_eq!(
        parse_stat(line),
        Some(Stat {
            pgrp: 4240,
            start_time: 987_654,
            zombie: false,
        })
    );
    assert_eq!(parse_stat("garbage"), None);
}

#[tokio::test]
async fn a_reused_pid_is_never_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = group_leader("exec sleep 60");
    // A record whose start time does not match: the pid is someone else's.
    save(dir.path(), "svc", &record_of(&child, 1));
    let done = stop_previous(dir.path()).await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].outcome, "not_ours");
    assert!(
        alive(child.id()),
        "a process that was not ours got signalled"
    );
    assert!(!path(dir.path(), "svc").exists());
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_record_from_another_boot_is_never_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = group_leader("exec sleep 60");
    let mut record = record_of(&child, 0);
    record.boot_id = "another-boot".to_owned();
    save(dir.path(), "svc", &record);
    assert_eq!(stop_previous(dir.path()).await[0].outcome, "not_ours");
    assert!(alive(child.id()));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_recorded_group_is_stopped_members_included() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = group_leader("sleep 60 & wait");
    let pgid = i32::try_from(child.id()).unwrap();
    // Wait for the grandchild, so the whole group is there.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while members(pgid).len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no grandchild");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    save(dir.path(), "svc", &record_of(&child, 0));
    let done = stop_previous(dir.path()).await;
    assert_eq!(done[0].outcome, "stopped");
    assert!(members(pgid).is_empty());
    child.wait().unwrap();
}

#[tokio::test]
async fn members_of_a_dead_leader_are_stopped() {
    let dir = tempfile::tempdir().unwrap();
    // The leader ignores nothing but exits at once, leaving its sleep behind
    // in the group (as a leader killed by PR_SET_PDEATHSIG does).
    let mut child = group_leader("sleep 60 & echo started");
    let pgid = i32::try_from(child.id()).unwrap();
    let record = record_of(&child, 0);
    child.wait().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while members(pgid).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no orphan");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    save(dir.path(), "svc", &record);
    let done = stop_previous(dir.path()).await;
    assert_eq!(done[0].outcome, "stopped");
    assert!(members(pgid).is_empty());
}

#[tokio::test]
async fn a_group_ignoring_the_stop_signal_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("trapped");
    let mut child = group_leader(&format!(
        "trap '' TERM; touch {}; while :; do sleep 1; done",
        ready.display()
    ));
    let mut record = record_of(&child, 0);
    record.stop_timeout_ms = 300;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !ready.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the trap was not set"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::fs::remove_file(&ready).unwrap();
    save(dir.path(), "svc", &record);
    assert_eq!(stop_previous(dir.path()).await[0].outcome, "killed");
    child.wait().unwrap();
}

#[tokio::test]
async fn unreadable_records_are_dropped_and_missing_groups_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(path(dir.path(), "torn"), b"{\"pgid\": 12").unwrap();
    let mut child = group_leader("exit 0");
    let record = record_of_exited(&mut child);
    save(dir.path(), "old", &record);
    let done = stop_previous(dir.path()).await;
    let outcomes: Vec<_> = done
        .iter()
        .map(|g| (g.component.as_str(), g.outcome))
        .collect();
    assert_eq!(outcomes, [("old", "gone"), ("torn", "unreadable")]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn record_of_exited(child: &mut Child) -> Record {
    let pgid = i32::try_from(child.id()).unwrap();
    child.wait().unwrap();
    Record {
        pgid,
        start_time: 1,
        boot_id: boot_id(),
        stop_signal: "TERM".to_owned(),
        stop_timeout_ms: 100,
    }
}
