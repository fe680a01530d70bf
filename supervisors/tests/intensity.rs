//! Restart intensity: the sliding window, start failures counting as
//! restarts, and meltdown escalating through two levels of supervisors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use ractor::ActorRef;
use support::{
    How, Log, Recorder, child_cell, eventually, flaky_worker, make_exit, settle, worker,
};
use warden_supervisors::{
    Backoff, ChildSpec, ExitKind, Ladder, Rung, Strategy, SupervisionEvent, Supervisor,
    SupervisorMsg, SupervisorSpec,
};

fn policy(max: u32, within: Duration) -> Ladder {
    Ladder::single(Rung::new("restart", max, within).backoff(Backoff::none()))
}

fn is_meltdown(e: &SupervisionEvent) -> bool {
    matches!(e, SupervisionEvent::Meltdown { .. })
}

/// Kills child `id` of `sup` and waits until a new instance runs.
async fn kill_and_await_restart(sup: &ActorRef<SupervisorMsg>, id: &str) {
    let old = child_cell(sup, id).await.get_id();
    make_exit(&child_cell(sup, id).await, How::Kill);
    let sup = sup.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = support::children(&sup).await;
        let child = now.iter().find(|c| c.id == id).unwrap();
        if child.actor_id.is_some_and(|a| a != old) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no restart of {id}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn restarts_within_budget_then_meltdown_stops_children_in_reverse_order() {
    let log = Log::default();
    let recorder = Recorder::default();
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .policy(policy(2, Duration::from_secs(5)))
        .observer(recorder.arc())
        .children(vec![
            worker("a", &log),
            worker("b", &log),
            worker("c", &log),
        ]);
    let (sup, handle) = Supervisor::spawn(None, spec).await.unwrap();
    kill_and_await_restart(&sup, "b").await;
    kill_and_await_restart(&sup, "b").await;
    log.clear();
    make_exit(&child_cell(&sup, "b").await, How::Kill);
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(log.lines(), vec!["stop:c", "stop:a"]);
    let meltdowns: Vec<_> = recorder.events().into_iter().filter(is_meltdown).collect();
    assert_eq!(
        meltdowns,
        vec![SupervisionEvent::Meltdown {
            supervisor: "sup".into(),
            restarts: 2,
            within: Duration::from_secs(5),
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn restarts_spread_beyond_the_window_never_melt_down() {
    let log = Log::default();
    let recorder = Recorder::default();
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .policy(policy(2, Duration::from_secs(1)))
        .observer(recorder.arc())
        .children(vec![worker("a", &log)]);
    let (sup, _handle) = Supervisor::spawn(None, spec).await.unwrap();
    for _ in 0..10 {
        kill_and_await_restart(&sup, "a").await;
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert_eq!(recorder.count(is_meltdown), 0);
    let restarted = support::children(&sup).await[0].restarts;
    assert_eq!(restarted, 10);
    warden_supervisors::shutdown(&sup, Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn initial_start_failures_count_as_restarts() {
    let log = Log::default();
    // Two failures fit a budget of 2: the supervisor starts.
    let recorder = Recorder::default();
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .policy(policy(2, Duration::from_secs(5)))
        .observer(recorder.arc())
        .children(vec![
            worker("a", &log),
            flaky_worker("b", &log, Arc::new(AtomicU32::new(2))),
        ]);
    let (sup, _handle) = Supervisor::spawn(None, spec).await.unwrap();
    assert_eq!(
        recorder.count(|e| matches!(e, SupervisionEvent::StartFailed { .. })),
        2
    );
    assert_eq!(log.lines(), vec!["start:a", "start:b"]);
    let scheduled = |e: &SupervisionEvent| matches!(e, SupervisionEvent::RestartScheduled { child, .. } if child == "b");
    assert_eq!(recorder.count(scheduled), 2);
    warden_supervisors::shutdown(&sup, Duration::from_secs(5))
        .await
        .unwrap();

    // Three do not: spawning fails, after stopping the started child.
    log.clear();
    let recorder = Recorder::default();
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .policy(policy(2, Duration::from_secs(5)))
        .observer(recorder.arc())
        .children(vec![
            worker("a", &log),
            flaky_worker("b", &log, Arc::new(AtomicU32::new(3))),
        ]);
    let error = Supervisor::spawn(None, spec).await.unwrap_err();
    assert!(error.to_string().contains("meltdown"), "{error}");
    assert_eq!(log.lines(), vec!["start:a", "stop:a"]);
    assert_eq!(recorder.count(is_meltdown), 1);
}

#[tokio::test(start_paused = true)]
async fn restart_failures_count_against_the_budget() {
    let log = Log::default();
    let recorder = Recorder::default();
    let failures = Arc::new(AtomicU32::new(0));
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .policy(policy(3, Duration::from_secs(5)))
        .observer(recorder.arc())
        .children(vec![flaky_worker("a", &log, failures.clone())]);
    let (sup, handle) = Supervisor::spawn(None, spec).await.unwrap();
    // The kill is restart 1; two failed starts are restarts 2 and 3; the
    // third attempt succeeds.
    failures.store(2, std::sync::atomic::Ordering::SeqCst);
    kill_and_await_restart(&sup, "a").await;
    assert_eq!(
        recorder.count(|e| matches!(e, SupervisionEvent::StartFailed { .. })),
        2
    );
    assert!(
        recorder
            .events()
            .contains(&SupervisionEvent::ChildRestarted {
                supervisor: "sup".into(),
                child: "a".into(),
                attempt: 3,
            })
    );
    // One more failure exceeds the budget of 3.
    make_exit(&child_cell(&sup, "a").await, How::Error);
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorder.count(is_meltdown), 1);
}

/// Worker `w` under `mid` (2 restarts) under `root` (1 restart): `mid` melts
/// down, `root` restarts it; `mid` melts down again and `root` melts down too.
#[tokio::test(start_paused = true)]
async fn meltdown_escalates_through_two_levels() {
    let log = Log::default();
    let recorder = Recorder::default();
    let mid_spec = SupervisorSpec::new("mid", Strategy::OneForOne)
        .policy(policy(2, Duration::from_secs(60)))
        .observer(recorder.arc())
        .children(vec![worker("v", &log), worker("w", &log)]);
    let mid = ChildSpec::supervisor("mid", move |parent| {
        let spec = mid_spec.clone();
        Box::pin(async move {
            let (sup, _) = Supervisor::spawn_linked(None, spec, parent).await?;
            Ok(sup.get_cell())
        })
    });
    let root_spec = SupervisorSpec::new("root", Strategy::OneForOne)
        .policy(policy(1, Duration::from_secs(60)))
        .observer(recorder.arc())
        .children(vec![mid]);
    let (root, handle) = Supervisor::spawn(None, root_spec).await.unwrap();

    for round in 0..2 {
        let mid: ActorRef<SupervisorMsg> = child_cell(&root, "mid").await.into();
        kill_and_await_restart(&mid, "w").await;
        kill_and_await_restart(&mid, "w").await;
        make_exit(&child_cell(&mid, "w").await, How::Kill);
        if round == 0 {
            let restarted = || {
                recorder.count(|e| matches!(e, SupervisionEvent::ChildRestarted { child, .. } if child == "mid")) == 1
            };
            eventually(restarted, Duration::from_secs(5), "restart of mid").await;
        }
    }
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .unwrap()
        .unwrap();
    settle().await;

    let trail: Vec<_> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            SupervisionEvent::Meltdown { supervisor, .. } => Some(format!("meltdown {supervisor}")),
            SupervisionEvent::ChildExited {
                supervisor,
                child,
                exit: ExitKind::Meltdown(_),
            } => Some(format!("{supervisor} saw {child} melt down")),
            SupervisionEvent::ChildRestarted {
                supervisor,
                child,
                attempt,
            } if child == "mid" => {
                Some(format!("{supervisor} restarted {child} attempt {attempt}"))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        trail,
        vec![
            "meltdown mid",
            "root saw mid melt down",
            "root restarted mid attempt 1",
            "meltdown mid",
            "root saw mid melt down",
            "meltdown root",
        ]
    );
    // Each meltdown stopped the surviving sibling `v` gracefully (post_stop ran).
    let count = |line: &str| log.lines().iter().filter(|l| *l == line).count();
    assert_eq!(
        (count("start:w"), count("start:v"), count("stop:v")),
        (6, 2, 2)
    );
    assert_eq!(log.lines().last().map(String::as_str), Some("stop:v"));
}

/// A multi-rung policy: retries and escalations both restart; only the end of
/// the last rung melts down.
#[tokio::test(start_paused = true)]
async fn every_rung_of_a_ladder_policy_is_used_before_meltdown() {
    let log = Log::default();
    let recorder = Recorder::default();
    let ladder = Ladder::new(vec![
        Rung::new("fast", 1, Duration::from_secs(60)).backoff(Backoff::none()),
        Rung::new("slow", 1, Duration::from_secs(60)).backoff(Backoff::none()),
    ]);
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .policy(ladder)
        .observer(recorder.arc())
        .children(vec![worker("a", &log)]);
    let (sup, handle) = Supervisor::spawn(None, spec).await.unwrap();
    kill_and_await_restart(&sup, "a").await; // rung "fast", attempt 1
    kill_and_await_restart(&sup, "a").await; // escalated to "slow", attempt 1
    make_exit(&child_cell(&sup, "a").await, How::Kill);
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .unwrap()
        .unwrap();
    let restarts = recorder.count(|e| matches!(e, SupervisionEvent::ChildRestarted { .. }));
    assert_eq!((restarts, recorder.count(is_meltdown)), (2, 1));
}
