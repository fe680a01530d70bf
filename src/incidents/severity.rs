//! Incident severity (`SEV0`..`SEV4`) and the rules that rate a new
//! incident. The rules are a pure function so they can be read, documented
//! (docs/configuration.md, "Severity rules") and tested on their own.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::settings::{Criticality, Severity};

/// How bad an incident is. `SEV0` is the worst; the derived order sorts it
/// first, so `a < b` means "a is more severe than b".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Sev {
    /// Integrity or security is at risk (a failed signature, an expired credential).
    #[serde(rename = "SEV0")]
    Sev0,
    /// A critical component is down for good, or several important ones at once.
    #[serde(rename = "SEV1")]
    Sev1,
    /// One component has a critical issue.
    #[serde(rename = "SEV2")]
    Sev2,
    /// A warning: degraded, a workaround exists.
    #[serde(rename = "SEV3")]
    Sev3,
    /// Informational.
    #[serde(rename = "SEV4")]
    Sev4,
}

impl Sev {
    /// Every severity, worst first.
    pub const ALL: [Sev; 5] = [Sev::Sev0, Sev::Sev1, Sev::Sev2, Sev::Sev3, Sev::Sev4];

    /// `SEV0`..`SEV4`.
    pub fn as_str(self) -> &'static str {
        match self {
            Sev::Sev0 => "SEV0",
            Sev::Sev1 => "SEV1",
            Sev::Sev2 => "SEV2",
            Sev::Sev3 => "SEV3",
            Sev::Sev4 => "SEV4",
        }
    }

    /// The notice severity used for this incident's notices: SEV0 to SEV2
    /// are critical, SEV3 a warning, SEV4 info.
    pub fn notice_severity(self) -> Severity {
        match self {
            Sev::Sev0 | Sev::Sev1 | Sev::Sev2 => Severity::Critical,
            Sev::Sev3 => Severity::Warning,
            Sev::Sev4 => Severity::Info,
        }
    }
}

impl fmt::Display for Sev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Sev {
    type Err = ();

    /// `SEV0`..`SEV4`, case-insensitive.
    fn from_str(text: &str) -> Result<Self, ()> {
        Sev::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or(())
    }
}

/// Whether an issue category is about integrity or security: an expired
/// credential, or a category naming a signature, hash, integrity, tenant or
/// security failure.
pub fn is_integrity_category(category: &str) -> bool {
    let category = category.to_ascii_lowercase();
    category == "credential_expired"
        || ["signature", "hash", "integrity", "tenant", "security"]
            .iter()
            .any(|word| category.contains(word))
}

/// What the rules look at when an issue opens or joins an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeverityFacts<'a> {
    /// The issue category.
    pub category: &'a str,
    /// The issue's own severity.
    pub issue: Severity,
    /// How much the issue's component matters.
    pub criticality: Criticality,
    /// The component's escalation ladder is exhausted.
    pub ladder_exhausted: bool,
    /// Components of criticality `high` or `critical` with an open critical
    /// issue right now, this one included.
    pub important_components_down: usize,
}

/// The severity rules, first match wins:
///
/// | rule | severity |
/// | --- | --- |
/// | integrity or security category ([`is_integrity_category`]) | SEV0 |
/// | ladder exhausted on a `critical` component | SEV1 |
/// | two or more `high`/`critical` components with open critical issues | SEV1 |
/// | a critical issue (or an exhausted ladder) on one component | SEV2 |
/// | a warning | SEV3 |
/// | info | SEV4 |
pub fn rate(facts: &SeverityFacts<'_>) -> Sev {
    if is_integrity_category(facts.category) {
        return Sev::Sev0;
    }
    if facts.ladder_exhausted && facts.criticality == Criticality::Critical {
        return Sev::Sev1;
    }
    let critical = facts.issue == Severity::Critical || facts.ladder_exhausted;
    if critical && facts.important_components_down >= 2 {
        return Sev::Sev1;
    }
    if critical {
        return Sev::Sev2;
    }
    match facts.issue {
        Severity::Warning => Sev::Sev3,
        Severity::Info | Severity::Critical => Sev::Sev4,
    }
}

/// Whether an incident of `severity` freezes automation under
/// `incidents.freeze_automation_at`.
pub fn freezes(severity: Sev, freeze_at: Option<Sev>) -> bool {
    freeze_at.is_some_and(|level| severity <= level)
}

/// Whether a criticality counts towards the "several important components" rule.
pub(crate) fn is_important(criticality: Criticality) -> bool {
    matches!(criticality, Criticality::High | Criticality::Critical)
}
