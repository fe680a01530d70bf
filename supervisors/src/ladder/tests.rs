use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use super::{Ladder, LadderStep, Rung};
use crate::Backoff;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn no_jitter(min: u64, max: u64, reset_after: u64) -> Backoff {
    Backoff {
        min: ms(min),
        max: ms(max),
        jitter: 0.0,
        reset_after: ms(reset_after),
    }
}

#[test]
fn default_ladder_allows_three_restarts_in_five_seconds() {
    let ladder = Ladder::default();
    assert_eq!(ladder.rungs().len(), 1);
    let rung = &ladder.rungs()[0];
    assert_eq!((rung.name.as_str(), rung.max_attempts), ("restart", 3));
    assert_eq!(rung.within, Duration::from_secs(5));
    let mut state = ladder.state();
    let now = Instant::now();
    for attempt in 1..=3 {
        match state.on_failure(now) {
            LadderStep::Retry { attempt: got, .. } => assert_eq!(got, attempt),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(state.on_failure(now), LadderStep::Exhausted);
    assert!(state.is_exhausted());
}

#[test]
fn window_slides_so_spread_out_failures_never_exhaust() {
    let rung = Rung::new("restart", 2, ms(100)).backoff(no_jitter(1, 8, 10_000));
    let mut state = Ladder::single(rung).state();
    let start = Instant::now();
    for i in 0..20u64 {
        let step = state.on_failure(start + ms(60 * i));
        assert!(matches!(step, LadderStep::Retry { .. }), "{i}: {step:?}");
    }
}

#[test]
fn backoff_grows_then_resets_after_a_stable_period() {
    let rung = Rung::new("restart", 100, ms(10_000)).backoff(no_jitter(10, 40, 1_000));
    let mut state = Ladder::single(rung).state();
    let start = Instant::now();
    let delays: Vec<_> = (0..5)
        .map(|i| match state.on_failure(start + ms(i)) {
            LadderStep::Retry { delay, .. } => delay,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(delays, vec![ms(0), ms(10), ms(20), ms(40), ms(40)]);
    match state.on_failure(start + ms(2_000)) {
        LadderStep::Retry { attempt, delay, .. } => assert_eq!((attempt, delay), (1, ms(0))),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn rungs_escalate_in_order_and_reset_to_the_first() {
    let ladder = Ladder::new(vec![
        Rung::new("restart", 2, ms(1_000)).backoff(no_jitter(0, 0, 5_000)),
        Rung::new("reinstall", 1, ms(1_000)).backoff(no_jitter(0, 0, 5_000)),
    ]);
    let mut state = ladder.state();
    let now = Instant::now();
    let steps: Vec<_> = (0..5).map(|_| state.on_failure(now)).collect();
    assert_eq!(
        steps,
        vec![
            LadderStep::Retry {
                rung: "restart".into(),
                attempt: 1,
                delay: ms(0)
            },
            LadderStep::Retry {
                rung: "restart".into(),
                attempt: 2,
                delay: ms(0)
            },
            LadderStep::Escalate {
                from: "restart".into(),
                to: "reinstall".into()
            },
            LadderStep::Exhausted,
            LadderStep::Exhausted,
        ]
    );
    let later = now + ms(5_000);
    assert_eq!(
        state.on_failure(later),
        LadderStep::Retry {
            rung: "restart".into(),
            attempt: 1,
            delay: ms(0)
        }
    );
    assert_eq!(state.rung_index(), 0);
}

#[test]
fn empty_ladder_is_exhausted_at_once() {
    let mut state = Ladder::new(Vec::new()).state();
    assert_eq!(state.on_failure(Instant::now()), LadderStep::Exhausted);
}

proptest! {
    /// A single-rung ladder is exhausted exactly when, at some failure, more
    /// than `max` failures (that one included) fall inside `(now - within, now]`,
    /// unless a gap of at least `reset_after` reset the count before it.
    #[test]
    fn intensity_matches_a_naive_model(
        max in 0u32..5,
        within_ms in 1u64..500,
        reset_ms in 1u64..1_000,
        gaps in proptest::collection::vec(0u64..400, 1..40),
    ) {
        let rung = Rung::new("r", max, ms(within_ms)).backoff(no_jitter(1, 50, reset_ms));
        let mut state = Ladder::single(rung).state();
        let start = Instant::now();
        let mut now = start;
        let mut times: Vec<Instant> = Vec::new();
        let mut exhausted = false;
        for (i, gap) in gaps.iter().enumerate() {
            if i > 0 {
                now += ms(*gap);
            }
            if let Some(last) = times.last()
                && now - *last >= ms(reset_ms)
            {
                times.clear();
                exhausted = false;
            }
            times.push(now);
            let in_window = times.iter().filter(|t| now - **t < ms(within_ms)).count() as u32;
            exhausted = exhausted || in_window > max;
            let step = state.on_failure(now);
            if exhausted {
                prop_assert_eq!(step, LadderStep::Exhausted);
            } else {
                match step {
                    LadderStep::Retry { attempt, delay, .. } => {
                        prop_assert_eq!(attempt, in_window);
                        prop_assert!(delay <= ms(50));
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            prop_assert!(state.attempts_in_window(now) <= max + 1);
        }
    }

    /// On a multi-rung ladder the rung index never goes down without a reset,
    /// escalations name adjacent rungs, and jittered delays stay bounded.
    #[test]
    fn rungs_only_move_up_until_a_stable_period(
        gaps in proptest::collection::vec(0u64..300, 1..60),
    ) {
        let backoff = Backoff { min: ms(5), max: ms(40), jitter: 0.5, reset_after: ms(1_000) };
        let ladder = Ladder::new(vec![
            Rung::new("a", 2, ms(200)).backoff(backoff),
            Rung::new("b", 2, ms(200)).backoff(backoff),
            Rung::new("c", 1, ms(200)).backoff(backoff),
        ]);
        let names = ["a", "b", "c"];
        let mut state = ladder.state();
        let mut now = Instant::now();
        let mut last_rung = 0usize;
        for gap in gaps {
            now += ms(gap);
            let reset = gap >= 1_000;
            let step = state.on_failure(now);
            let rung = state.rung_index();
            if !reset {
                prop_assert!(rung >= last_rung);
            }
            match step {
                LadderStep::Retry { rung: name, delay, .. } => {
                    prop_assert_eq!(name.as_str(), names[rung]);
                    prop_assert!(delay <= ms(60));
                }
                LadderStep::Escalate { from, to } => {
                    prop_assert_eq!(to.as_str(), names[rung]);
                    prop_assert_eq!(from.as_str(), names[rung - 1]);
                }
                LadderStep::Exhausted => prop_assert_eq!(rung, 2),
            }
            last_rung = rung;
        }
    }
}
