//! Exponential backoff with jitter between repeated restarts.
//!
//! The first failure after a stable period is retried at once (a ractor restart
//! costs microseconds, so latency is only added when failures repeat); after
//! that the delay doubles from `min` up to `max`, spread by a random `jitter`
//! fraction so that siblings do not restart in lock step.

use std::time::Duration;

use rand::Rng;

/// Backoff settings for one rung of a [`Ladder`](crate::Ladder).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the second consecutive retry; doubles for each later one.
    pub min: Duration,
    /// Upper bound of the delay before jitter is applied.
    pub max: Duration,
    /// Random spread as a fraction of the delay, `0.0..=1.0` (0.2 means ±20 %).
    pub jitter: f64,
    /// A period with no failure after which the backoff (and the ladder) resets.
    pub reset_after: Duration,
}

impl Default for Backoff {
    /// min 10 ms, max 1 s, jitter 0.2, reset after 5 s.
    fn default() -> Self {
        Self {
            min: Duration::from_millis(10),
            max: Duration::from_secs(1),
            jitter: 0.2,
            reset_after: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// No delay at all between retries (useful in tests and for cheap restarts).
    pub fn none() -> Self {
        Self {
            min: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
            reset_after: Duration::from_secs(5),
        }
    }

    /// The delay before the `consecutive`-th retry (1-based) without jitter:
    /// 0 for the first, then `min`, `2·min`, `4·min`, … capped at `max`.
    pub fn base_delay(&self, consecutive: u32) -> Duration {
        if consecutive <= 1 {
            return Duration::ZERO;
        }
        let exponent = (consecutive - 2).min(31);
        let factor = 1u32 << exponent;
        self.min
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The delay before the `consecutive`-th retry (1-based), with jitter applied.
    ///
    /// The result lies within `base · (1 ± jitter)`; the first retry is always immediate.
    pub fn delay(&self, consecutive: u32) -> Duration {
        let base = self.base_delay(consecutive);
        let jitter = self.jitter.clamp(0.0, 1.0);
        if base.is_zero() || jitter == 0.0 {
            return base;
        }
        let factor = 1.0 + rand::rng().random_range(-jitter..=jitter);
        base.mul_f64(factor.max(0.0))
    }
}

#[cfg(test)]
mod tests;
