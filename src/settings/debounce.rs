//! `[debounce]`: when failing observations become an issue, and how often an
//! operator is woken for it. Every key can be overridden per probe with a
//! `debounce = { ... }` table on the probe.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Global debounce defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DebounceSettings {
    /// Consecutive failing observations before an issue fires. Default 3.
    pub failure_threshold: u32,
    /// Consecutive healthy observations before an open issue resolves. Default 2.
    pub recovery_threshold: u32,
    /// After a wake for (probe, category), further wakes for the same key are
    /// suppressed (counted, not lost) for this long. Default `10m`.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Let critical issues through the window. Default false.
    pub bypass_critical: bool,
    /// First reminder while an issue stays open; each later one waits twice as
    /// long, up to `remind_max`. Default `30m`.
    #[serde(with = "humantime_serde")]
    pub remind_after: Duration,
    /// Longest gap between two reminders. Default `4h`.
    #[serde(with = "humantime_serde")]
    pub remind_max: Duration,
    /// More than this many healthy/failing changes within `flap_window` marks
    /// the key flapping (one `probe.flapping` wake, then quiet until it settles). Default 5.
    pub flap_threshold: u32,
    /// The window flapping is counted in. Default `10m`.
    #[serde(with = "humantime_serde")]
    pub flap_window: Duration,
}

impl Default for DebounceSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 3,
            recovery_threshold: 2,
            window: Duration::from_secs(600),
            bypass_critical: false,
            remind_after: Duration::from_secs(1800),
            remind_max: Duration::from_secs(4 * 3600),
            flap_threshold: 5,
            flap_window: Duration::from_secs(600),
        }
    }
}

/// Per-probe overrides of [`DebounceSettings`]; unset keys take the global value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DebounceOverride {
    /// Overrides `debounce.failure_threshold`.
    pub failure_threshold: Option<u32>,
    /// Overrides `debounce.recovery_threshold`.
    pub recovery_threshold: Option<u32>,
    /// Overrides `debounce.window`.
    #[serde(with = "humantime_serde")]
    pub window: Option<Duration>,
    /// Overrides `debounce.bypass_critical`.
    pub bypass_critical: Option<bool>,
    /// Overrides `debounce.remind_after`.
    #[serde(with = "humantime_serde")]
    pub remind_after: Option<Duration>,
    /// Overrides `debounce.remind_max`.
    #[serde(with = "humantime_serde")]
    pub remind_max: Option<Duration>,
    /// Overrides `debounce.flap_threshold`.
    pub flap_threshold: Option<u32>,
    /// Overrides `debounce.flap_window`.
    #[serde(with = "humantime_serde")]
    pub flap_window: Option<Duration>,
}

impl DebounceSettings {
    /// The effective settings for a probe with `overrides`.
    pub fn with(&self, overrides: &DebounceOverride) -> DebounceSettings {
        DebounceSettings {
            failure_threshold: overrides
                .failure_threshold
                .unwrap_or(self.failure_threshold),
            recovery_threshold: overrides
                .recovery_threshold
                .unwrap_or(self.recovery_threshold),
            window: overrides.window.unwrap_or(self.window),
            bypass_critical: overrides.bypass_critical.unwrap_or(self.bypass_critical),
            remind_after: overrides.remind_after.unwrap_or(self.remind_after),
            remind_max: overrides.remind_max.unwrap_or(self.remind_max),
            flap_threshold: overrides.flap_threshold.unwrap_or(self.flap_threshold),
            flap_window: overrides.flap_window.unwrap_or(self.flap_window),
        }
    }
}
