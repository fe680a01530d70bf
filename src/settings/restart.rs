//! The restart policy both restart ladders share: Warden's own supervisors
//! (`[supervision]`, flat keys) and each managed process
//! (`[components.restart]`). Same keys, different defaults, so there is no
//! `Default`: [`RestartSettings::supervision`] and
//! [`RestartSettings::managed`] are the two documented sets, and a table
//! that sets only some keys keeps the rest from its own set.
//!
//! Deserialisation is by hand rather than `#[serde(flatten)]`: flatten would
//! buffer the values, which loses the key path in problems and the string to
//! number conversion of `WARDEN__…` environment overrides, and cannot refuse
//! unknown keys.

use std::fmt;
use std::time::Duration;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserializer, Serialize};

/// Restart intensity and backoff: the first restart after a stable run is
/// immediate, later ones back off exponentially with jitter, and more than
/// `max_restarts` within `period` gives up (a supervisor escalates to its
/// parent, a managed process becomes FATAL).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestartSettings {
    /// Restarts allowed within `period`.
    pub max_restarts: u32,
    /// The sliding window `max_restarts` is counted in.
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    /// Delay before the second consecutive restart; doubles after that.
    #[serde(with = "humantime_serde")]
    pub backoff_min: Duration,
    /// Upper bound of the restart delay.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Random spread applied to each delay, as a fraction (0.0–1.0).
    pub backoff_jitter: f64,
    /// Time without failures after which the backoff resets.
    #[serde(with = "humantime_serde")]
    pub stable_after: Duration,
}

impl RestartSettings {
    /// The keys, in the order serde lists them.
    pub(crate) const FIELDS: &'static [&'static str] = &[
        "max_restarts",
        "period",
        "backoff_min",
        "backoff_max",
        "backoff_jitter",
        "stable_after",
    ];

    /// `[supervision]` defaults: 3 within `5s`, `10ms` to `1s`, jitter 0.2,
    /// stable after `5s`. Warden's actors restart in milliseconds, so a
    /// crash loop must melt down fast.
    pub fn supervision() -> Self {
        Self {
            max_restarts: 3,
            period: Duration::from_secs(5),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            backoff_jitter: 0.2,
            stable_after: Duration::from_secs(5),
        }
    }

    /// `components[].restart` defaults: 5 within `60s`, `200ms` to `30s`,
    /// jitter 0.2, stable after `30s`. A service takes seconds to start and
    /// deserves more patience before it is FATAL.
    pub fn managed() -> Self {
        Self {
            max_restarts: 5,
            period: Duration::from_secs(60),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            backoff_jitter: 0.2,
            stable_after: Duration::from_secs(30),
        }
    }

    /// Reads the value of `key` into `self`; `false` when `key` is not one of
    /// [`Self::FIELDS`] (the value is then still unread).
    pub(crate) fn read_field<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        match key {
            "max_restarts" => self.max_restarts = map.next_value()?,
            "period" => self.period = duration(map)?,
            "backoff_min" => self.backoff_min = duration(map)?,
            "backoff_max" => self.backoff_max = duration(map)?,
            "backoff_jitter" => self.backoff_jitter = map.next_value()?,
            "stable_after" => self.stable_after = duration(map)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A `restart` table; keys it does not set keep their value in `base`.
    fn deserialize_over<'de, D: Deserializer<'de>>(
        base: Self,
        deserializer: D,
    ) -> Result<Self, D::Error> {
        deserializer.deserialize_struct(
            "RestartSettings",
            Self::FIELDS,
            Over {
                base,
                expecting: "struct RestartSettings",
            },
        )
    }
}

/// `deserialize_with` for `components[].restart`: unset keys take
/// [`RestartSettings::managed`].
pub(crate) fn managed<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<RestartSettings, D::Error> {
    RestartSettings::deserialize_over(RestartSettings::managed(), deserializer)
}

pub(crate) fn duration<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Duration, A::Error> {
    Ok(map
        .next_value::<humantime_serde::Serde<Duration>>()?
        .into_inner())
}

struct Over {
    base: RestartSettings,
    expecting: &'static str,
}

impl<'de> Visitor<'de> for Over {
    type Value = RestartSettings;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.expecting)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RestartSettings, A::Error> {
        let mut settings = self.base;
        while let Some(key) = map.next_key::<String>()? {
            if !settings.read_field(&key, &mut map)? {
                return Err(de::Error::unknown_field(&key, RestartSettings::FIELDS));
            }
        }
        Ok(settings)
    }
}
