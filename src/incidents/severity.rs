//! Incident severity (`SEV0`..`SEV4`) and the rules that rate a new
//! incident. The rules are a pure function so they can be read, documented
//! (docs/configuration.md, "Severity rules") and tested on their own.

pub use crate::messages::Sev;
use crate::settings::{Criticality, Severity};

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
