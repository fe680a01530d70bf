//! The escalation ladder of one component: which rung acts next.
//!
//! Every call to [`EscalationLadder::next`] is one *attempt*; attempts are
//! counted cumulatively over the cycle (until [`reset`](EscalationLadder::reset),
//! on a verified heal). The steps come in this order:
//!
//! 1. **Fix:** `fix.attempts` steps [`Step::Fix`]. When the envelope is off
//!    (`fix.enabled = false`, or no `action.kind`) each is marked `skipped`:
//!    the coordinator records `skipped` and asks for the next step at once.
//!    Skipped steps still count as attempts, so switching the envelope on or
//!    off does not move the final tier's position.
//! 2. **Non-final tiers:** every enabled tier except the last entry of
//!    `tiers`, in order, each for its `attempts`. This first pass is always
//!    complete.
//! 3. **More passes:** while the cumulative attempts are below
//!    `final_tier_threshold` and a final tier can be engaged, the non-final
//!    tiers are cycled again in order, stopping as soon as the count reaches
//!    the threshold (possibly in the middle of a tier's attempts).
//! 4. **Final tier:** the last entry of `tiers`, if it is enabled and
//!    `final_tier_threshold > 0`, for its `attempts`, once the cumulative
//!    attempts have reached the threshold. With no non-final tier to cycle and
//!    the threshold not reached, it is not engaged.
//! 5. [`Step::Exhausted`], for good (until `reset`): the coordinator rolls back.
//!
//! A step's `attempt` is the rung's own count in the cycle (1, 2, 3, ...,
//! continuing across passes), so `(rung, attempt)` is unique in a cycle and
//! can key idempotent calls. The number of steps before `Exhausted` is at most
//! `max(final_tier_threshold, fix.attempts + Σ non-final attempts) + final
//! attempts`.
//!
//! Why not `warden_supervisors::Ladder`: its rungs are restart budgets in a
//! sliding time window that reset after a quiet period; this ladder is driven
//! by counts within a cycle, crosses rungs with a cumulative threshold and
//! repeats passes, so it keeps its own small cursor instead.

use serde::{Deserialize, Serialize};

use crate::settings::ComponentSettings;

/// What the coordinator does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run the fix action (or record it as skipped).
    Fix {
        /// The fix's attempt number in the cycle, from 1.
        attempt: u32,
        /// The envelope is off: record `skipped` and move on.
        skipped: bool,
    },
    /// Call a tier.
    Tier {
        /// Index of the tier in the component's `tiers`.
        index: usize,
        /// The tier's name.
        name: String,
        /// The tier's attempt number in the cycle, from 1.
        attempt: u32,
        /// Whether this is the final tier.
        final_tier: bool,
    },
    /// Nothing left: roll back.
    Exhausted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TierRung {
    index: usize,
    name: String,
    attempts: u32,
    /// Steps taken on this tier in the cycle.
    taken: u32,
}

/// The ladder's configuration and its position in the current cycle.
/// Serialized with the cycle's record, so a cycle resumes on its rung after
/// a restart of Warden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationLadder {
    fix_attempts: u32,
    fix_skipped: bool,
    tiers: Vec<TierRung>,
    final_tier: Option<TierRung>,
    final_tier_threshold: u32,
    warning_threshold: u32,
    // Position in the cycle.
    total: u32,
    fix_taken: u32,
    /// Next non-final tier (index into `tiers`) and steps taken on it this pass.
    cursor: usize,
    in_tier: u32,
    first_pass_done: bool,
    warned: bool,
    exhausted: bool,
}

impl EscalationLadder {
    /// A fresh ladder for `component`.
    pub fn new(component: &ComponentSettings) -> Self {
        let fix = &component.fix;
        let rung = |(index, tier): (usize, &crate::settings::TierSettings)| TierRung {
            index,
            name: tier.name.clone(),
            attempts: tier.attempts(),
            taken: 0,
        };
        let last = component.tiers.len().checked_sub(1);
        let tiers = component
            .tiers
            .iter()
            .enumerate()
            .filter(|(index, tier)| {
                Some(*index) != last && tier.is_enabled() && tier.attempts() > 0
            })
            .map(rung)
            .collect();
        let final_tier = last
            .and_then(|index| component.tiers.get(index).map(|tier| (index, tier)))
            .filter(|(_, tier)| {
                tier.is_enabled() && tier.attempts() > 0 && component.final_tier_threshold > 0
            })
            .map(rung);
        Self {
            fix_attempts: fix.attempts,
            fix_skipped: !fix.enabled || fix.action.kind.is_none(),
            tiers,
            final_tier,
            final_tier_threshold: component.final_tier_threshold,
            warning_threshold: component.warning_threshold,
            total: 0,
            fix_taken: 0,
            cursor: 0,
            in_tier: 0,
            first_pass_done: false,
            warned: false,
            exhausted: false,
        }
    }

    /// The next step, counting it as an attempt. After [`Step::Exhausted`]
    /// every call returns `Exhausted` until [`reset`](Self::reset).
    // Not an `Iterator`: the ladder never ends (it keeps saying `Exhausted`),
    // and `reset` restarts it, so `next` returns a `Step`, not an `Option`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Step {
        if self.exhausted {
            return Step::Exhausted;
        }
        if self.fix_taken < self.fix_attempts {
            self.fix_taken += 1;
            self.total = self.total.saturating_add(1);
            return Step::Fix {
                attempt: self.fix_taken,
                skipped: self.fix_skipped,
            };
        }
        if let Some(step) = self.tier_step() {
            return step;
        }
        if self.total >= self.final_tier_threshold
            && let Some(tier) = self.final_tier.as_mut()
            && tier.taken < tier.attempts
        {
            tier.taken += 1;
            self.total = self.total.saturating_add(1);
            return Step::Tier {
                index: tier.index,
                name: tier.name.clone(),
                attempt: tier.taken,
                final_tier: true,
            };
        }
        self.exhausted = true;
        Step::Exhausted
    }

    fn tier_step(&mut self) -> Option<Step> {
        if self.tiers.is_empty() {
            return None;
        }
        let more_passes = self.final_tier.is_some() && self.total < self.final_tier_threshold;
        if self.first_pass_done && !more_passes {
            return None;
        }
        let count = self.tiers.len();
        let tier = self.tiers.get_mut(self.cursor)?;
        tier.taken += 1;
        self.in_tier += 1;
        self.total = self.total.saturating_add(1);
        let step = Step::Tier {
            index: tier.index,
            name: tier.name.clone(),
            attempt: tier.taken,
            final_tier: false,
        };
        if self.in_tier >= tier.attempts {
            self.in_tier = 0;
            self.cursor += 1;
            if self.cursor >= count {
                self.cursor = 0;
                self.first_pass_done = true;
            }
        }
        Some(step)
    }

    /// True once per cycle, the first time it is asked after the attempts
    /// reached `warning_threshold` (0 never warns).
    pub fn should_warn(&mut self) -> bool {
        if self.warned || self.warning_threshold == 0 || self.total < self.warning_threshold {
            return false;
        }
        self.warned = true;
        true
    }

    /// Attempts so far in this cycle (skipped fix steps included).
    pub fn attempts(&self) -> u32 {
        self.total
    }

    /// Whether the ladder has returned [`Step::Exhausted`].
    pub fn is_exhausted(&self) -> bool {
        self.exhausted
    }

    /// Most steps a cycle can take before `Exhausted`.
    pub fn max_steps(&self) -> u32 {
        let first_pass = self
            .tiers
            .iter()
            .fold(self.fix_attempts, |sum, t| sum.saturating_add(t.attempts));
        match &self.final_tier {
            None => first_pass,
            Some(tier) => first_pass
                .max(self.final_tier_threshold)
                .saturating_add(tier.attempts),
        }
    }

    /// A verified heal: back to the fix rung with every count cleared.
    pub fn reset(&mut self) {
        self.total = 0;
        self.fix_taken = 0;
        self.cursor = 0;
        self.in_tier = 0;
        self.first_pass_done = false;
        self.warned = false;
        self.exhausted = false;
        for tier in self.tiers.iter_mut().chain(self.final_tier.as_mut()) {
            tier.taken = 0;
        }
    }

    /// Whether `self` and `other` have the same rungs, whatever their
    /// positions: a cycle saved under another configuration restarts on a
    /// fresh ladder instead of resuming on rungs that moved.
    pub fn same_rungs(&self, other: &EscalationLadder) -> bool {
        let (mut a, mut b) = (self.clone(), other.clone());
        a.reset();
        b.reset();
        a == b
    }
}

#[cfg(test)]
mod tests;
