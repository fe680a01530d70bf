//! `[supervision]`: the restart policy of Warden's own actors, i.e. the first
//! rung of the heal-then-escalate ladder applied to Warden itself.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Restart intensity and backoff for every supervisor in Warden's tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionSettings {
    /// Restarts allowed within `period` before a supervisor gives up and
    /// escalates to its parent (meltdown). Default 3.
    pub max_restarts: u32,
    /// The sliding window `max_restarts` is counted in. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    /// Delay before the second consecutive restart; doubles after that. The
    /// first restart after a stable period is immediate. Default `10ms`.
    #[serde(with = "humantime_serde")]
    pub backoff_min: Duration,
    /// Upper bound of the restart delay. Default `1s`.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Random spread applied to each delay, as a fraction (0.0–1.0). Default 0.2.
    pub backoff_jitter: f64,
    /// Time without failures after which backoff resets. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub stable_after: Duration,
    /// How long a child may take to stop gracefully before it is killed. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub child_shutdown_timeout: Duration,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        Self {
            max_restarts: 3,
            period: Duration::from_secs(5),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            backoff_jitter: 0.2,
            stable_after: Duration::from_secs(5),
            child_shutdown_timeout: Duration::from_secs(5),
        }
    }
}
