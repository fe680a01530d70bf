//! The `Ladder`: "heal here, then escalate" as one pure concept.
//!
//! A ladder is a list of named rungs. Each rung allows `max_attempts` retries
//! within a sliding window of `within` (OTP restart intensity: more than
//! `max_attempts` within `within` spends the rung). When a rung is spent the
//! ladder steps to the next one ([`LadderStep::Escalate`]); after the last rung
//! it reports [`LadderStep::Exhausted`]. A stable period of
//! `backoff.reset_after` with no failure resets the ladder to its first rung
//! and resets the backoff.
//!
//! A [`Supervisor`](crate::Supervisor) uses a ladder as its restart policy (any
//! retry or escalation means "restart", exhaustion means meltdown); the
//! escalation coordinator uses the same type for components.
//!
//! ```
//! use std::time::Duration;
//! use tokio::time::Instant;
//! use warden_supervisors::{Backoff, Ladder, LadderStep, Rung};
//!
//! let ladder = Ladder::new(vec![
//!     Rung::new("restart", 2, Duration::from_secs(10)).backoff(Backoff::none()),
//!     Rung::new("reinstall", 1, Duration::from_secs(60)),
//! ]);
//! let mut state = ladder.state();
//! let now = Instant::now();
//! assert!(matches!(state.on_failure(now), LadderStep::Retry { attempt: 1, .. }));
//! assert!(matches!(state.on_failure(now), LadderStep::Retry { attempt: 2, .. }));
//! assert!(matches!(state.on_failure(now), LadderStep::Escalate { .. }));
//! assert!(matches!(state.on_failure(now), LadderStep::Exhausted));
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::Backoff;

/// One rung: an attempt budget within a sliding window, with its backoff.
#[derive(Debug, Clone, PartialEq)]
pub struct Rung {
    /// Name used in events and logs (e.g. `"restart"`).
    pub name: String,
    /// Retries allowed within `within`; one more spends the rung.
    pub max_attempts: u32,
    /// Length of the sliding window.
    pub within: Duration,
    /// Delay between retries on this rung.
    pub backoff: Backoff,
}

impl Rung {
    /// A rung with the default [`Backoff`].
    pub fn new(name: impl Into<String>, max_attempts: u32, within: Duration) -> Self {
        Self {
            name: name.into(),
            max_attempts,
            within,
            backoff: Backoff::default(),
        }
    }

    /// Replaces the backoff.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
}

/// An ordered list of rungs. Build a [`LadderState`] from it to count failures.
#[derive(Debug, Clone, PartialEq)]
pub struct Ladder {
    rungs: Vec<Rung>,
}

impl Default for Ladder {
    /// One rung `"restart"`: 3 attempts within 5 s, default backoff
    /// (10 ms .. 1 s, jitter 0.2, reset after 5 s).
    fn default() -> Self {
        Self::single(Rung::new("restart", 3, Duration::from_secs(5)))
    }
}

impl Ladder {
    /// A ladder from its rungs, first rung first. An empty ladder is exhausted
    /// on the first failure.
    pub fn new(rungs: Vec<Rung>) -> Self {
        Self { rungs }
    }

    /// A ladder with one rung (the usual supervisor policy).
    pub fn single(rung: Rung) -> Self {
        Self::new(vec![rung])
    }

    /// The rungs, first rung first.
    pub fn rungs(&self) -> &[Rung] {
        &self.rungs
    }

    /// A fresh state at the first rung.
    pub fn state(&self) -> LadderState {
        LadderState::new(self.clone())
    }
}

/// What to do about a failure.
#[derive(Debug, Clone, PartialEq)]
pub enum LadderStep {
    /// Retry on the current rung after `delay`; `attempt` counts the retries
    /// within the rung's window, including this one (1-based).
    Retry {
        /// Name of the current rung.
        rung: String,
        /// Retries within the window so far, including this one.
        attempt: u32,
        /// How long to wait before retrying.
        delay: Duration,
    },
    /// Rung `from` is spent; act on rung `to` now. This counts as the first
    /// attempt on `to`, and later failures are counted there.
    Escalate {
        /// The rung whose budget was spent.
        from: String,
        /// The rung now in force.
        to: String,
    },
    /// The last rung is spent: give up here and let the caller's parent decide.
    Exhausted,
}

/// The failure count of a [`Ladder`]: current rung, sliding window of attempt
/// times and backoff position. Pure: time comes in as an argument.
#[derive(Debug, Clone)]
pub struct LadderState {
    ladder: Ladder,
    rung: usize,
    /// Times of the attempts on the current rung still inside its window.
    window: VecDeque<Instant>,
    /// Consecutive failures on this rung since the last reset (drives backoff).
    consecutive: u32,
    last_failure: Option<Instant>,
    exhausted: bool,
}

impl LadderState {
    /// A state at the first rung of `ladder`.
    pub fn new(ladder: Ladder) -> Self {
        Self {
            ladder,
            rung: 0,
            window: VecDeque::new(),
            consecutive: 0,
            last_failure: None,
            exhausted: false,
        }
    }

    /// The ladder this state counts against.
    pub fn ladder(&self) -> &Ladder {
        &self.ladder
    }

    /// Index of the current rung.
    pub fn rung_index(&self) -> usize {
        self.rung
    }

    /// The current rung, or `None` for an empty ladder.
    pub fn rung(&self) -> Option<&Rung> {
        self.ladder.rungs.get(self.rung)
    }

    /// Whether the ladder has been exhausted (stays so until [`reset`](Self::reset)).
    pub fn is_exhausted(&self) -> bool {
        self.exhausted
    }

    /// Attempts on the current rung that are still inside its window at `now`.
    pub fn attempts_in_window(&self, now: Instant) -> u32 {
        let Some(rung) = self.rung() else { return 0 };
        let within = rung.within;
        let count = self
            .window
            .iter()
            .filter(|at| now.saturating_duration_since(**at) < within)
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Back to the first rung with an empty window and a fresh backoff.
    pub fn reset(&mut self) {
        self.rung = 0;
        self.window.clear();
        self.consecutive = 0;
        self.last_failure = None;
        self.exhausted = false;
    }

    /// Records a failure at `now` and says what to do about it.
    ///
    /// An attempt stays in the window while `now - at < within`. If the
    /// previous failure was at least `backoff.reset_after` ago, the ladder
    /// first resets (first rung, immediate retry).
    pub fn on_failure(&mut self, now: Instant) -> LadderStep {
        if let (Some(last), Some(rung)) = (self.last_failure, self.rung())
            && now.saturating_duration_since(last) >= rung.backoff.reset_after
        {
            self.reset();
        }
        self.last_failure = Some(now);
        if self.exhausted {
            return LadderStep::Exhausted;
        }
        let Some(rung) = self.ladder.rungs.get(self.rung) else {
            self.exhausted = true;
            return LadderStep::Exhausted;
        };
        let within = rung.within;
        while let Some(front) = self.window.front() {
            if now.saturating_duration_since(*front) >= within {
                self.window.pop_front();
            } else {
                break;
            }
        }
        self.window.push_back(now);
        self.consecutive = self.consecutive.saturating_add(1);
        let attempts = u32::try_from(self.window.len()).unwrap_or(u32::MAX);
        if attempts <= rung.max_attempts {
            return LadderStep::Retry {
                rung: rung.name.clone(),
                attempt: attempts,
                delay: rung.backoff.delay(self.consecutive),
            };
        }
        let from = rung.name.clone();
        match self.ladder.rungs.get(self.rung + 1) {
            Some(next) => {
                let to = next.name.clone();
                self.rung += 1;
                self.window.clear();
                self.window.push_back(now);
                self.consecutive = 1;
                LadderStep::Escalate { from, to }
            }
            None => {
                self.exhausted = true;
                LadderStep::Exhausted
            }
        }
    }
}

#[cfg(test)]
mod tests;
