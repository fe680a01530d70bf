//! Notices, the update cadence and resolution: what every notice about an
//! incident says, when an update is due, and when an incident is over.

use super::*;
use crate::notify::{DeliveryOutcome, NoticeStatus};

/// An update found due, waiting for the timeline on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingUpdate {
    /// The incident.
    pub id: String,
    /// When it was found due; the next is due a cadence after this.
    pub at: Timestamp,
    /// Its failing probes then (`probe (status)`).
    pub unhealthy: Vec<String>,
}

/// An update notice sent, waiting to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The incident.
    pub id: String,
    /// When it was found due.
    pub at: Timestamp,
    /// Timeline entries since the last update.
    pub changes: usize,
    /// Failing probes.
    pub unhealthy: Vec<String>,
    /// The next actions it named.
    pub actions: Vec<String>,
    /// The impact line.
    pub impact: String,
}

impl CommanderCore {
    /// The notice about `incident`: one conversation with the issue that
    /// opened it, keyed per kind and count so a retry is not sent twice.
    pub(super) fn notice(
        &self,
        incident: &Incident,
        kind: &str,
        summary: String,
        actions: Vec<String>,
        now: Timestamp,
    ) -> Notice {
        let resolved = incident.status == IncidentStatus::Resolved;
        let count = incident.notices_requested;
        Notice {
            idempotency_key: format!("warden-{}-{kind}-{count}", incident.id),
            seq: incident.opened_seq,
            caller_session_id: Some(incident.id.clone()),
            group: Some(conversation(incident)),
            probe: incident.probes.iter().next().cloned().unwrap_or_default(),
            component: incident
                .components
                .iter()
                .next()
                .cloned()
                .unwrap_or_default(),
            severity: incident.severity.notice_severity(),
            category: super::super::intake::INCIDENT_CATEGORY.to_owned(),
            kind: kind.to_owned(),
            status: if resolved {
                NoticeStatus::Resolved
            } else {
                NoticeStatus::Firing
            },
            title: format!("[{}] {} {}", incident.severity, incident.id, incident.title),
            summary,
            actions,
            runbook: None,
            at: stamp(now),
            details: json!({
                "incident": incident.id,
                "severity": incident.severity,
                "status": incident.status,
                "components": incident.components,
                "probes": incident.probes,
            }),
        }
    }

    /// A notice was requested (the wake consumer delivers it from the log):
    /// note it, then go on with `then`.
    pub(super) fn on_requested(
        &mut self,
        seq: Option<u64>,
        then: AfterNotice,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        let (id, kind) = (then.id().to_owned(), then.kind());
        let (text, details) = match seq {
            Some(seq) => (format!("{kind} notice requested"), json!({ "seq": seq })),
            None => (format!("{kind}: no notifier takes it"), json!({})),
        };
        timeline(out, &id, now, "notification", text, details);
        if seq.is_some()
            && let Some(incident) = self.touch(&id, now, |i| i.notices_requested += 1)
        {
            out.push(Effect::Publish(Box::new(incident.clone())));
            out.push(Effect::Save(Box::new(incident)));
        }
        match then {
            AfterNotice::Opened { id } => out.push(Effect::Reply(Reply::Opened(id))),
            AfterNotice::Update(update) => self.record_update(*update, seq, now, out),
            AfterNotice::Resolved { id, force } => {
                // Written again now that the resolution notice is in the timeline.
                if let Some(incident) = self.incident(&id) {
                    out.push(Effect::Postmortem(Box::new(incident.clone())));
                }
                out.push(Effect::Log(Log::Resolved { id, force }));
                out.push(Effect::Reply(Reply::Done(Ok(()))));
            }
        }
    }

    /// One notifier's handling of one of the incident's notices: in its
    /// timeline, counted when sent. Rows at or before the last one taken in
    /// are replays and change nothing.
    pub(super) fn on_delivery(
        &mut self,
        seq: u64,
        id: &str,
        delivered: &crate::events::Delivered,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        let Some(incident) = self.incident(id) else {
            return;
        };
        if seq <= incident.deliveries_read {
            return;
        }
        let (kind, notifier) = (&delivered.kind, &delivered.notifier);
        let text = match delivered.outcome {
            DeliveryOutcome::Sent => format!("{kind} sent to {notifier}"),
            DeliveryOutcome::Folded => format!("{kind} folded at {notifier} (already told)"),
            DeliveryOutcome::Failed => format!(
                "{kind} failed at {notifier} ({}); offered again",
                delivered.error.as_deref().unwrap_or("refused")
            ),
        };
        let details = serde_json::to_value(delivered).unwrap_or_default();
        timeline(out, id, now, "notification", text, details);
        let sent = u32::from(delivered.outcome == DeliveryOutcome::Sent);
        let Some(incident) = self.touch(id, now, |i| {
            i.deliveries_read = seq;
            i.notices_sent += sent;
        }) else {
            return;
        };
        out.push(Effect::Publish(Box::new(incident.clone())));
        out.push(Effect::Save(Box::new(incident.clone())));
        // The postmortem lists notices; the resolution's arrive after it.
        if incident.status == IncidentStatus::Resolved {
            out.push(Effect::Postmortem(Box::new(incident)));
        }
    }

    /// Resolution comes before the cadence: an incident whose impact stopped
    /// gets its resolution notice, not one more update.
    pub(super) fn on_tick(
        &mut self,
        id: &str,
        probes: &Probes,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        let Some(tracked) = self.incidents.get(id) else {
            return;
        };
        let incident = &tracked.incident;
        if !incident.is_active() {
            return;
        }
        let cycles = self.config.settings.resolve_after_healthy_cycles;
        if auto_resolvable(incident) && impact_stopped(incident, probes, cycles).is_ok() {
            let note = format!(
                "impact stopped: every affected probe healthy for {cycles} observation(s) in a row"
            );
            self.resolve(id, note, false, "warden", now, out);
            return;
        }
        let every = self.config.settings.cadence.of(incident.severity);
        if every.is_some_and(|every| elapsed(tracked.last_update, now) >= every) {
            let unhealthy = incident
                .probes
                .iter()
                .filter_map(|probe| {
                    let latest = probes.get(probe)?.latest?;
                    latest
                        .is_failing()
                        .then(|| format!("{probe} ({})", latest.as_str()))
                })
                .collect();
            out.push(Effect::ReadTimeline(PendingUpdate {
                id: id.to_owned(),
                at: now,
                unhealthy,
            }));
        }
    }

    /// The scheduled update: what changed since the last one, current
    /// impact, mitigation status and next actions.
    pub(super) fn on_timeline_read(
        &mut self,
        entries: &[TimelineEntry],
        then: PendingUpdate,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        let PendingUpdate { id, at, unhealthy } = then;
        let Some(incident) = self.incident(&id) else {
            return;
        };
        let changes: Vec<&TimelineEntry> = entries
            .iter()
            .filter(|e| e.at > incident.last_update_at && e.kind != "update")
            .collect();
        let frozen: Vec<&str> = self
            .frozen
            .iter()
            .filter(|(_, owner)| **owner == id)
            .map(|(component, _)| component.as_str())
            .collect();
        let change_text = if changes.is_empty() {
            "nothing new".to_owned()
        } else {
            changes
                .iter()
                .map(|e| format!("{} {}", e.kind, e.text))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let impact = if unhealthy.is_empty() {
            "no affected probe is failing now".to_owned()
        } else {
            format!("failing now: {}", unhealthy.join(", "))
        };
        let mitigation = format!(
            "status {}; automation frozen on {}",
            incident.status.as_str(),
            if frozen.is_empty() {
                "nothing".to_owned()
            } else {
                frozen.join(", ")
            }
        );
        let cycles = self.config.settings.resolve_after_healthy_cycles;
        let actions: Vec<String> = if unhealthy.is_empty() {
            vec![format!(
                "confirm recovery; the incident resolves once every probe is healthy for {cycles} observations"
            )]
        } else {
            unhealthy
                .iter()
                .map(|p| format!("restore {p}"))
                .chain(std::iter::once(format!(
                    "add findings with `warden incidents note {id} <text>`"
                )))
                .collect()
        };
        let summary = format!(
            "Since the last update: {change_text}. Impact: {impact}. Mitigation: {mitigation}."
        );
        let notice = self.notice(incident, "incident_update", summary, actions.clone(), now);
        let update = Update {
            changes: changes.len(),
            id,
            at,
            unhealthy,
            actions,
            impact,
        };
        out.push(Effect::Notify {
            notice: Box::new(notice),
            then: AfterNotice::Update(Box::new(update)),
        });
    }

    /// The update went out: the cadence restarts from when it was due.
    fn record_update(
        &mut self,
        update: Update,
        notice_seq: Option<u64>,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        let Update {
            id,
            at,
            changes,
            unhealthy,
            actions,
            impact,
        } = update;
        let Some(tracked) = self.incidents.get_mut(&id) else {
            return;
        };
        tracked.last_update = at;
        let Some(updated) = self.touch(&id, now, |i| i.last_update_at = stamp(now)) else {
            return;
        };
        out.push(Effect::Publish(Box::new(updated.clone())));
        out.push(Effect::Save(Box::new(updated.clone())));
        timeline(
            out,
            &id,
            now,
            "update",
            format!("update sent ({changes} change(s), {impact})"),
            json!({ "changes": changes, "unhealthy": unhealthy, "actions": actions }),
        );
        let row = row(
            &updated,
            &ev::UpdateSent {
                id,
                severity: updated.severity,
                changes,
                unhealthy,
                notice_seq,
            },
        );
        out.push(Effect::Append { row, then: None });
    }

    /// An operator's resolution: refused for an unknown or resolved
    /// incident, and while impact is ongoing unless forced.
    pub(super) fn on_resolve(
        &mut self,
        id: &str,
        note: String,
        force: bool,
        probes: &Probes,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) -> Result<(), Refusal> {
        let incident = self
            .incident(id)
            .ok_or_else(|| Refusal::Unknown(id.to_owned()))?;
        if incident.status == IncidentStatus::Resolved {
            return Err(Refusal::Resolved {
                id: id.to_owned(),
                already: true,
            });
        }
        if !force {
            let cycles = self.config.settings.resolve_after_healthy_cycles;
            impact_stopped(incident, probes, cycles).map_err(Refusal::ImpactOngoing)?;
        }
        self.resolve(id, note, force, "operator", now, out);
        Ok(())
    }

    /// Resolves an active incident (the checks are the caller's): record,
    /// unfreeze, timeline, postmortem, row, notice.
    fn resolve(
        &mut self,
        id: &str,
        note: String,
        force: bool,
        by: &str,
        now: Timestamp,
        out: &mut Vec<Effect>,
    ) {
        let Some(incident) = self.touch(id, now, |i| {
            i.status = IncidentStatus::Resolved;
            i.resolved_at = Some(stamp(now));
        }) else {
            return;
        };
        out.push(Effect::Publish(Box::new(incident.clone())));
        out.push(Effect::Save(Box::new(incident.clone())));
        self.apply_freeze(id, now, out);
        timeline(
            out,
            id,
            now,
            "resolved",
            format!(
                "resolved by {by}{}: {note}",
                if force { " (forced)" } else { "" }
            ),
            json!({ "force": force, "by": by }),
        );
        // The packet exists before the row that says the incident is
        // resolved, so whoever reacts to the row finds it.
        out.push(Effect::Postmortem(Box::new(incident.clone())));
        let resolved = row(
            &incident,
            &ev::Resolved {
                id: id.to_owned(),
                severity: incident.severity,
                note: note.clone(),
                force,
                by: by.to_owned(),
                duration_s: postmortem::duration_s(&incident),
            },
        );
        out.push(Effect::Append {
            row: resolved,
            then: None,
        });
        let notice = self.notice(
            &incident,
            "incident_resolved",
            format!("{id} resolved: {note}"),
            vec![format!(
                "fill in the postmortem under incidents/{id}/postmortem.md"
            )],
            now,
        );
        out.push(Effect::Notify {
            notice: Box::new(notice),
            then: AfterNotice::Resolved {
                id: id.to_owned(),
                force,
            },
        });
    }
}

/// The conversation an incident's notices belong to: that of the issue
/// that opened it, so each notifier hears the issue and its incident as one
/// story (one PagerDuty alert); otherwise the incident's own id.
fn conversation(incident: &Incident) -> String {
    match &incident.trigger {
        OpenTrigger::Issue {
            caller_session_id: Some(session),
            ..
        }
        | OpenTrigger::LadderExhausted {
            session: Some(session),
            ..
        } => session.clone(),
        _ => incident.id.clone(),
    }
}
