//! Opening an incident: the rating, then a chain through the actor (an id,
//! the record, the evidence) before anything else may see it, then the
//! freeze, the `incident.opened` row and its notice.

use super::*;

impl CommanderCore {
    /// An explicit request to open: rated by what asks; an exhausted ladder
    /// joins the incident that already covers its component.
    pub(super) fn on_open(&mut self, trigger: OpenTrigger, now: Timestamp, out: &mut Vec<Effect>) {
        let (severity, reason) = match &trigger {
            OpenTrigger::Issue {
                severity,
                category,
                component,
                ..
            } => (
                rate(&SeverityFacts {
                    category,
                    issue: *severity,
                    criticality: self.criticality(component),
                    ladder_exhausted: false,
                    important_components_down: 1,
                }),
                format!("issue {category} on {component}"),
            ),
            OpenTrigger::LadderExhausted {
                component,
                history,
                session,
            } => {
                let severity = rate(&SeverityFacts {
                    category: "ladder_exhausted",
                    issue: Severity::Critical,
                    criticality: self.criticality(component),
                    ladder_exhausted: true,
                    important_components_down: 1,
                });
                let reason = format!("escalation ladder exhausted on {component}");
                // The ladder belongs to whatever incident already covers the component.
                if let Some(id) = self.related(session.as_deref(), component, now) {
                    self.ladder_joins(&id, severity, reason, history.clone(), now, out);
                    out.push(Effect::Reply(Reply::Opened(id)));
                    return;
                }
                (severity, reason)
            }
            OpenTrigger::Meltdown { .. } => {
                (Sev::Sev1, "the supervision tree melted down".to_owned())
            }
            OpenTrigger::Substrate { detail } => {
                (Sev::Sev1, format!("substrate failure: {detail}"))
            }
            OpenTrigger::Operator { severity, .. } => (
                severity.unwrap_or(Sev::Sev3),
                "opened by an operator".to_owned(),
            ),
        };
        self.open(trigger, severity, reason, now, out);
    }

    /// An exhausted ladder on a component an incident covers: its timeline
    /// says so, and it may raise the severity.
    fn ladder_joins(
        &mut self,
        id: &str,
        severity: Sev,
        reason: String,
        history: Value,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        let Some(incident) = self.touch(id, now, |_| {}) else {
            return;
        };
        out.push(Effect::Publish(Box::new(incident.clone())));
        timeline(out, id, now, "ladder_exhausted", reason.clone(), history);
        if severity < incident.severity {
            self.change_severity(id, severity, reason, now, out);
            self.apply_freeze(id, now, out);
        }
    }

    /// Decides to open a new incident: first its id.
    pub(super) fn open(
        &mut self,
        trigger: OpenTrigger,
        severity: Sev,
        reason: String,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        out.push(Effect::ClaimId {
            date: now.strftime("%Y%m%d").to_string(),
            draft: Draft {
                trigger,
                severity,
                reason,
            },
        });
    }

    /// The id is claimed: write the record and ask for the evidence.
    pub(super) fn on_claimed(
        &mut self,
        id: String,
        draft: Draft,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        let Draft {
            trigger,
            severity,
            reason,
        } = draft;
        let at = stamp(now);
        let (components, probes, sessions) = trigger.scope();
        let incident = Incident {
            id: id.clone(),
            severity,
            status: IncidentStatus::Open,
            title: title_of(&trigger),
            components,
            probes,
            sessions,
            resolved_sessions: BTreeSet::new(),
            opened_at: at.clone(),
            updated_at: at.clone(),
            resolved_at: None,
            trigger,
            last_update_at: at.clone(),
            severity_history: vec![SeverityChange {
                at,
                from: None,
                to: severity,
                reason: reason.clone(),
            }],
            evidence: Vec::new(),
            opened_seq: 0,
            notices_sent: 0,
            notices_requested: 0,
            deliveries_read: 0,
            last_update_tick: None,
            opened_tick: None,
        };
        out.push(Effect::Save(Box::new(incident.clone())));
        if let OpenTrigger::Issue { .. } = &incident.trigger {
            let details = serde_json::to_value(&incident.trigger).unwrap_or_default();
            let text = format!("wake requested: {}", incident.title);
            timeline(out, &id, now, "wake", text, details);
        }
        timeline(
            out,
            &id,
            now,
            "opened",
            format!("opened as {severity}: {reason}"),
            json!({ "severity": severity, "title": incident.title }),
        );
        // Evidence first: nothing else sees the incident before this is on disk.
        out.push(Effect::Snapshot(Box::new(Snapshot {
            id,
            probes: incident.probes.iter().cloned().collect(),
            components: incident.components.clone(),
            sessions: incident.sessions.iter().cloned().collect(),
            label: "issue".to_owned(),
            with_config: true,
            then: AfterEvidence::Opening {
                incident: Box::new(incident),
                reason,
                opened: now,
            },
        })));
    }

    /// Evidence written: a new incident becomes visible, or a join goes on.
    pub(super) fn on_evidence(
        &mut self,
        files: Vec<String>,
        then: AfterEvidence,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        match then {
            AfterEvidence::Opening {
                incident,
                reason,
                opened,
            } => self.publish_new(*incident, files, reason, opened, now, out),
            AfterEvidence::Joined(joined) => {
                if let Some(incident) = self.touch(&joined.id, now, |i| i.evidence.extend(files)) {
                    out.push(Effect::Publish(Box::new(incident.clone())));
                    out.push(Effect::Save(Box::new(incident)));
                }
                self.join_rest(*joined, now, out);
            }
        }
    }

    /// The evidence of a new incident is written: freeze, publish, and only
    /// then append `incident.opened`.
    fn publish_new(
        &mut self,
        mut incident: Incident,
        files: Vec<String>,
        reason: String,
        opened: Timestamp,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        let id = incident.id.clone();
        incident.evidence = files;
        out.push(Effect::Save(Box::new(incident.clone())));
        timeline(
            out,
            &id,
            now,
            "evidence",
            format!("{} evidence file(s) written", incident.evidence.len()),
            json!({ "files": incident.evidence }),
        );
        // A freezing incident freezes its components before it becomes
        // visible: an action waiting for this incident's evidence then sees
        // the freeze together with the evidence, never the evidence alone.
        // The freeze is recorded right after `incident.opened`.
        let (freezing, frozen) = self.mark_freeze(&incident, out);
        self.incidents.insert(
            id.clone(),
            Tracked {
                incident: incident.clone(),
                opened,
                last_update: opened,
            },
        );
        out.push(Effect::Publish(Box::new(incident.clone())));
        let row = row(
            &incident,
            &ev::Opened {
                id: id.clone(),
                severity: incident.severity,
                title: incident.title.clone(),
                reason: reason.clone(),
                evidence: incident.evidence.clone(),
                trigger: incident.trigger.clone(),
            },
        );
        let row = match incident.sessions.iter().next() {
            Some(session) => row.session(session.clone()),
            None => row,
        };
        out.push(Effect::Append {
            row,
            then: Some(AfterAppend::Opened {
                id,
                freezing,
                frozen,
                reason,
            }),
        });
    }

    /// `incident.opened` is in the log: its seq keys the notices, then the
    /// freeze is recorded and the opening notice goes out.
    pub(super) fn on_appended(
        &mut self,
        seq: Option<u64>,
        then: AfterAppend,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        let AfterAppend::Opened {
            id,
            freezing,
            frozen,
            reason,
        } = then;
        if let Some(seq) = seq
            && let Some(incident) = self.touch(&id, now, |i| i.opened_seq = seq)
        {
            out.push(Effect::Publish(Box::new(incident.clone())));
            out.push(Effect::Save(Box::new(incident)));
        }
        let Some(incident) = self.incident(&id).cloned() else {
            return;
        };
        out.push(Effect::Log(Log::Opened {
            id: id.clone(),
            severity: incident.severity,
        }));
        record_freeze(out, &incident, freezing, frozen, now);
        let summary = format!(
            "{id} opened as {}: {reason}. Components: {}.",
            incident.severity,
            join_set(&incident.components)
        );
        let notice = self.notice(&incident, "incident_opened", summary, Vec::new(), now);
        out.push(Effect::Notify {
            notice: Box::new(notice),
            then: AfterNotice::Opened { id },
        });
    }
}

/// The incident's title, from what opened it.
pub(super) fn title_of(trigger: &OpenTrigger) -> String {
    match trigger {
        OpenTrigger::Issue {
            probe,
            component,
            category,
            ..
        } => format!("{component}: {category} ({probe})"),
        OpenTrigger::LadderExhausted { component, .. } => {
            format!("{component}: escalation ladder exhausted")
        }
        OpenTrigger::Meltdown { .. } => "Warden's supervision tree melted down".to_owned(),
        OpenTrigger::Substrate { detail } => format!("substrate: {detail}"),
        OpenTrigger::Operator { title, .. } => title.clone(),
    }
}

fn join_set(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "none".to_owned()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}
