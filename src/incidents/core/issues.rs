//! Issues: which incident an issue row belongs to, joining it, and what a
//! resolved issue does to the incidents that hold it.

use super::*;

impl CommanderCore {
    pub(super) fn criticality(&self, component: &str) -> Criticality {
        self.config
            .criticality
            .get(component)
            .copied()
            .unwrap_or_default()
    }

    /// The active incident an issue on `component` (with `session`) belongs
    /// to: the one that holds its story, else the best that [`joins`] it.
    pub(super) fn related(
        &self,
        session: Option<&str>,
        component: &str,
        now: Timestamp,
    ) -> Option<String> {
        // A story that woke again stays where it is: a more severe incident
        // it also relates to (by `depends_on`) must not take a second copy.
        let holders = self
            .incidents()
            .filter(|i| i.is_active() && session.is_some_and(|s| i.sessions.contains(s)));
        if let Some(holder) = best(holders) {
            return Some(holder.id.clone());
        }
        let window = self.config.settings.related_window;
        let candidates = self.incidents.values().filter_map(|t| {
            joins(
                &t.incident,
                session,
                component,
                &self.config.depends_on,
                elapsed(t.opened, now),
                window,
            )
            .then_some(&t.incident)
        });
        best(candidates).map(|incident| incident.id.clone())
    }

    /// What an issue row does: a wake is rated and joins or opens; a
    /// suppressed or flapping issue only joins; a resolution updates the
    /// tally and the incidents that hold the story.
    pub(super) fn on_issue(&mut self, event: IssueEvent, now: Timestamp, out: &mut Vec<Effect>) {
        let session = event.caller_session_id.clone();
        match event.seam.as_str() {
            "probe.wake_requested" => {
                if event.severity == Severity::Critical
                    && let Some(session) = &session
                {
                    self.open_critical
                        .entry(event.component.clone())
                        .or_default()
                        .insert(session.clone());
                }
                let important_down = self
                    .open_critical
                    .iter()
                    .filter(|(component, sessions)| {
                        !sessions.is_empty() && is_important(self.criticality(component))
                    })
                    .count();
                let severity = rate(&SeverityFacts {
                    category: &event.category,
                    issue: event.severity,
                    criticality: self.criticality(&event.component),
                    ladder_exhausted: false,
                    important_components_down: important_down,
                });
                let reason = format!(
                    "{} issue {} on {} ({})",
                    event.severity.as_str(),
                    event.category,
                    event.component,
                    event.probe
                );
                if let Some(id) = self.related(session.as_deref(), &event.component, now) {
                    self.join(id, event, Some((severity, reason)), now, out);
                } else if severity <= Sev::Sev3 {
                    let trigger = OpenTrigger::Issue {
                        caller_session_id: session,
                        probe: event.probe,
                        component: event.component,
                        category: event.category,
                        severity: event.severity,
                        seq: event.seq,
                    };
                    self.open(trigger, severity, reason, now, out);
                }
            }
            // Recorded or unstable issues join what is open but never open anything.
            "probe.wake_suppressed" | "probe.flapping" => {
                if let Some(id) = self.related(session.as_deref(), &event.component, now) {
                    self.join(id, event, None, now, out);
                }
            }
            "probe.resolved" => {
                if let Some(session) = session {
                    for sessions in self.open_critical.values_mut() {
                        sessions.remove(&session);
                    }
                    self.issue_resolved(&session, &event, now, out);
                }
            }
            _ => {}
        }
    }

    /// Attaches an issue to incident `id`, raising its severity when the
    /// issue rates worse, and snapshots evidence for a probe new to it.
    pub(super) fn join(
        &mut self,
        id: String,
        event: IssueEvent,
        rating: Option<(Sev, String)>,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        let mut new_probe = false;
        let mut known_session = false;
        let Some(incident) = self.touch(&id, now, |incident| {
            new_probe = incident.probes.insert(event.probe.clone());
            incident.components.insert(event.component.clone());
            if let Some(session) = &event.caller_session_id {
                known_session = !incident.sessions.insert(session.clone());
                incident.resolved_sessions.remove(session);
            }
            if incident.status == IncidentStatus::Mitigated {
                // A new wake means impact is back.
                incident.status = IncidentStatus::Open;
            }
        }) else {
            return;
        };
        out.push(Effect::Publish(Box::new(incident.clone())));
        let (kind, text) = if known_session {
            (
                "wake",
                format!("{} woke again ({})", event.probe, event.seam),
            )
        } else {
            (
                "joined",
                format!(
                    "{} on {} joined: {} ({})",
                    event.probe, event.component, event.category, event.seam
                ),
            )
        };
        let details = serde_json::to_value(&event).unwrap_or_default();
        timeline(out, &id, now, kind, text, details);
        out.push(Effect::Save(Box::new(incident)));
        let joined = Joined {
            id,
            event,
            known_session,
            rating,
        };
        if new_probe {
            let sessions = joined.event.caller_session_id.iter().cloned().collect();
            out.push(Effect::Snapshot(Box::new(Snapshot {
                id: joined.id.clone(),
                probes: vec![joined.event.probe.clone()],
                components: BTreeSet::new(),
                sessions,
                label: format!("joined-{}", joined.event.probe),
                with_config: false,
                then: AfterEvidence::Joined(Box::new(joined)),
            })));
        } else {
            self.join_rest(joined, now, out);
        }
    }

    /// What a join does after its evidence: the row, the rating, the freeze.
    pub(super) fn join_rest(&mut self, joined: Joined, now: Timestamp, out: &mut Vec<Effect>) {
        let Joined {
            id,
            event,
            known_session,
            rating,
        } = joined;
        let Some(incident) = self.incident(&id).cloned() else {
            return;
        };
        if !known_session {
            let row = row(
                &incident,
                &ev::Joined {
                    id: id.clone(),
                    probe: event.probe.clone(),
                    issue_seq: event.seq,
                    seam: event.seam.clone(),
                },
            )
            .session(event.caller_session_id.clone().unwrap_or_default());
            out.push(Effect::Append { row, then: None });
        }
        if let Some((severity, reason)) = rating
            && severity < incident.severity
        {
            self.change_severity(&id, severity, reason, now, out);
        }
        self.apply_freeze(&id, now, out);
    }

    /// A story recovered: every incident holding it notes so, and one whose
    /// stories all recovered is mitigated (and unfreezes) while its probes
    /// have yet to stay healthy.
    pub(super) fn issue_resolved(
        &mut self,
        session: &str,
        event: &IssueEvent,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        let ids: Vec<String> = self
            .incidents()
            .filter(|i| i.is_active() && i.sessions.contains(session))
            .map(|i| i.id.clone())
            .collect();
        for id in ids {
            let mut mitigated = false;
            let Some(incident) = self.touch(&id, now, |incident| {
                incident.resolved_sessions.insert(session.to_owned());
                if incident.status == IncidentStatus::Open
                    && incident.sessions.is_subset(&incident.resolved_sessions)
                {
                    incident.status = IncidentStatus::Mitigated;
                    mitigated = true;
                }
            }) else {
                continue;
            };
            out.push(Effect::Publish(Box::new(incident.clone())));
            timeline(
                out,
                &id,
                now,
                "issue_resolved",
                format!("{} recovered ({})", event.probe, event.category),
                json!({ "caller_session_id": session, "seq": event.seq }),
            );
            out.push(Effect::Save(Box::new(incident.clone())));
            if mitigated {
                timeline(
                    out,
                    &id,
                    now,
                    "mitigated",
                    "every issue of the incident has resolved; waiting for the probes to stay healthy",
                    Value::Null,
                );
                let row = row(&incident, &ev::Mitigated { id: id.clone() });
                out.push(Effect::Append { row, then: None });
                self.apply_freeze(&id, now, out);
            }
        }
    }
}
