//! Dynamic children, ordered shutdown with per-child timeouts ending in kill,
//! and two trees with the same names side by side.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use ractor::ActorRef;
use support::{
    How, Log, Recorder, WorkerMsg, child_cell, children, eventually, flaky_worker, make_exit,
    worker,
};
use tokio::time::Instant;
use warden_supervisors::{
    Shutdown, Strategy, SupervisionEvent, Supervisor, SupervisorError, SupervisorMsg,
    SupervisorSpec,
};

async fn start_child(
    sup: &ActorRef<SupervisorMsg>,
    spec: warden_supervisors::ChildSpec,
) -> Result<(), SupervisorError> {
    ractor::call!(sup, SupervisorMsg::StartChild, spec).unwrap()
}

async fn terminate_child(sup: &ActorRef<SupervisorMsg>, id: &str) -> Result<(), SupervisorError> {
    ractor::call!(sup, SupervisorMsg::TerminateChild, id.to_string()).unwrap()
}

async fn ids(sup: &ActorRef<SupervisorMsg>) -> Vec<String> {
    children(sup).await.into_iter().map(|c| c.id).collect()
}

#[tokio::test(start_paused = true)]
async fn many_children_are_started_and_stopped_in_one_call_each() {
    let log = Log::default();
    let spec = SupervisorSpec::new("batch", Strategy::OneForOne)
        .max_children(Some(5))
        .children(vec![worker("a", &log)]);
    let (sup, handle) = Supervisor::spawn(None, spec).await.unwrap();

    let specs = vec![
        worker("b", &log),
        worker("a", &log),
        worker("c", &log),
        flaky_worker("f", &log, Arc::new(AtomicU32::new(1))),
        worker("d", &log),
        worker("e", &log),
        worker("g", &log),
    ];
    let failed = ractor::call!(sup, SupervisorMsg::StartChildren, specs).unwrap();
    let failed: Vec<(&str, bool, bool, bool)> = failed
        .iter()
        .map(|(id, error)| {
            (
                id.as_str(),
                matches!(error, SupervisorError::DuplicateChild(_)),
                matches!(error, SupervisorError::StartFailed { .. }),
                matches!(error, SupervisorError::MaxChildren(5)),
            )
        })
        .collect();
    assert_eq!(
        failed,
        [
            ("a", true, false, false),
            ("f", false, true, false),
            ("g", false, false, true)
        ]
    );
    assert_eq!(ids(&sup).await, vec!["a", "b", "c", "d", "e"]);

    let unknown = ractor::call!(
        sup,
        SupervisorMsg::TerminateChildren,
        vec!["b".to_owned(), "zz".to_owned(), "d".to_owned()]
    )
    .unwrap();
    assert_eq!(unknown, vec!["zz".to_owned()]);
    assert_eq!(ids(&sup).await, vec!["a", "c", "e"]);
    assert!(
        log.lines().contains(&"stop:b".to_owned()),
        "{:?}",
        log.lines()
    );
    sup.stop(None);
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn children_are_added_and_removed_at_runtime() {
    let log = Log::default();
    let spec = SupervisorSpec::new("dyn", Strategy::OneForOne)
        .max_children(Some(2))
        .children(vec![worker("a", &log)]);
    let (sup, handle) = Supervisor::spawn(None, spec).await.unwrap();

    start_child(&sup, worker("b", &log)).await.unwrap();
    assert_eq!(ids(&sup).await, vec!["a", "b"]);
    assert!(matches!(
        start_child(&sup, worker("c", &log)).await,
        Err(SupervisorError::MaxChildren(2))
    ));

    terminate_child(&sup, "a").await.unwrap();
    assert_eq!(ids(&sup).await, vec!["b"]);
    assert!(matches!(
        terminate_child(&sup, "a").await,
        Err(SupervisorError::ChildNotFound(_))
    ));
    assert!(matches!(
        start_child(&sup, worker("b", &log)).await,
        Err(SupervisorError::DuplicateChild(_))
    ));
    let failing = flaky_worker("f", &log, Arc::new(AtomicU32::new(1)));
    assert!(matches!(
        start_child(&sup, failing).await,
        Err(SupervisorError::StartFailed { .. })
    ));
    assert_eq!(ids(&sup).await, vec!["b"]);

    // A dynamic child is appended last and supervised like a static one.
    start_child(&sup, worker("c", &log)).await.unwrap();
    let before = child_cell(&sup, "c").await.get_id();
    make_exit(&child_cell(&sup, "c").await, How::Panic);
    eventually(
        || log.lines().iter().filter(|l| *l == "start:c").count() == 2,
        Duration::from_secs(5),
        "restart of c",
    )
    .await;
    let listed = children(&sup).await;
    assert_eq!(
        listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        vec!["b", "c"]
    );
    assert_ne!(listed[1].actor_id, Some(before));
    assert_eq!(listed[1].restarts, 1);

    assert_eq!(
        log.lines(),
        vec!["start:a", "start:b", "stop:a", "start:c", "start:c"]
    );
    warden_supervisors::shutdown(&sup, Duration::from_secs(5))
        .await
        .unwrap();
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn terminate_kills_a_child_that_ignores_stop_after_its_timeout() {
    let log = Log::default();
    let recorder = Recorder::default();
    let spec = SupervisorSpec::new("dyn", Strategy::OneForOne)
        .observer(recorder.arc())
        .children(vec![
            worker("stubborn", &log).shutdown(Shutdown::Timeout(Duration::from_secs(2))),
        ]);
    let (sup, _handle) = Supervisor::spawn(None, spec).await.unwrap();
    let cell = child_cell(&sup, "stubborn").await;
    cell.send_message(WorkerMsg::Hang).unwrap();

    let started = Instant::now();
    terminate_child(&sup, "stubborn").await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(2_100),
        "{took:?}"
    );
    assert_eq!(cell.get_status(), ractor::ActorStatus::Stopped);
    assert!(recorder.events().contains(&SupervisionEvent::ChildStopped {
        supervisor: "dyn".into(),
        child: "stubborn".into(),
        killed: true,
    }));
    // Killed: post_stop never ran, and the child is not restarted.
    assert_eq!(log.lines(), vec!["start:stubborn"]);
    assert!(ids(&sup).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_children_in_reverse_order_with_per_child_timeouts() {
    let log = Log::default();
    let recorder = Recorder::default();
    let spec = SupervisorSpec::new("root", Strategy::OneForAll)
        .observer(recorder.arc())
        .children(vec![
            worker("a", &log),
            worker("b", &log).shutdown(Shutdown::Timeout(Duration::from_secs(1))),
            worker("c", &log).shutdown(Shutdown::BrutalKill),
            worker("d", &log),
        ]);
    let (sup, handle) = Supervisor::spawn(None, spec).await.unwrap();
    child_cell(&sup, "b")
        .await
        .send_message(WorkerMsg::Hang)
        .unwrap();
    log.clear();

    let started = Instant::now();
    warden_supervisors::shutdown(&sup, Duration::from_secs(10))
        .await
        .unwrap();
    handle.await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    // d stopped gracefully, c brutally killed, b killed after its timeout, a graceful.
    assert_eq!(log.lines(), vec!["stop:d", "stop:a"]);
    let stopped: Vec<_> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            SupervisionEvent::ChildStopped { child, killed, .. } => Some((child, killed)),
            _ => None,
        })
        .collect();
    let expected = [("d", false), ("c", true), ("b", true), ("a", false)];
    assert_eq!(stopped, expected.map(|(c, k)| (c.to_string(), k)));
    // Stops the supervisor made itself are never counted as failures.
    assert_eq!(
        recorder.count(|e| matches!(e, SupervisionEvent::ChildExited { .. })),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn stop_children_keeps_the_supervisor_up() {
    let log = Log::default();
    let spec = SupervisorSpec::new("root", Strategy::OneForOne)
        .children(vec![worker("a", &log), worker("b", &log)]);
    let (sup, _handle) = Supervisor::spawn(None, spec).await.unwrap();
    ractor::call!(sup, SupervisorMsg::StopChildren).unwrap();
    assert_eq!(log.lines(), vec!["start:a", "start:b", "stop:b", "stop:a"]);
    let listed = children(&sup).await;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|c| c.cell.is_none()));
    // Still up and still accepting children.
    start_child(&sup, worker("c", &log)).await.unwrap();
    assert_eq!(ids(&sup).await, vec!["a", "b", "c"]);
}

#[tokio::test(start_paused = true)]
async fn two_trees_with_the_same_names_run_side_by_side() {
    let (log1, log2) = (Log::default(), Log::default());
    let spec = |log: &Log| {
        SupervisorSpec::new("tree", Strategy::OneForOne)
            .children(vec![worker("a", log), worker("b", log)])
    };
    let (one, _h1) = Supervisor::spawn(None, spec(&log1)).await.unwrap();
    let (two, _h2) = Supervisor::spawn(None, spec(&log2)).await.unwrap();
    make_exit(&child_cell(&one, "a").await, How::Kill);
    eventually(
        || log1.len() == 3,
        Duration::from_secs(5),
        "restart in tree one",
    )
    .await;
    assert_eq!(log1.lines(), vec!["start:a", "start:b", "start:a"]);
    assert_eq!(log2.lines(), vec!["start:a", "start:b"]);
    assert_eq!(
        children(&two).await.iter().map(|c| c.restarts).sum::<u32>(),
        0
    );
}
