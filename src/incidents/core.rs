//! The incident commander's pure core: every decision the commander makes,
//! as a state machine without I/O, clock reads or actors.
//!
//! [`CommanderCore`] owns the incidents (open and resolved, by id), the
//! tally of open critical issues per component, the freeze decisions and
//! each incident's clock marks (opening, last update) as plain timestamps.
//! [`CommanderCore::step`] takes one [`Input`] and the time and returns the
//! [`Effect`]s the actor carries out, in order. The actor (`actor.rs`) only
//! executes them: files, the shared store and freeze set, the audit log,
//! notices and replies.
//!
//! Some effects need an answer from the world before the story can go on:
//! an incident id claimed on disk, evidence written, the seq of the
//! `incident.opened` row, the seq of a notice request, the timeline on disk
//! ([`Effect::awaits_answer`]). Such an effect is always the last of its step
//! and carries the rest of the story as data (`then`); the actor answers
//! with the matching input at once. Nothing waits in the core between the
//! two, so a chain the actor abandons on a disk error leaves nothing
//! half-done in the core: what it decided before the failure stands, and
//! the files catch up at the incident's next write.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::model::{Incident, IncidentStatus, OpenTrigger, SeverityChange, TimelineEntry};
use super::severity::{Sev, SeverityFacts, freezes, is_important, rate};
use super::state::{ImpactOngoing, auto_resolvable, best, impact_stopped_by, joins};
use super::{CommandError, postmortem};
use crate::audit::NewRow;
use crate::events::incident as ev;
use crate::messages::{Health, IssueEvent};
use crate::notify::Notice;
use crate::settings::{Criticality, IncidentSettings, Severity};

mod commands;
mod issues;
mod lifecycle;
mod opening;
mod vocabulary;

#[cfg(test)]
mod tests;

pub use lifecycle::{PendingUpdate, Update};
pub use vocabulary::{
    AfterAppend, AfterEvidence, AfterNotice, Draft, Effect, Input, Joined, Log, Refusal, Reply,
    Snapshot,
};

/// What the decisions read from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `[incidents]`.
    pub settings: IncidentSettings,
    /// Criticality per component.
    pub criticality: HashMap<String, Criticality>,
    /// `depends_on` per component.
    pub depends_on: HashMap<String, Vec<String>>,
}

/// One probe as the actor saw it just before a step: the core never reads
/// the observation maps itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeNow {
    /// Healthy observations in a row, newest last.
    pub healthy_run: usize,
    /// The latest verdict, if there is one.
    pub latest: Option<Health>,
}

/// [`ProbeNow`] by probe name; a probe missing here has no observations.
pub type Probes = BTreeMap<String, ProbeNow>;

/// One incident and its clock marks.
#[derive(Debug, Clone, PartialEq)]
struct Tracked {
    incident: Incident,
    /// When it opened, for `related_window`.
    opened: Timestamp,
    /// When its last update went out (the opening counts), for the cadence.
    last_update: Timestamp,
}

/// The commander's decision state.
#[derive(Debug, Clone)]
pub struct CommanderCore {
    config: Config,
    incidents: BTreeMap<String, Tracked>,
    /// Sessions of open critical issues per component, for the "several
    /// important components" rule.
    open_critical: BTreeMap<String, BTreeSet<String>>,
    /// Frozen components and the incident that froze each.
    frozen: BTreeMap<String, String>,
}

impl CommanderCore {
    /// A core with no incidents and the tally as the intake stored it.
    pub fn new(config: Config, open_critical: HashMap<String, BTreeSet<String>>) -> Self {
        Self {
            config,
            incidents: BTreeMap::new(),
            open_critical: open_critical.into_iter().collect(),
            frozen: BTreeMap::new(),
        }
    }

    /// Keeps a freeze that outlived a previous commander (the shared set
    /// survives a restart); it wins over the freezes [`Self::restore`] finds.
    pub fn keep_frozen(&mut self, component: String, id: String) {
        self.frozen.insert(component, id);
    }

    /// Takes back an incident from disk (or the store) with the clock marks
    /// the store kept, and the freeze it holds while open at a freezing
    /// severity. Without marks it counts as opened at its `opened_at` and
    /// updated `now`.
    pub fn restore(
        &mut self,
        incident: Incident,
        marks: (Option<Timestamp>, Option<Timestamp>),
        now: Timestamp,
    ) {
        if self.freezing(&incident) {
            for component in &incident.components {
                self.frozen
                    .entry(component.clone())
                    .or_insert_with(|| incident.id.clone());
            }
        }
        let opened = marks
            .0
            .or_else(|| incident.opened_at.parse().ok())
            .unwrap_or(now);
        let tracked = Tracked {
            incident,
            opened,
            last_update: marks.1.unwrap_or(now),
        };
        self.incidents.insert(tracked.incident.id.clone(), tracked);
    }

    /// The incident with this id.
    pub fn incident(&self, id: &str) -> Option<&Incident> {
        self.incidents.get(id).map(|t| &t.incident)
    }

    /// Every incident, by id.
    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.values().map(|t| &t.incident)
    }

    /// Ids of the incidents not resolved yet.
    pub fn active(&self) -> Vec<String> {
        self.incidents()
            .filter(|i| i.is_active())
            .map(|i| i.id.clone())
            .collect()
    }

    /// When incident `id` opened and when its last update went out.
    pub fn clock_marks(&self, id: &str) -> Option<(Timestamp, Timestamp)> {
        self.incidents.get(id).map(|t| (t.opened, t.last_update))
    }

    /// Frozen components and the incident that froze each.
    pub fn frozen(&self) -> &BTreeMap<String, String> {
        &self.frozen
    }

    /// The tally of open critical issues, as the intake stores it.
    pub fn open_critical(&self) -> HashMap<String, BTreeSet<String>> {
        self.open_critical
            .iter()
            .map(|(component, sessions)| (component.clone(), sessions.clone()))
            .collect()
    }

    /// Decides what `input` does at `now`. Pure: the same state, input and
    /// time give the same effects.
    pub fn step(&mut self, input: Input, now: Timestamp) -> Vec<Effect> {
        let mut out = Vec::new();
        match input {
            Input::Issue(event) => self.on_issue(event, now, &mut out),
            Input::Open(trigger) => self.on_open(trigger, now, &mut out),
            Input::Note { id, text, author } => {
                let done = self.on_note(&id, text, author, now, &mut out);
                out.push(Effect::Reply(Reply::Done(done)));
            }
            Input::SetSeverity {
                id,
                severity,
                reason,
            } => {
                let done = self.on_set_severity(&id, severity, reason, now, &mut out);
                out.push(Effect::Reply(Reply::Done(done)));
            }
            Input::Resolve {
                id,
                note,
                force,
                probes,
            } => {
                // On success the reply ends the chain, after the notice.
                if let Err(refusal) = self.on_resolve(&id, note, force, &probes, now, &mut out) {
                    out.push(Effect::Reply(Reply::Done(Err(refusal))));
                }
            }
            Input::Timeline {
                session,
                component,
                kind,
                text,
                details,
            } => {
                let at = stamp(now);
                let entry = TimelineEntry {
                    at,
                    kind,
                    text,
                    details,
                };
                self.on_timeline(session, component, entry, now, &mut out)
            }
            Input::Tick { id, probes } => self.on_tick(&id, &probes, now, &mut out),
            Input::IdClaimed { id, draft } => self.on_claimed(id, draft, now, &mut out),
            Input::EvidenceWritten { files, then } => self.on_evidence(files, then, now, &mut out),
            Input::Appended { seq, then } => self.on_appended(seq, then, now, &mut out),
            Input::Requested { seq, then } => self.on_requested(seq, then, now, &mut out),
            Input::Delivery { seq, id, delivered } => {
                self.on_delivery(seq, &id, &delivered, now, &mut out)
            }
            Input::TimelineRead { entries, then } => {
                self.on_timeline_read(&entries, then, now, &mut out)
            }
        }
        out
    }

    /// Changes the severity and records it (store, file, timeline, row).
    fn change_severity(
        &mut self,
        id: &str,
        severity: Sev,
        reason: String,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        let mut from = severity;
        let Some(incident) = self.touch(id, now, |incident| {
            from = incident.severity;
            incident.severity = severity;
            incident.severity_history.push(SeverityChange {
                at: stamp(now),
                from: Some(from),
                to: severity,
                reason: reason.clone(),
            });
        }) else {
            return;
        };
        out.push(Effect::Publish(Box::new(incident.clone())));
        out.push(Effect::Save(Box::new(incident.clone())));
        timeline(
            out,
            id,
            now,
            "severity",
            format!("severity {from} → {severity}: {reason}"),
            json!({ "from": from, "to": severity }),
        );
        let row = row(
            &incident,
            &ev::SeverityChanged {
                id: id.to_owned(),
                from,
                to: severity,
                reason,
            },
        );
        out.push(Effect::Append { row, then: None });
    }

    /// Whether `incident` freezes automation on its components.
    fn freezing(&self, incident: &Incident) -> bool {
        incident.status == IncidentStatus::Open
            && freezes(incident.severity, self.config.settings.freeze_automation_at)
    }

    /// Freezes the incident's components while it is open at a freezing
    /// severity; otherwise lifts its freezes, or hands each to another open
    /// freezing incident that covers the component.
    fn apply_freeze(&mut self, id: &str, now: Timestamp, out: &mut Vec<Effect>) {
        let Some(incident) = self.incident(id).cloned() else {
            return;
        };
        let heirs = self.hand_over(&incident, out);
        let (freezing, changed) = self.mark_freeze(&incident, out);
        record_freeze(out, &incident, freezing, changed, now);
        for (heir, components) in heirs {
            if let Some(heir) = self.incident(&heir) {
                record_freeze(out, heir, true, components, now);
            }
        }
    }

    /// Moves the freezes of `incident`, which no longer freezes, to the
    /// best other open freezing incident covering each component, so a
    /// component is frozen exactly while some such incident remains. The
    /// owner changes in one write; the component is never seen unfrozen.
    fn hand_over(
        &mut self,
        incident: &Incident,
        out: &mut Vec<Effect>,
    ) -> BTreeMap<String, Vec<String>> {
        let mut heirs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if self.freezing(incident) {
            return heirs;
        }
        for (component, owner) in &self.frozen {
            if *owner != incident.id {
                continue;
            }
            let heir = self.incidents().filter(|other| {
                other.id != incident.id
                    && self.freezing(other)
                    && other.components.contains(component)
            });
            if let Some(heir) = best(heir) {
                heirs
                    .entry(heir.id.clone())
                    .or_default()
                    .push(component.clone());
            }
        }
        for (heir, components) in &heirs {
            for component in components {
                self.frozen.insert(component.clone(), heir.clone());
            }
            let (id, components) = (heir.clone(), components.clone());
            out.push(Effect::Freeze { id, components });
        }
        heirs
    }

    /// Decides the freeze for `incident` and emits the change to the shared
    /// set (not yet recorded): whether it freezes, and the components whose
    /// state changed.
    fn mark_freeze(&mut self, incident: &Incident, out: &mut Vec<Effect>) -> (bool, Vec<String>) {
        let id = incident.id.as_str();
        let freezing = self.freezing(incident);
        let mut changed = Vec::new();
        if freezing {
            for component in &incident.components {
                if !self.frozen.contains_key(component) {
                    self.frozen.insert(component.clone(), id.to_owned());
                    changed.push(component.clone());
                }
            }
        } else {
            self.frozen.retain(|component, owner| {
                let mine = owner == id;
                if mine {
                    changed.push(component.clone());
                }
                !mine
            });
        }
        if !changed.is_empty() {
            let (id, components) = (id.to_owned(), changed.clone());
            out.push(if freezing {
                Effect::Freeze { id, components }
            } else {
                Effect::Unfreeze { id, components }
            });
        }
        (freezing, changed)
    }

    /// Applies `change` to incident `id`, stamps `updated_at` and returns a
    /// copy, or `None` for an unknown id.
    fn touch(
        &mut self,
        id: &str,
        now: Timestamp,
        change: impl FnOnce(&mut Incident),
    ) -> Option<Incident> {
        let tracked = self.incidents.get_mut(id)?;
        change(&mut tracked.incident);
        tracked.incident.updated_at = stamp(now);
        Some(tracked.incident.clone())
    }
}

/// Records a freeze change [`CommanderCore::mark_freeze`] made: timeline
/// entry and audit row.
fn record_freeze(
    out: &mut Vec<Effect>,
    incident: &Incident,
    freezing: bool,
    changed: Vec<String>,
    now: Timestamp,
) {
    if changed.is_empty() {
        return;
    }
    let (kind, verb) = if freezing {
        ("freeze", "frozen")
    } else {
        ("unfreeze", "unfrozen")
    };
    let id = incident.id.as_str();
    timeline(
        out,
        id,
        now,
        kind,
        format!("automation {verb} on {}", changed.join(", ")),
        json!({ "components": changed }),
    );
    let (id, components) = (id.to_owned(), changed);
    let row = if freezing {
        row(incident, &ev::AutomationFrozen { id, components })
    } else {
        row(incident, &ev::AutomationUnfrozen { id, components })
    };
    out.push(Effect::Append { row, then: None });
}

/// `now` as the record and timeline write it: RFC 3339 UTC, milliseconds.
pub fn stamp(now: Timestamp) -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::from(now)).to_string()
}

/// Time from `since` to `now`; zero if `now` is earlier.
fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or_default()
}

fn timeline(
    out: &mut Vec<Effect>,
    id: &str,
    now: Timestamp,
    kind: impl Into<String>,
    text: impl Into<String>,
    details: Value,
) {
    out.push(Effect::Timeline {
        id: id.to_owned(),
        entry: TimelineEntry {
            at: stamp(now),
            kind: kind.into(),
            text: text.into(),
            details,
        },
    });
}

/// An `incident.*` row, filed under the incident's first component.
fn row<E: crate::events::Event>(incident: &Incident, event: &E) -> NewRow {
    let mut row = crate::events::row(event);
    if let Some(component) = incident.components.iter().next() {
        row = row.component(component.clone());
    }
    row
}

/// `Ok` when every probe of `incident` has been healthy for the configured
/// run; else the first that has not.
fn impact_stopped(incident: &Incident, probes: &Probes, cycles: u32) -> Result<(), ImpactOngoing> {
    impact_stopped_by(
        &incident.probes,
        |probe| probes.get(probe).map_or(0, |p| p.healthy_run),
        cycles,
    )
}
