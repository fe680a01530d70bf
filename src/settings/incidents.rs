//! `[incidents]`: how the incident commander rates, joins, reminds about,
//! freezes for and resolves incidents.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::messages::Sev;

/// Incident commander settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentSettings {
    /// Healthy observations in a row every affected probe needs before an
    /// incident counts as over (auto-resolve, and `resolve` without `force`).
    /// Default 3.
    pub resolve_after_healthy_cycles: u32,
    /// How often an update notice goes out per severity while an incident is open.
    pub cadence: CadenceSettings,
    /// Incidents at this severity or worse freeze automation (fix attempts,
    /// tier calls) on their components until mitigated. `SEV0`..`SEV4` or
    /// `none`. Default `SEV1`.
    #[serde(with = "freeze_level")]
    pub freeze_automation_at: Option<Sev>,
    /// How long after an incident opens an issue on a component related by
    /// `depends_on` still joins it instead of opening its own. Default `30m`.
    #[serde(with = "humantime_serde")]
    pub related_window: Duration,
    /// Most audit rows copied into an incident's evidence. Default 200.
    pub evidence_rows: usize,
    /// Resolved incidents' folders (record, timeline, evidence, postmortem)
    /// are deleted this long after resolution; open and mitigated ones are
    /// always kept. At least `1d`, so an id (dated by the day it opened) is
    /// never handed out again. Default `none`: kept forever.
    #[serde(with = "optional_duration")]
    pub retain_for: Option<Duration>,
}

impl Default for IncidentSettings {
    fn default() -> Self {
        Self {
            resolve_after_healthy_cycles: 3,
            cadence: CadenceSettings::default(),
            freeze_automation_at: Some(Sev::Sev1),
            related_window: Duration::from_secs(30 * 60),
            evidence_rows: 200,
            retain_for: None,
        }
    }
}

/// Update cadence per severity; `none` sends no scheduled updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CadenceSettings {
    /// SEV0 updates. Default `15m`.
    #[serde(with = "optional_duration")]
    pub sev0: Option<Duration>,
    /// SEV1 updates. Default `15m`.
    #[serde(with = "optional_duration")]
    pub sev1: Option<Duration>,
    /// SEV2 updates. Default `30m`.
    #[serde(with = "optional_duration")]
    pub sev2: Option<Duration>,
    /// SEV3 updates. Default `none`.
    #[serde(with = "optional_duration")]
    pub sev3: Option<Duration>,
    /// SEV4 updates. Default `none`.
    #[serde(with = "optional_duration")]
    pub sev4: Option<Duration>,
}

impl Default for CadenceSettings {
    fn default() -> Self {
        Self {
            sev0: Some(Duration::from_secs(15 * 60)),
            sev1: Some(Duration::from_secs(15 * 60)),
            sev2: Some(Duration::from_secs(30 * 60)),
            sev3: None,
            sev4: None,
        }
    }
}

impl CadenceSettings {
    /// The cadence of `severity`, if it has one.
    pub fn of(&self, severity: Sev) -> Option<Duration> {
        match severity {
            Sev::Sev0 => self.sev0,
            Sev::Sev1 => self.sev1,
            Sev::Sev2 => self.sev2,
            Sev::Sev3 => self.sev3,
            Sev::Sev4 => self.sev4,
        }
    }

    /// Every severity with its key, for validation.
    pub(crate) fn entries(&self) -> [(&'static str, Option<Duration>); 5] {
        [
            ("sev0", self.sev0),
            ("sev1", self.sev1),
            ("sev2", self.sev2),
            ("sev3", self.sev3),
            ("sev4", self.sev4),
        ]
    }
}

/// `none` (or `off`) for no value, else a humantime duration. TOML has no
/// null, so "off" needs a word.
pub(crate) mod optional_duration {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => {
                serializer.serialize_str(&humantime::format_duration(*duration).to_string())
            }
            None => serializer.serialize_str("none"),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.trim() {
            "none" | "off" => Ok(None),
            other => humantime::parse_duration(other)
                .map(Some)
                .map_err(|error| serde::de::Error::custom(format!("{other:?}: {error}"))),
        }
    }
}

/// `SEV0`..`SEV4`, or `none` for "never freeze".
mod freeze_level {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Sev>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(sev) => sev.serialize(serializer),
            None => serializer.serialize_str("none"),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Sev>, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim().eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        text.trim().parse::<Sev>().map(Some).map_err(|()| {
            serde::de::Error::custom(format!(
                "{text:?} is not one of SEV0, SEV1, SEV2, SEV3, SEV4, none"
            ))
        })
    }
}
