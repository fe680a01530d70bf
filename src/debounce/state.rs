//! The per-probe debounce state machine: a pure core (no actors, no I/O) that
//! turns a probe's observations and periodic ticks into issue effects.
//!
//! One [`ProbeDebounce`] per probe. It counts consecutive failing and healthy
//! observations, opens at most one issue at a time, decides whether each wake
//! goes out or is suppressed (flapping, maintenance, a dependency that is
//! down, the per-category window), schedules reminders with a doubling gap,
//! escalates on a worse observation or a new credential stage, and resolves
//! the issue after enough healthy observations.
//!
//! Memory is bounded: flap timestamps are capped at `flap_threshold + 1`, the
//! per-category last-wake map is pruned to the window and capped at
//! `MAX_CATEGORIES` (4), and an issue remembers at most `MAX_STAGES` (16) stages.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::messages::Health;
use crate::settings::{DebounceSettings, Severity};

#[cfg(test)]
mod tests;

/// Most categories whose last wake is remembered; a probe only has two (its
/// unhealthy and degraded category), a few more cover a settings reload.
const MAX_CATEGORIES: usize = 4;

/// Most stages one issue remembers as alerted; credential thresholds are a
/// handful, this only guards against an unbounded stage stream.
const MAX_STAGES: usize = 16;

/// Why a wake may be held back, as the caller knows at the time of a step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// Name of a dependency that is down; wakes of dependants are suppressed.
    pub dependency_down: Option<String>,
    /// Name of an active maintenance window covering the probe's component.
    pub maintenance: Option<String>,
}

/// One input to [`ProbeDebounce::step`].
#[derive(Debug, Clone)]
pub enum Input {
    /// A probe's verdict.
    Observed {
        /// The verdict; `Degraded` and `Unhealthy` count as failing.
        status: Health,
        /// Severity of the issue when unhealthy; degraded is capped at `Warning`.
        severity_if_unhealthy: Severity,
        /// Category of the issue when unhealthy.
        category: String,
        /// Category of the issue when degraded.
        degraded_category: String,
        /// Credential threshold reached (e.g. `"7d"`), if the probe has stages.
        stage: Option<String>,
        /// Suppression context at the time of the observation.
        ctx: Context,
    },
    /// Time passes: reminders, resumption and flap settling. Not an observation.
    Tick {
        /// Suppression context now.
        ctx: Context,
    },
}

pub use crate::messages::WakeKind;

/// Why a wake was suppressed.
#[derive(Debug, Clone, PartialEq)]
pub enum Suppression {
    /// A wake for the same category happened less than `window` ago.
    Window {
        /// Time left until the window ends.
        remaining: Duration,
    },
    /// The named dependency is down.
    Dependency(String),
    /// The named maintenance window is active.
    Maintenance(String),
    /// The probe is flapping.
    Flapping,
}

impl Suppression {
    /// Same reason, ignoring how much of a window remains.
    fn same_reason(&self, other: &Suppression) -> bool {
        match (self, other) {
            (Suppression::Window { .. }, Suppression::Window { .. }) => true,
            _ => self == other,
        }
    }
}

/// What a step asks the caller to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Wake an operator.
    Wake {
        /// Why.
        kind: WakeKind,
        /// The issue's category (the probe's unhealthy category for `Flapping`).
        category: String,
        /// The issue's severity.
        severity: Severity,
        /// Consecutive failing observations at the time.
        consecutive_failures: u32,
        /// The issue's stage, if any.
        stage: Option<String>,
        /// Reminder number (1, 2, ...) for `Reminder`; 0 otherwise.
        reminder: u32,
    },
    /// A wake that was due but held back; recorded, nobody woken.
    Suppressed {
        /// The wake that was held back.
        kind: WakeKind,
        /// The issue's category.
        category: String,
        /// The issue's severity.
        severity: Severity,
        /// Why it was held back.
        reason: Suppression,
        /// Wakes suppressed so far for this issue, this one included.
        suppressed_count: u64,
    },
    /// The open issue closed after enough healthy observations.
    Resolved {
        /// The issue's category.
        category: String,
        /// The issue's severity.
        severity: Severity,
        /// How long it was open.
        open_for: Duration,
        /// Whether anyone was woken for it.
        woken: bool,
    },
    /// The probe stopped flapping.
    FlappingSettled {
        /// The probe's unhealthy category.
        category: String,
    },
}

/// The issue a probe currently has open.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenIssue {
    /// Category (may change on escalation).
    pub category: String,
    /// Severity (only ever rises while open).
    pub severity: Severity,
    /// When it opened (or was restored).
    pub opened_at: Instant,
    /// Whether an operator was woken for it.
    pub woken: bool,
    /// The latest stage alerted on, if any.
    pub stage: Option<String>,
    /// Wakes suppressed for this issue so far.
    pub suppressed_count: u64,
    /// Opened from a degraded observation: an unhealthy one is worse even at
    /// equal severity.
    degraded: bool,
    /// Every stage already alerted (or suppressed) in this issue.
    alerted_stages: Vec<String>,
    /// The wake held back and why, while not woken; a new `Suppressed` row
    /// is only emitted when the reason changes.
    held: Option<(WakeKind, Suppression)>,
    /// Reminders sent (or suppressed) since the last wake.
    reminders: u32,
    /// When the next reminder is due, while woken.
    next_reminder: Option<Instant>,
}

/// An issue that was open when Warden last stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoredIssue {
    /// Category.
    pub category: String,
    /// Severity.
    pub severity: Severity,
    /// Latest stage alerted, if any.
    pub stage: Option<String>,
    /// Whether an operator had been woken.
    pub woken: bool,
}

/// Debounce state for one probe.
#[derive(Debug, Clone)]
pub struct ProbeDebounce {
    /// Thresholds and windows; replaced by [`ProbeDebounce::set_settings`].
    settings: DebounceSettings,
    /// Failing observations in a row.
    consecutive_failures: u32,
    /// Healthy observations in a row.
    consecutive_healthy: u32,
    /// Whether the previous observation failed, to detect transitions.
    last_failing: Option<bool>,
    /// Times of healthy/failing transitions within `flap_window`.
    transitions: VecDeque<Instant>,
    /// Whether the probe is flapping.
    flapping: bool,
    /// The probe's unhealthy category and severity, for `Flapping` effects.
    unhealthy: Option<(String, Severity)>,
    /// Last Fired/Resumed/Escalated wake per category, within `window`.
    last_wake: BTreeMap<String, Instant>,
    /// The open issue, if any.
    issue: Option<OpenIssue>,
}

impl ProbeDebounce {
    /// A probe with no history.
    pub fn new(settings: DebounceSettings) -> Self {
        Self {
            settings,
            consecutive_failures: 0,
            consecutive_healthy: 0,
            last_failing: None,
            transitions: VecDeque::new(),
            flapping: false,
            unhealthy: None,
            last_wake: BTreeMap::new(),
            issue: None,
        }
    }

    /// New thresholds; they apply from the next step, counters are kept.
    pub fn set_settings(&mut self, settings: DebounceSettings) {
        self.settings = settings;
        self.cap_transitions();
    }

    /// The open issue, if any.
    pub fn open_issue(&self) -> Option<&OpenIssue> {
        self.issue.as_ref()
    }

    /// Reinstates an issue that was open when Warden last stopped, so the
    /// outage is not fired again and one recovery run resolves it.
    pub fn restore(&mut self, issue: RestoredIssue, now: Instant) {
        let RestoredIssue {
            category,
            severity,
            stage,
            woken,
        } = issue;
        self.consecutive_failures = self.settings.failure_threshold;
        self.consecutive_healthy = 0;
        self.last_failing = Some(true);
        if woken {
            self.record_wake(&category, now);
        }
        self.issue = Some(OpenIssue {
            degraded: false,
            alerted_stages: stage.iter().cloned().collect(),
            held: None,
            reminders: 0,
            next_reminder: woken.then(|| now + self.settings.remind_after),
            category,
            severity,
            opened_at: now,
            woken,
            stage,
            suppressed_count: 0,
        });
    }

    /// Advances the machine by one input at `now`.
    pub fn step(&mut self, input: Input, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        self.prune(now);
        match input {
            Input::Observed {
                status,
                severity_if_unhealthy,
                category,
                degraded_category,
                stage,
                ctx,
            } => {
                let failing = status.is_failing();
                self.unhealthy = Some((category.clone(), severity_if_unhealthy));
                self.count(failing, now);
                self.flap(&ctx, &mut effects);
                if failing {
                    let observed = match status {
                        Health::Unhealthy => Observed {
                            category,
                            severity: severity_if_unhealthy,
                            degraded: false,
                            stage,
                        },
                        Health::Degraded | Health::Healthy => Observed {
                            category: degraded_category,
                            severity: severity_if_unhealthy.min(Severity::Warning),
                            degraded: true,
                            stage,
                        },
                    };
                    self.on_failing(observed, &ctx, now, &mut effects);
                } else {
                    self.on_healthy(now, &mut effects);
                }
                self.follow_up(&ctx, now, &mut effects);
            }
            Input::Tick { ctx } => {
                self.flap(&ctx, &mut effects);
                self.follow_up(&ctx, now, &mut effects);
            }
        }
        effects
    }

    /// Updates counters and transition times for one observation.
    fn count(&mut self, failing: bool, now: Instant) {
        if failing {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.consecutive_healthy = 0;
        } else {
            self.consecutive_healthy = self.consecutive_healthy.saturating_add(1);
            self.consecutive_failures = 0;
        }
        if self
            .last_failing
            .is_some_and(|previous| previous != failing)
        {
            self.transitions.push_back(now);
            self.cap_transitions();
        }
        self.last_failing = Some(failing);
    }

    /// Enters or leaves the flapping state.
    fn flap(&mut self, ctx: &Context, effects: &mut Vec<Effect>) {
        let count = self.transitions.len();
        let threshold = usize::try_from(self.settings.flap_threshold).unwrap_or(usize::MAX);
        let (category, severity) = self
            .unhealthy
            .clone()
            .unwrap_or_else(|| (String::new(), Severity::default()));
        if self.flapping {
            if count <= threshold / 2 {
                self.flapping = false;
                effects.push(Effect::FlappingSettled { category });
            }
        } else if count > threshold {
            self.flapping = true;
            match &ctx.maintenance {
                Some(name) => {
                    let suppressed_count = self.bump_suppressed();
                    effects.push(Effect::Suppressed {
                        kind: WakeKind::Flapping,
                        category,
                        severity,
                        reason: Suppression::Maintenance(name.clone()),
                        suppressed_count,
                    });
                }
                None => effects.push(Effect::Wake {
                    kind: WakeKind::Flapping,
                    category,
                    severity,
                    consecutive_failures: self.consecutive_failures,
                    stage: None,
                    reminder: 0,
                }),
            }
        }
    }

    /// A failing observation: open, escalate or keep the issue.
    fn on_failing(
        &mut self,
        observed: Observed,
        ctx: &Context,
        now: Instant,
        effects: &mut Vec<Effect>,
    ) {
        let failures = self.consecutive_failures;
        let Some(issue) = self.issue.as_mut() else {
            if failures >= self.settings.failure_threshold {
                self.open(observed, ctx, now, effects);
            }
            return;
        };
        let worse = !observed.degraded
            && (observed.severity > issue.severity
                || (issue.degraded && observed.severity == issue.severity));
        if worse {
            issue.category = observed.category;
            issue.severity = observed.severity;
            issue.degraded = false;
        }
        let new_stage = observed
            .stage
            .filter(|stage| !issue.alerted_stages.contains(stage));
        if let Some(stage) = &new_stage {
            if issue.alerted_stages.len() >= MAX_STAGES {
                issue.alerted_stages.remove(0);
            }
            issue.alerted_stages.push(stage.clone());
            issue.stage = Some(stage.clone());
        }
        if worse || new_stage.is_some() {
            // Escalations bypass the window but not the other suppressions.
            match self.suppression(ctx, now, false) {
                Some(reason) => self.suppress(WakeKind::Escalated, reason, effects),
                None => self.wake(WakeKind::Escalated, now, effects),
            }
        }
    }

    /// Opens an issue and decides its first wake.
    fn open(&mut self, observed: Observed, ctx: &Context, now: Instant, effects: &mut Vec<Effect>) {
        let Observed {
            category,
            severity,
            degraded,
            stage,
        } = observed;
        self.issue = Some(OpenIssue {
            category,
            severity,
            opened_at: now,
            woken: false,
            alerted_stages: stage.iter().cloned().collect(),
            stage,
            suppressed_count: 0,
            degraded,
            held: None,
            reminders: 0,
            next_reminder: None,
        });
        match self.suppression(ctx, now, true) {
            Some(reason) => self.suppress(WakeKind::Fired, reason, effects),
            None => self.wake(WakeKind::Fired, now, effects),
        }
    }

    /// A healthy observation: resolve the issue after enough of them.
    fn on_healthy(&mut self, now: Instant, effects: &mut Vec<Effect>) {
        if self.consecutive_healthy < self.settings.recovery_threshold {
            return;
        }
        if let Some(issue) = self.issue.take() {
            effects.push(Effect::Resolved {
                category: issue.category,
                severity: issue.severity,
                open_for: now.saturating_duration_since(issue.opened_at),
                woken: issue.woken,
            });
        }
    }

    /// Resumption and reminders for an issue that is open and still failing.
    fn follow_up(&mut self, ctx: &Context, now: Instant, effects: &mut Vec<Effect>) {
        if self.consecutive_failures == 0 {
            return;
        }
        let Some(issue) = &self.issue else { return };
        if !issue.woken {
            let held = issue.held.clone();
            match self.suppression(ctx, now, true) {
                None => self.wake(WakeKind::Resumed, now, effects),
                Some(reason) => {
                    if held_changed(held.as_ref(), &reason) {
                        let kind = held.map_or(WakeKind::Fired, |(kind, _)| kind);
                        self.suppress(kind, reason, effects);
                    }
                }
            }
            return;
        }
        if self.flapping || issue.next_reminder.is_none_or(|due| now < due) {
            return;
        }
        let reminder = issue.reminders.saturating_add(1);
        let gap = self.reminder_gap(reminder);
        let reason = ctx
            .maintenance
            .clone()
            .map(Suppression::Maintenance)
            .or_else(|| ctx.dependency_down.clone().map(Suppression::Dependency));
        if let Some(issue) = self.issue.as_mut() {
            issue.reminders = reminder;
            // Scheduled from now, not from the due time, so missed ticks
            // never cause a burst.
            issue.next_reminder = Some(now + gap);
        }
        match reason {
            Some(reason) => self.suppress(WakeKind::Reminder, reason, effects),
            None => {
                if let Some(issue) = &self.issue {
                    effects.push(Effect::Wake {
                        kind: WakeKind::Reminder,
                        category: issue.category.clone(),
                        severity: issue.severity,
                        consecutive_failures: self.consecutive_failures,
                        stage: issue.stage.clone(),
                        reminder,
                    });
                }
            }
        }
    }

    /// The gap after reminder `n` (1-based): `remind_after * 2^n`, capped.
    fn reminder_gap(&self, n: u32) -> Duration {
        let max = self.settings.remind_max;
        2u32.checked_pow(n)
            .and_then(|factor| self.settings.remind_after.checked_mul(factor))
            .map_or(max, |gap| gap.min(max))
    }

    /// What holds a wake of the open issue back now, if anything.
    fn suppression(&self, ctx: &Context, now: Instant, window: bool) -> Option<Suppression> {
        if self.flapping {
            return Some(Suppression::Flapping);
        }
        if let Some(name) = &ctx.maintenance {
            return Some(Suppression::Maintenance(name.clone()));
        }
        if let Some(dependency) = &ctx.dependency_down {
            return Some(Suppression::Dependency(dependency.clone()));
        }
        let issue = self.issue.as_ref()?;
        let bypass = self.settings.bypass_critical && issue.severity == Severity::Critical;
        if !window || bypass {
            return None;
        }
        let last = self.last_wake.get(&issue.category)?;
        let elapsed = now.saturating_duration_since(*last);
        (elapsed < self.settings.window).then(|| Suppression::Window {
            remaining: self.settings.window - elapsed,
        })
    }

    /// Emits a wake for the open issue and marks it woken.
    fn wake(&mut self, kind: WakeKind, now: Instant, effects: &mut Vec<Effect>) {
        let remind_after = self.settings.remind_after;
        let failures = self.consecutive_failures;
        let Some(issue) = self.issue.as_mut() else {
            return;
        };
        issue.woken = true;
        issue.held = None;
        issue.reminders = 0;
        issue.next_reminder = Some(now + remind_after);
        effects.push(Effect::Wake {
            kind,
            category: issue.category.clone(),
            severity: issue.severity,
            consecutive_failures: failures,
            stage: issue.stage.clone(),
            reminder: 0,
        });
        let category = issue.category.clone();
        self.record_wake(&category, now);
    }

    /// Emits a suppressed wake for the open issue.
    fn suppress(&mut self, kind: WakeKind, reason: Suppression, effects: &mut Vec<Effect>) {
        let Some(issue) = self.issue.as_mut() else {
            return;
        };
        issue.suppressed_count = issue.suppressed_count.saturating_add(1);
        if !issue.woken {
            issue.held = Some((kind, reason.clone()));
        }
        effects.push(Effect::Suppressed {
            kind,
            category: issue.category.clone(),
            severity: issue.severity,
            reason,
            suppressed_count: issue.suppressed_count,
        });
    }

    /// Counts a suppressed wake against the open issue, if any.
    fn bump_suppressed(&mut self) -> u64 {
        match self.issue.as_mut() {
            Some(issue) => {
                issue.suppressed_count = issue.suppressed_count.saturating_add(1);
                issue.suppressed_count
            }
            None => 1,
        }
    }

    /// Remembers a wake for `category`, keeping the map bounded.
    fn record_wake(&mut self, category: &str, now: Instant) {
        self.last_wake.insert(category.to_owned(), now);
        while self.last_wake.len() > MAX_CATEGORIES {
            let oldest = self
                .last_wake
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(category, _)| category.clone());
            match oldest {
                Some(category) => self.last_wake.remove(&category),
                None => break,
            };
        }
    }

    /// Forgets transitions and wakes older than their windows.
    fn prune(&mut self, now: Instant) {
        let flap_window = self.settings.flap_window;
        while self
            .transitions
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= flap_window)
        {
            self.transitions.pop_front();
        }
        let window = self.settings.window;
        self.last_wake
            .retain(|_, at| now.saturating_duration_since(*at) < window);
    }

    /// Keeps at most `flap_threshold + 1` transitions: enough to tell flapping.
    fn cap_transitions(&mut self) {
        let cap = usize::try_from(self.settings.flap_threshold)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        while self.transitions.len() > cap {
            self.transitions.pop_front();
        }
    }

    /// Sizes of the bounded collections, for tests.
    #[cfg(test)]
    fn footprint(&self) -> (usize, usize, usize) {
        let stages = self
            .issue
            .as_ref()
            .map_or(0, |issue| issue.alerted_stages.len());
        (self.transitions.len(), self.last_wake.len(), stages)
    }
}

/// A failing observation, mapped to the issue it would open.
struct Observed {
    category: String,
    severity: Severity,
    degraded: bool,
    stage: Option<String>,
}

/// Whether a pending issue's hold changed enough to record a new row.
fn held_changed(held: Option<&(WakeKind, Suppression)>, reason: &Suppression) -> bool {
    held.is_none_or(|(_, previous)| !previous.same_reason(reason))
}
