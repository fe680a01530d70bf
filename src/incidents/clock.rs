//! The commander's clock: the time the actor hands the core, and the
//! mapping between it and tokio instants (the store's clock marks).
//!
//! It is the wall clock at start plus the tokio clock's progress since,
//! never behind the wall clock now. The cadence and the related window so
//! follow the tokio clock, as they did when incidents kept tokio instants
//! (tests pause and advance it), while the stamps in records stay wall time.

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

/// Wall time anchored to a tokio instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    wall: Timestamp,
    mono: Instant,
}

impl Clock {
    /// Anchored now.
    pub(crate) fn start() -> Self {
        Self::anchored(Timestamp::now(), Instant::now())
    }

    fn anchored(wall: Timestamp, mono: Instant) -> Self {
        Self { wall, mono }
    }

    /// The time now.
    pub(crate) fn now(&self) -> Timestamp {
        self.at(Instant::now()).max(Timestamp::now())
    }

    /// The time of a tokio instant.
    pub(crate) fn at(&self, tick: Instant) -> Timestamp {
        match tick.checked_duration_since(self.mono) {
            Some(after) => self.wall.checked_add(after),
            None => self.wall.checked_sub(self.mono.duration_since(tick)),
        }
        .unwrap_or(self.wall)
    }

    /// The tokio instant of a time.
    pub(crate) fn instant(&self, at: Timestamp) -> Instant {
        match Duration::try_from(at.duration_since(self.wall)) {
            Ok(after) => self.mono.checked_add(after),
            Err(_) => Duration::try_from(self.wall.duration_since(at))
                .ok()
                .and_then(|before| self.mono.checked_sub(before)),
        }
        .unwrap_or(self.mono)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_the_tokio_clock_and_maps_both_ways() {
        let wall: Timestamp = "2025-01-01T10:00:00Z".parse().unwrap();
        let mono = Instant::now();
        let clock = Clock::anchored(wall, mono);
        let later = mono + Duration::from_secs(90);
        assert_eq!(clock.at(later), "2025-01-01T10:01:30Z".parse().unwrap());
        assert_eq!(clock.instant(clock.at(later)), later);
        let earlier = "2025-01-01T09:59:00Z".parse().unwrap();
        assert_eq!(clock.at(clock.instant(earlier)), earlier);
        // Paused time still moves the clock: the cadence depends on it.
        let before = Clock::start();
        let first = before.now();
        tokio::time::advance(Duration::from_secs(31 * 60)).await;
        let moved = before.now().duration_since(first);
        assert!(moved > jiff::SignedDuration::from_mins(30), "{moved}");
    }
}
