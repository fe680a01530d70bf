//! The commander's pure decisions: which open incident an issue joins,
//! whether impact has stopped, when an update is due. No I/O, no actors.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::Sev;
use super::model::{Incident, IncidentStatus};
use crate::debounce::ObservationHistory;
use crate::messages::Health;
use crate::settings::CadenceSettings;

/// Whether `a` and `b` are the same component or one directly depends on
/// the other.
pub fn related_components(a: &str, b: &str, depends_on: &HashMap<String, Vec<String>>) -> bool {
    let needs = |x: &str, y: &str| {
        depends_on
            .get(x)
            .is_some_and(|deps| deps.iter().any(|d| d == y))
    };
    a == b || needs(a, b) || needs(b, a)
}

/// Whether an issue on `component` belongs to `incident`: it already names
/// the session; or the incident covers the same component (always); or a
/// component related by `depends_on`, while the incident is younger than
/// `window` (`since_open`).
pub fn joins(
    incident: &Incident,
    session: Option<&str>,
    component: &str,
    depends_on: &HashMap<String, Vec<String>>,
    since_open: Duration,
    window: Duration,
) -> bool {
    if !incident.is_active() {
        return false;
    }
    if session.is_some_and(|s| incident.sessions.contains(s)) {
        return true;
    }
    if incident.components.contains(component) {
        return true;
    }
    since_open <= window
        && incident
            .components
            .iter()
            .any(|c| related_components(c, component, depends_on))
}

/// The incident to join among `candidates` (already filtered by [`joins`]):
/// the most severe, then the oldest.
pub(crate) fn best<'a>(candidates: impl IntoIterator<Item = &'a Incident>) -> Option<&'a Incident> {
    candidates
        .into_iter()
        .min_by(|a, b| (a.severity, &a.opened_at, &a.id).cmp(&(b.severity, &b.opened_at, &b.id)))
}

/// Why an incident cannot be resolved yet: a probe has not been healthy for
/// long enough.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "probe {probe} is still unhealthy ({healthy_run} of {cycles} healthy observations in a row)"
)]
pub struct ImpactOngoing {
    /// The first probe that is not healthy enough.
    pub probe: String,
    /// Its healthy observations in a row, newest last.
    pub healthy_run: usize,
    /// How many are needed.
    pub cycles: usize,
}

/// `Ok` when every probe's last `cycles` observations are healthy; else the
/// first probe that is not.
pub fn impact_stopped<'a>(
    probes: impl IntoIterator<Item = &'a String>,
    history: &ObservationHistory,
    cycles: u32,
) -> Result<(), ImpactOngoing> {
    impact_stopped_by(probes, |probe| healthy_run(history, probe), cycles)
}

/// Healthy observations of `probe` in a row, newest last.
pub(crate) fn healthy_run(history: &ObservationHistory, probe: &str) -> usize {
    history.get(probe).map_or(0, |observations| {
        observations
            .iter()
            .rev()
            .take_while(|o| o.status == Health::Healthy)
            .count()
    })
}

/// [`impact_stopped`] with each probe's healthy run from `healthy_run`.
pub(crate) fn impact_stopped_by<'a>(
    probes: impl IntoIterator<Item = &'a String>,
    healthy_run: impl Fn(&str) -> usize,
    cycles: u32,
) -> Result<(), ImpactOngoing> {
    let cycles = cycles.max(1) as usize;
    for probe in probes {
        let healthy_run = healthy_run(probe);
        if healthy_run < cycles {
            return Err(ImpactOngoing {
                probe: probe.clone(),
                healthy_run,
                cycles,
            });
        }
    }
    Ok(())
}

/// Whether an update notice is due for an incident of `severity` whose last
/// update went out at `last`.
pub fn cadence_due(cadence: &CadenceSettings, severity: Sev, last: Instant, now: Instant) -> bool {
    cadence
        .of(severity)
        .is_some_and(|every| now.saturating_duration_since(last) >= every)
}

/// Whether an auto-resolve check applies: probe-driven incidents that are
/// not resolved yet. Incidents without probes (operator, meltdown) are
/// resolved by an operator.
pub(crate) fn auto_resolvable(incident: &Incident) -> bool {
    incident.status != IncidentStatus::Resolved && !incident.probes.is_empty()
}
