//! `[supervision]`: the restart policy of Warden's own actors, i.e. the first
//! rung of the heal-then-escalate ladder applied to Warden itself.

use std::fmt;
use std::time::Duration;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::RestartSettings;
use super::restart::duration;

/// Restart intensity and backoff for every supervisor in Warden's tree.
///
/// The policy's keys sit directly in `[supervision]` (`supervision.period`),
/// next to `child_shutdown_timeout`. Defaults: [`RestartSettings::supervision`]
/// and `child_shutdown_timeout = "5s"`. `max_restarts = 0` is allowed here:
/// any failure escalates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SupervisionSettings {
    /// Restarts, window and backoff of every supervisor.
    #[serde(flatten)]
    pub restart: RestartSettings,
    /// How long a child may take to stop gracefully before it is killed. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub child_shutdown_timeout: Duration,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        Self {
            restart: RestartSettings::supervision(),
            child_shutdown_timeout: Duration::from_secs(5),
        }
    }
}

/// Every key of `[supervision]`, for the unknown-key message.
const FIELDS: &[&str] = &[
    "max_restarts",
    "period",
    "backoff_min",
    "backoff_max",
    "backoff_jitter",
    "stable_after",
    "child_shutdown_timeout",
];

impl<'de> Deserialize<'de> for SupervisionSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct("SupervisionSettings", FIELDS, SupervisionVisitor)
    }
}

struct SupervisionVisitor;

impl<'de> Visitor<'de> for SupervisionVisitor {
    type Value = SupervisionSettings;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("struct SupervisionSettings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SupervisionSettings, A::Error> {
        let mut settings = SupervisionSettings::default();
        while let Some(key) = map.next_key::<String>()? {
            if key == "child_shutdown_timeout" {
                settings.child_shutdown_timeout = duration(&mut map)?;
            } else if !settings.restart.read_field(&key, &mut map)? {
                return Err(de::Error::unknown_field(&key, FIELDS));
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_restart_key_is_a_supervision_key() {
        for key in RestartSettings::FIELDS {
            assert!(FIELDS.contains(key), "{key}");
        }
        assert_eq!(FIELDS.len(), RestartSettings::FIELDS.len() + 1);
    }
}
