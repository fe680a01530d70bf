use std::time::Duration;

use super::Backoff;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn first_retry_is_immediate_then_doubles_up_to_max() {
    let backoff = Backoff {
        min: ms(10),
        max: ms(50),
        jitter: 0.0,
        reset_after: ms(1000),
    };
    let delays: Vec<_> = (1..=6).map(|n| backoff.delay(n)).collect();
    assert_eq!(delays, vec![ms(0), ms(10), ms(20), ms(40), ms(50), ms(50)]);
}

#[test]
fn huge_attempt_numbers_do_not_overflow() {
    let backoff = Backoff::default();
    assert_eq!(backoff.base_delay(u32::MAX), backoff.max);
}

#[test]
fn jitter_stays_within_its_fraction() {
    let backoff = Backoff {
        min: ms(100),
        max: ms(100),
        jitter: 0.2,
        reset_after: ms(1000),
    };
    for _ in 0..200 {
        let delay = backoff.delay(3);
        assert!(delay >= ms(80) && delay <= ms(120), "{delay:?}");
    }
}
