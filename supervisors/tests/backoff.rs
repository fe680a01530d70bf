//! Backoff timing under tokio's paused clock: immediate first restart, then
//! doubling delays, reset after a stable period, and a mailbox that stays
//! responsive while a restart is pending.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{How, Log, Recorder, child_cell, children, eventually, make_exit, worker};
use tokio::time::Instant;
use warden_supervisors::{
    Backoff, Ladder, Rung, Strategy, SupervisionEvent, Supervisor, SupervisorSpec,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn delays_double_up_to_max_and_reset_after_a_stable_period() {
    let log = Log::default();
    let recorder = Recorder::default();
    let backoff = Backoff {
        min: ms(100),
        max: ms(400),
        jitter: 0.0,
        reset_after: ms(10_000),
    };
    let policy =
        Ladder::single(Rung::new("restart", 100, Duration::from_secs(60)).backoff(backoff));
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .policy(policy)
        .observer(recorder.arc())
        .children(vec![worker("a", &log)]);
    let (sup, _handle) = Supervisor::spawn(None, spec).await.unwrap();

    let mut waited = Vec::new();
    let mut scheduled = Vec::new();
    for (round, stable_first) in [false, false, false, false, false, true]
        .into_iter()
        .enumerate()
    {
        if stable_first {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        let starts = log.len();
        let killed_at = Instant::now();
        make_exit(&child_cell(&sup, "a").await, How::Kill);
        if round == 3 {
            // While the 400 ms restart is pending the supervisor still answers at once.
            tokio::time::sleep(ms(10)).await;
            let asked = Instant::now();
            let listed = children(&sup).await;
            assert!(listed[0].cell.is_none());
            assert!(asked.elapsed() < ms(5));
        }
        eventually(|| log.len() > starts, Duration::from_secs(5), "restart").await;
        let (_, started_at) = log.timed().last().cloned().unwrap();
        waited.push(started_at - killed_at);
        scheduled.push(
            recorder
                .events()
                .into_iter()
                .rev()
                .find_map(|e| match e {
                    SupervisionEvent::RestartScheduled { delay, .. } => Some(delay),
                    _ => None,
                })
                .unwrap(),
        );
    }
    let expected = [ms(0), ms(100), ms(200), ms(400), ms(400), ms(0)];
    assert_eq!(scheduled, expected);
    for (waited, delay) in waited.iter().zip(expected) {
        // The restart happened no earlier than its delay and without added latency.
        assert!(
            *waited >= delay && *waited < delay + ms(20),
            "{waited:?} vs {delay:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn jittered_delays_stay_within_their_fraction() {
    let log = Log::default();
    let recorder = Recorder::default();
    let backoff = Backoff {
        min: ms(100),
        max: ms(100),
        jitter: 0.5,
        reset_after: ms(10_000),
    };
    let policy =
        Ladder::single(Rung::new("restart", 100, Duration::from_secs(60)).backoff(backoff));
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .policy(policy)
        .observer(recorder.arc())
        .children(vec![worker("a", &log)]);
    let (sup, _handle) = Supervisor::spawn(None, spec).await.unwrap();
    for _ in 0..8 {
        let starts = log.len();
        make_exit(&child_cell(&sup, "a").await, How::Error);
        eventually(|| log.len() > starts, Duration::from_secs(5), "restart").await;
    }
    let delays: Vec<_> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            SupervisionEvent::RestartScheduled { delay, .. } => Some(delay),
            _ => None,
        })
        .collect();
    assert_eq!(delays.len(), 8);
    assert_eq!(delays[0], Duration::ZERO);
    for delay in &delays[1..] {
        assert!(*delay >= ms(50) && *delay <= ms(150), "{delay:?}");
    }
}
