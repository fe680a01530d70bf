//! `[[maintenance]]`: planned work during which issues are recorded but
//! nobody is woken. Either one-off (`start` + `end`) or recurring (`weekdays`
//! + `from` + `to` in a `timezone`).

use serde::{Deserialize, Serialize};

/// One maintenance window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceSettings {
    /// Name, shown in audit rows of suppressed issues. Required.
    pub name: String,
    /// Components covered; empty means every component.
    pub components: Vec<String>,
    /// One-off: start, RFC 3339 (e.g. `2026-12-01T02:00:00Z`).
    pub start: Option<String>,
    /// One-off: end, RFC 3339; after `start`.
    pub end: Option<String>,
    /// Recurring: days of the week (`mon` .. `sun`).
    pub weekdays: Vec<String>,
    /// Recurring: local start time, `HH:MM`.
    pub from: Option<String>,
    /// Recurring: local end time, `HH:MM`; earlier than `from` means it ends the next day.
    pub to: Option<String>,
    /// Recurring: IANA time zone of `from`/`to`, e.g. `Europe/Berlin`. Default `UTC`.
    pub timezone: Option<String>,
}
