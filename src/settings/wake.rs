//! `[wake]`: how the wake consumer takes issue rows from the audit log to the
//! investigator and the notifiers.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Wake consumer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WakeSettings {
    /// Events for different issues handled at once (events of one issue are
    /// always handled in order). Default 4.
    pub max_concurrency: usize,
    /// Most events read from the log and not yet finished; past it the
    /// consumer stops reading and the log holds the rest. Default 4096.
    pub max_in_flight: usize,
    /// How often notices a notifier could not take (after its own retries)
    /// are offered again. Default `1m`.
    #[serde(with = "humantime_serde")]
    pub redeliver_every: Duration,
    /// Observations of the probe kept and given to the investigator. Default 20.
    pub history: usize,
}

impl Default for WakeSettings {
    fn default() -> Self {
        Self {
            max_concurrency: 4,
            max_in_flight: 4096,
            redeliver_every: Duration::from_secs(60),
            history: 20,
        }
    }
}
