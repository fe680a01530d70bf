//! Operators' and escalation's requests on an existing incident: a note, a
//! severity change, a timeline entry.

use super::*;

impl CommanderCore {
    /// An operator's note; a resolved incident takes notes too (findings
    /// often come after the fact).
    pub(super) fn on_note(
        &mut self,
        id: &str,
        text: String,
        author: Option<String>,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) -> Result<(), Refusal> {
        let incident = self
            .touch(id, now, |_| {})
            .ok_or_else(|| Refusal::Unknown(id.to_owned()))?;
        out.push(Effect::Publish(Box::new(incident.clone())));
        let by = author.as_deref().unwrap_or("operator");
        let entry_text = format!("{by}: {text}");
        timeline(
            out,
            id,
            now,
            "note",
            entry_text,
            json!({ "author": author }),
        );
        out.push(Effect::Save(Box::new(incident.clone())));
        let row = row(
            &incident,
            &ev::Note {
                id: id.to_owned(),
                text,
                author,
            },
        );
        out.push(Effect::Append { row, then: None });
        Ok(())
    }

    /// An operator's severity change; refused once resolved (the
    /// postmortem has the final rating), a no-op when nothing changes.
    pub(super) fn on_set_severity(
        &mut self,
        id: &str,
        severity: Sev,
        reason: String,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) -> Result<(), Refusal> {
        let incident = self
            .incident(id)
            .ok_or_else(|| Refusal::Unknown(id.to_owned()))?;
        if incident.status == IncidentStatus::Resolved {
            return Err(Refusal::Resolved {
                id: id.to_owned(),
                already: false,
            });
        }
        if incident.severity == severity {
            return Ok(());
        }
        self.change_severity(id, severity, format!("operator: {reason}"), now, out);
        self.apply_freeze(id, now, out);
        Ok(())
    }

    /// Appends `entry` to the open incident of `session`, else the best
    /// open one covering `component`; dropped (logged) when none matches.
    pub(super) fn on_timeline(
        &mut self,
        session: Option<String>,
        component: Option<String>,
        entry: TimelineEntry,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        let by_session = session.as_ref().and_then(|session| {
            self.incidents()
                .find(|i| i.is_active() && i.sessions.contains(session))
                .map(|i| i.id.clone())
        });
        let id = by_session.or_else(|| {
            let component = component.as_ref()?;
            best(
                self.incidents()
                    .filter(|i| i.is_active() && i.components.contains(component)),
            )
            .map(|i| i.id.clone())
        });
        let Some(id) = id else {
            let kind = entry.kind;
            out.push(Effect::Log(Log::Dropped { kind }));
            return;
        };
        out.push(Effect::Timeline {
            id: id.clone(),
            entry,
        });
        if let Some(incident) = self.touch(&id, now, |_| {}) {
            out.push(Effect::Publish(Box::new(incident.clone())));
            out.push(Effect::Save(Box::new(incident)));
        }
    }
}
