//! The budget of an outside engine: calls in a sliding hour and dollars in
//! the current UTC day. A pure core: every method takes the time it acts at,
//! so tests drive it without a clock.

use std::collections::VecDeque;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// How long the call window reaches back.
const HOUR: SignedDuration = SignedDuration::from_hours(1);

/// Calls and spending against the limits, for the API and the boot log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetSnapshot {
    /// Engine calls in the last hour (including calls still running).
    pub calls_last_hour: u32,
    /// The limit on calls per sliding hour (`max_per_hour`).
    pub max_per_hour: u32,
    /// US dollars spent on engine calls since midnight UTC.
    pub spent_today_usd: f64,
    /// The limit on dollars per UTC day (`daily_budget_usd`).
    pub daily_budget_usd: f64,
}

/// The budget's state.
#[derive(Debug)]
pub(crate) struct Budget {
    max_per_hour: u32,
    daily_budget_usd: f64,
    /// Start times of calls in the last hour, oldest first. Never longer
    /// than `max_per_hour`: a full window refuses, and seeding drops the oldest.
    calls: VecDeque<Timestamp>,
    /// The UTC day `spent` belongs to; spending of another day is zero.
    day: Option<Date>,
    spent: f64,
}

impl Budget {
    pub(crate) fn new(max_per_hour: u32, daily_budget_usd: f64) -> Self {
        Self {
            max_per_hour,
            daily_budget_usd,
            calls: VecDeque::new(),
            day: None,
            spent: 0.0,
        }
    }

    /// Takes one call slot at `now`, or says why the budget refuses.
    /// The returned time identifies the slot for [`Budget::release`].
    pub(crate) fn reserve(&mut self, now: Timestamp) -> Result<Timestamp, String> {
        self.expire(now);
        if self.calls.len() >= self.max_per_hour as usize {
            return Err(format!(
                "over budget: {} investigations in the last hour",
                self.calls.len()
            ));
        }
        let spent = self.spent_on(now);
        if spent >= self.daily_budget_usd {
            return Err(format!("over budget: ${spent:.2} spent today"));
        }
        self.calls.push_back(now);
        Ok(now)
    }

    /// Gives back a slot taken by [`Budget::reserve`] whose call fell back.
    pub(crate) fn release(&mut self, reserved: Timestamp) {
        if let Some(index) = self.calls.iter().rposition(|at| *at == reserved) {
            self.calls.remove(index);
        }
    }

    /// Records what a successful call cost.
    pub(crate) fn spend(&mut self, at: Timestamp, cost_usd: f64) {
        if !cost_usd.is_finite() || cost_usd <= 0.0 {
            return;
        }
        let day = utc_day(at);
        match self.day {
            Some(current) if current == day => self.spent += cost_usd,
            Some(current) if current > day => {} // an older day no longer counts
            _ => {
                self.day = Some(day);
                self.spent = cost_usd;
            }
        }
    }

    /// Replays a past call (its time and cost) so a restart keeps the budget.
    pub(crate) fn seed(&mut self, at: Timestamp, cost_usd: f64) {
        let index = self.calls.partition_point(|call| *call <= at);
        self.calls.insert(index, at);
        while self.calls.len() > self.max_per_hour as usize {
            self.calls.pop_front();
        }
        self.spend(at, cost_usd);
    }

    pub(crate) fn snapshot(&mut self, now: Timestamp) -> BudgetSnapshot {
        self.expire(now);
        BudgetSnapshot {
            calls_last_hour: u32::try_from(self.calls.len()).unwrap_or(u32::MAX),
            max_per_hour: self.max_per_hour,
            spent_today_usd: self.spent_on(now),
            daily_budget_usd: self.daily_budget_usd,
        }
    }

    fn expire(&mut self, now: Timestamp) {
        let cutoff = now.checked_sub(HOUR).unwrap_or(Timestamp::MIN);
        while self.calls.front().is_some_and(|at| *at <= cutoff) {
            self.calls.pop_front();
        }
    }

    fn spent_on(&self, now: Timestamp) -> f64 {
        if self.day == Some(utc_day(now)) {
            self.spent
        } else {
            0.0
        }
    }
}

fn utc_day(at: Timestamp) -> Date {
    at.to_zoned(jiff::tz::TimeZone::UTC).date()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn the_hour_slides() {
        let mut budget = Budget::new(2, 5.0);
        budget.reserve(at("2026-01-01T10:00:00Z")).unwrap();
        budget.reserve(at("2026-01-01T10:30:00Z")).unwrap();
        let refused = budget.reserve(at("2026-01-01T10:59:59Z")).unwrap_err();
        assert_eq!(refused, "over budget: 2 investigations in the last hour");
        budget.reserve(at("2026-01-01T11:00:00Z")).unwrap();
        assert_eq!(budget.calls.len(), 2);
    }

    #[test]
    fn released_calls_count_nothing() {
        let mut budget = Budget::new(1, 5.0);
        let slot = budget.reserve(at("2026-01-01T10:00:00Z")).unwrap();
        budget.release(slot);
        budget.reserve(at("2026-01-01T10:00:01Z")).unwrap();
    }

    #[test]
    fn the_day_resets_at_utc_midnight() {
        let mut budget = Budget::new(100, 1.0);
        budget.spend(at("2026-01-01T23:00:00Z"), 1.5);
        let refused = budget.reserve(at("2026-01-01T23:30:00Z")).unwrap_err();
        assert_eq!(refused, "over budget: $1.50 spent today");
        budget.reserve(at("2026-01-02T00:00:00Z")).unwrap();
        let snapshot = budget.snapshot(at("2026-01-02T00:00:01Z"));
        assert_eq!(snapshot.spent_today_usd, 0.0);
    }

    #[test]
    fn seeding_is_bounded_and_ignores_older_days() {
        let mut budget = Budget::new(3, 5.0);
        for minute in 0..10 {
            budget.seed(at(&format!("2026-01-01T10:{minute:02}:00Z")), 0.5);
        }
        assert_eq!(budget.calls.len(), 3);
        budget.seed(at("2025-12-31T10:00:00Z"), 9.0);
        assert_eq!(budget.calls.len(), 3);
        let snapshot = budget.snapshot(at("2026-01-01T10:10:00Z"));
        assert_eq!(snapshot.calls_last_hour, 3);
        assert_eq!(snapshot.spent_today_usd, 5.0);
    }
}
