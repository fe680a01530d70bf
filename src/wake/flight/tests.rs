#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use super::Flight;

#[test]
fn same_key_runs_in_order_and_other_keys_run_alongside() {
    let mut flight = Flight::new(4, 0);
    flight.admit(1, "a".into(), "a1");
    flight.admit(2, "a".into(), "a2");
    flight.admit(3, "b".into(), "b1");
    let (seq, key, item) = flight.next_to_run().unwrap();
    assert_eq!((seq, key.as_str(), item), (1, "a", "a1"));
    let (seq, _, item) = flight.next_to_run().unwrap();
    assert_eq!((seq, item), (3, "b1"));
    // a2 waits for a1.
    assert!(flight.next_to_run().is_none());
    flight.stopped("a", 1, true);
    let (seq, _, item) = flight.next_to_run().unwrap();
    assert_eq!((seq, item), (2, "a2"));
}

#[test]
fn the_concurrency_limit_holds() {
    let mut flight = Flight::new(2, 0);
    for (seq, key) in [(1, "a"), (2, "b"), (3, "c")] {
        flight.admit(seq, key.into(), ());
    }
    assert!(flight.next_to_run().is_some());
    assert!(flight.next_to_run().is_some());
    assert!(flight.next_to_run().is_none());
    assert_eq!(flight.running(), 2);
    flight.stopped("a", 1, true);
    assert!(flight.next_to_run().is_some());
}

#[test]
fn the_watermark_waits_for_the_oldest_unfinished_row() {
    let mut flight = Flight::new(4, 10);
    assert_eq!(flight.watermark(), 10);
    flight.skip(11);
    flight.admit(12, "a".into(), ());
    flight.admit(13, "b".into(), ());
    flight.skip(14);
    assert_eq!(flight.watermark(), 11);
    let _ = flight.next_to_run();
    let _ = flight.next_to_run();
    flight.stopped("b", 13, true);
    assert_eq!(flight.watermark(), 11);
    // Kept for redelivery: the watermark stays below it.
    flight.stopped("a", 12, false);
    assert_eq!(flight.watermark(), 11);
    flight.finish(12);
    assert_eq!(flight.watermark(), 14);
}

proptest! {
    /// Whatever the finishing order, the watermark never passes an
    /// unfinished row and reaches the last read row once all are finished.
    #[test]
    fn watermark_is_safe(keys in proptest::collection::vec(0u8..4, 1..60), seed in any::<u64>()) {
        let mut flight = Flight::new(3, 0);
        for (i, key) in keys.iter().enumerate() {
            flight.admit(i as u64 + 1, key.to_string(), ());
        }
        let mut running = Vec::new();
        let mut done = std::collections::BTreeSet::new();
        let mut state = seed;
        loop {
            while let Some((seq, key, ())) = flight.next_to_run() {
                running.push((seq, key));
            }
            if running.is_empty() {
                break;
            }
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let index = (state >> 33) as usize % running.len();
            let (seq, key) = running.swap_remove(index);
            flight.stopped(&key, seq, true);
            done.insert(seq);
            let mark = flight.watermark();
            prop_assert!((1..=mark).all(|s| done.contains(&s)));
        }
        prop_assert_eq!(flight.watermark(), keys.len() as u64);
    }
}
