//! Semantic checks that serde cannot express: ranges, required-per-kind
//! fields, uniqueness and cross-references. Every problem is collected, each
//! with the key path an operator would edit.
//!
//! This file holds the problem list, the order of the sections, and the
//! rules that cross sections (names, dependency cycles); each section's own
//! rules are in `validate/` (`service`, `pipeline`, `probes`, `components`,
//! `notifiers`), and a probe kind's are in its own file under `src/probes/`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use super::InvestigatorKind;
use super::components::{ComponentSettings, FixKind, TierKind};
use super::{
    NotifierKind, NotifierSettings, ProbeKind, ProbeSettings, SecretUrl, Settings, redact_url,
};

/// The shortest probe interval Warden accepts; faster polling is load, not insight.
mod components;
mod notifiers;
mod pipeline;
mod probes;
mod service;

#[cfg(test)]
pub(crate) use components::valid_stop_signal;
use components::*;
use notifiers::*;
use pipeline::*;
use probes::*;
use service::*;

const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a key path (`probes[2].interval`); empty for the file as a whole.
    pub key: String,
    /// What is wrong, in lowercase words.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// The problems found so far; each check pushes into it rather than
/// stopping, so one pass reports every bad key.
#[derive(Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    /// Records that `key` is wrong, and why.
    pub(crate) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(key, message));
    }
}

/// Every semantic problem in `settings`.
pub(crate) fn validate(settings: &Settings) -> Vec<Problem> {
    let mut problems = Problems::default();
    service(settings, &mut problems);
    audit(settings, &mut problems);
    telemetry(settings, &mut problems);
    supervision(settings, &mut problems);
    debounce(settings, &mut problems);
    probes(settings, &mut problems);
    components(settings, &mut problems);
    maintenance(settings, &mut problems);
    wake(settings, &mut problems);
    notifiers(settings, &mut problems);
    investigator(settings, &mut problems);
    incidents(settings, &mut problems);
    listener_hardening(settings, &mut problems);
    super::cluster::validate(&settings.cluster, &mut problems);
    if settings.chaos.enabled && !settings.service.has_operator_token() {
        problems.push(
            "chaos.enabled",
            "the chaos surface refuses every call without an operator token; configure service.operator_token_file (or operator_tokens)",
        );
    }
    problems.0
}

fn positive(problems: &mut Problems, key: &str, value: Duration) {
    if value.is_zero() {
        problems.push(key, "must be greater than zero");
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn name_rules(
    problems: &mut Problems,
    key: String,
    name: &str,
    seen: &mut BTreeSet<String>,
    what: &str,
) {
    if name.is_empty() {
        problems.push(key, "is required");
    } else if name == "." || name == ".." {
        // Names become file and folder names in the state dir (logs,
        // process records, snapshots): these two would escape them.
        problems.push(key, format!("\"{name}\" is not a name"));
    } else if !valid_name(name) {
        problems.push(
            key,
            format!(
                "use 1-64 characters from a-z, A-Z, 0-9, '-', '_' and '.' (got \"{}\")",
                name.escape_debug()
            ),
        );
    } else if !seen.insert(name.to_owned()) {
        problems.push(key, format!("duplicate {what} name \"{name}\""));
    }
}

/// A `depends_on` cycle, if any, as the names along it.
fn dependency_cycle(settings: &Settings) -> Option<Vec<String>> {
    let edges: BTreeMap<&str, &[String]> = settings
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.depends_on.as_slice()))
        .collect();
    // Depth-first search with an explicit stack: 0 = unvisited, 1 = on path, 2 = done.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    for &start in edges.keys() {
        if state.get(start).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        state.insert(start, 1);
        while let Some((node, next)) = path.last_mut() {
            let deps = edges.get(*node).copied().unwrap_or(&[]);
            if let Some(dep) = deps.get(*next) {
                *next += 1;
                let dep = dep.as_str();
                if !edges.contains_key(dep) || dep == *node {
                    continue; // unknown or self edges are reported elsewhere
                }
                match state.get(dep).copied().unwrap_or(0) {
                    0 => {
                        state.insert(dep, 1);
                        path.push((dep, 0));
                    }
                    1 => {
                        let from = path.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            path[from..].iter().map(|(n, _)| (*n).to_owned()).collect();
                        cycle.push(dep.to_owned());
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                state.insert(*node, 2);
                path.pop();
            }
        }
    }
    None
}
