//! The OTP matrix: restart type × exit reason for each strategy, asserting
//! exactly which children were stopped and restarted, and in what order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{
    ALL_EXITS, How, Log, Recorder, child_cell, children, eventually, make_exit, settle, worker,
};
use warden_supervisors::{
    Backoff, Ladder, Restart, Rung, Strategy, SupervisionEvent, Supervisor, SupervisorSpec,
};

fn policy() -> Ladder {
    Ladder::single(Rung::new("restart", 10, Duration::from_secs(5)).backoff(Backoff::none()))
}

/// What the log must show after `b` (of `a`, `b`, `c`) exits.
fn expected(strategy: Strategy, restart: Restart, how: How) -> Vec<&'static str> {
    let mut lines = Vec::new();
    if how == How::Normal {
        lines.push("stop:b"); // its own post_stop
    }
    let restarted = match restart {
        Restart::Permanent => true,
        Restart::Transient => support::is_abnormal(how),
        Restart::Temporary => false,
    };
    if restarted {
        lines.extend(match strategy {
            Strategy::OneForOne => vec!["start:b"],
            Strategy::OneForAll => vec!["stop:c", "stop:a", "start:a", "start:b", "start:c"],
            Strategy::RestForOne => vec!["stop:c", "start:b", "start:c"],
        });
    }
    lines
}

async fn run_case(strategy: Strategy, restart: Restart, how: How) {
    let case = format!("{strategy:?} {restart:?} {how:?}");
    let log = Log::default();
    let recorder = Recorder::default();
    let spec = SupervisorSpec::new("matrix", strategy)
        .policy(policy())
        .observer(recorder.arc())
        .children(vec![
            worker("a", &log),
            worker("b", &log).restart(restart),
            worker("c", &log),
        ]);
    let (sup, handle) = Supervisor::spawn(None, spec).await.unwrap();
    assert_eq!(log.lines(), vec!["start:a", "start:b", "start:c"], "{case}");
    log.clear();

    make_exit(&child_cell(&sup, "b").await, how);
    let want = expected(strategy, restart, how);
    eventually(
        || {
            recorder
                .count(|e| matches!(e, SupervisionEvent::ChildExited { child, .. } if child == "b"))
                == 1
                && log.len() >= want.len()
        },
        Duration::from_secs(5),
        &case,
    )
    .await;
    settle().await;
    assert_eq!(log.lines(), want, "{case}");

    let listed = children(&sup).await;
    let ids: Vec<_> = listed.iter().map(|c| c.id.as_str()).collect();
    if restart == Restart::Temporary {
        assert_eq!(ids, vec!["a", "c"], "{case}");
    } else {
        assert_eq!(ids, vec!["a", "b", "c"], "{case}");
    }
    for child in &listed {
        let running = child.id != "b" || want.contains(&"start:b");
        assert_eq!(child.cell.is_some(), running, "{case}: {}", child.id);
    }
    warden_supervisors::shutdown(&sup, Duration::from_secs(10))
        .await
        .unwrap();
    handle.await.unwrap();
}

async fn run_strategy(strategy: Strategy) {
    for restart in [Restart::Permanent, Restart::Transient, Restart::Temporary] {
        for how in ALL_EXITS {
            run_case(strategy, restart, how).await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn one_for_one_matrix() {
    run_strategy(Strategy::OneForOne).await;
}

#[tokio::test(start_paused = true)]
async fn one_for_all_matrix() {
    run_strategy(Strategy::OneForAll).await;
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_matrix() {
    run_strategy(Strategy::RestForOne).await;
}

/// A temporary child stopped because of a sibling is not restarted, and is removed.
#[tokio::test(start_paused = true)]
async fn temporary_sibling_is_stopped_but_not_restarted() {
    for strategy in [Strategy::OneForAll, Strategy::RestForOne] {
        let log = Log::default();
        let spec = SupervisorSpec::new("temp", strategy)
            .policy(policy())
            .children(vec![
                worker("a", &log),
                worker("t", &log).restart(Restart::Temporary),
                worker("c", &log),
            ]);
        let (sup, handle) = Supervisor::spawn(None, spec).await.unwrap();
        log.clear();
        make_exit(&child_cell(&sup, "a").await, How::Kill);
        eventually(|| log.len() >= 4, Duration::from_secs(5), "restart").await;
        settle().await;
        assert_eq!(
            log.lines(),
            vec!["stop:c", "stop:t", "start:a", "start:c"],
            "{strategy:?}"
        );
        let ids: Vec<_> = children(&sup).await.into_iter().map(|c| c.id).collect();
        assert_eq!(ids, vec!["a", "c"], "{strategy:?}");
        warden_supervisors::shutdown(&sup, Duration::from_secs(10))
            .await
            .unwrap();
        handle.await.unwrap();
    }
}

/// A temporary child's own death does not touch its siblings under one_for_all.
#[tokio::test(start_paused = true)]
async fn temporary_child_death_leaves_siblings_alone() {
    let log = Log::default();
    let recorder = Recorder::default();
    let spec = SupervisorSpec::new("temp", Strategy::OneForAll)
        .policy(policy())
        .observer(recorder.arc())
        .children(vec![
            worker("a", &log),
            worker("t", &log).restart(Restart::Temporary),
            worker("c", &log),
        ]);
    let (sup, handle) = Supervisor::spawn(None, spec).await.unwrap();
    log.clear();
    make_exit(&child_cell(&sup, "t").await, How::Error);
    let exited = || recorder.count(|e| matches!(e, SupervisionEvent::ChildExited { .. })) == 1;
    eventually(exited, Duration::from_secs(5), "exit of t").await;
    settle().await;
    assert!(log.lines().is_empty(), "{:?}", log.lines());
    let ids: Vec<_> = children(&sup).await.into_iter().map(|c| c.id).collect();
    assert_eq!(ids, vec!["a", "c"]);
    warden_supervisors::shutdown(&sup, Duration::from_secs(10))
        .await
        .unwrap();
    handle.await.unwrap();
}

/// The same decisions on a real multi-threaded runtime and clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_all_permanent_on_a_multi_thread_runtime() {
    for how in ALL_EXITS {
        run_case(Strategy::OneForAll, Restart::Permanent, how).await;
    }
}
