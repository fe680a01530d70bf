//! Notices, the update cadence and resolution: every message about an
//! incident goes out through the outbox here, and a resolved incident gets
//! its postmortem packet.

use super::*;

/// Sends a notice about `incident` to every notifier that wants it and
/// records the deliveries in the timeline.
pub(super) async fn notify(
    state: &mut CommanderState,
    incident: &Incident,
    kind: &str,
    summary: String,
    actions: Vec<String>,
) -> Result<u32, IncidentError> {
    let resolved = incident.status == IncidentStatus::Resolved;
    let count = incident.notices_sent;
    let notice = Notice {
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
        category: "incident".to_owned(),
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
        at: now_rfc3339(),
        details: json!({
            "incident": incident.id,
            "severity": incident.severity,
            "status": incident.status,
            "components": incident.components,
            "probes": incident.probes,
        }),
    };
    let deliveries = state.args.outbox.send(&notice, Route::Subscribed).await;
    let sent = deliveries
        .iter()
        .filter(|d| d.outcome == DeliveryOutcome::Sent)
        .count() as u32;
    if deliveries.is_empty() {
        return Ok(0);
    }
    timeline(
        state,
        &incident.id,
        TimelineEntry::now(
            "notification",
            format!("{kind} sent to {sent} of {} notifier(s)", deliveries.len()),
            serde_json::to_value(&deliveries).unwrap_or_default(),
        ),
    )?;
    if let Some(updated) = update(&state.args.store, &incident.id, |i| i.notices_sent += sent) {
        save(state, &updated)?;
    }
    Ok(sent)
}

/// The conversation an incident's notices belong to: that of the issue
/// that opened it, so each notifier hears the issue and its incident as one
/// story (one PagerDuty alert); otherwise the incident's own id.
pub(super) fn conversation(incident: &Incident) -> String {
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

pub(super) async fn on_tick(state: &mut CommanderState) {
    let now = Instant::now();
    let active: Vec<Incident> = state
        .args
        .store
        .iter()
        .filter(|i| i.is_active())
        .map(|i| i.clone())
        .collect();
    for incident in active {
        let cycles = state.args.settings.resolve_after_healthy_cycles;
        if auto_resolvable(&incident)
            && impact_stopped(&incident.probes, &state.args.history, cycles).is_ok()
        {
            let note = format!(
                "impact stopped: every affected probe healthy for {cycles} observation(s) in a row"
            );
            if let Err(error) = on_resolve(state, &incident.id, note, false, "warden").await {
                tracing::error!(error = %error, id = %incident.id, "Could not auto-resolve an incident.");
            }
            continue;
        }
        let last = incident.last_update_tick.unwrap_or(now);
        if cadence_due(&state.args.settings.cadence, incident.severity, last, now) {
            logged(send_update(state, &incident.id, now).await);
        }
    }
}

/// The scheduled update: what changed since the last one, current impact,
/// mitigation status and next actions.
pub(super) async fn send_update(
    state: &mut CommanderState,
    id: &str,
    now: Instant,
) -> Result<(), IncidentError> {
    let Some(incident) = state.args.store.get(id).map(|i| i.clone()) else {
        return Ok(());
    };
    let changes: Vec<TimelineEntry> = disk::read_timeline(&state.root, id)?
        .into_iter()
        .filter(|e| e.at > incident.last_update_at && e.kind != "update")
        .collect();
    let unhealthy: Vec<String> = incident
        .probes
        .iter()
        .filter_map(|probe| {
            let latest = state.args.latest.get(probe)?;
            latest
                .status
                .is_failing()
                .then(|| format!("{probe} ({})", latest.status.as_str()))
        })
        .collect();
    let frozen: Vec<String> = state
        .args
        .freeze
        .iter()
        .filter(|e| e.value() == id)
        .map(|e| e.key().clone())
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
    let cycles = state.args.settings.resolve_after_healthy_cycles;
    let actions = if unhealthy.is_empty() {
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
    let sent = notify(
        state,
        &incident,
        "incident_update",
        summary,
        actions.clone(),
    )
    .await?;
    let stamp = now_rfc3339();
    let Some(updated) = update(&state.args.store, id, |i| {
        i.last_update_at = stamp.clone();
        i.last_update_tick = Some(now);
    }) else {
        return Ok(());
    };
    save(state, &updated)?;
    timeline(
        state,
        id,
        TimelineEntry::now(
            "update",
            format!("update sent ({} change(s), {impact})", changes.len()),
            json!({ "changes": changes.len(), "unhealthy": unhealthy, "actions": actions }),
        ),
    )?;
    audit(
        state,
        row(
            "incident.update_sent",
            &updated,
            json!({
                "id": id,
                "severity": updated.severity,
                "changes": changes.len(),
                "unhealthy": unhealthy,
                "delivered": sent,
            }),
        ),
    )
    .await;
    Ok(())
}

pub(super) async fn on_resolve(
    state: &mut CommanderState,
    id: &str,
    note: String,
    force: bool,
    by: &str,
) -> Result<(), CommandError> {
    let incident = state
        .args
        .store
        .get(id)
        .map(|i| i.clone())
        .ok_or_else(|| CommandError::Unknown(id.to_owned()))?;
    if incident.status == IncidentStatus::Resolved {
        return Err(CommandError::Resolved {
            id: id.to_owned(),
            already: true,
        });
    }
    if !force {
        impact_stopped(
            &incident.probes,
            &state.args.history,
            state.args.settings.resolve_after_healthy_cycles,
        )?;
    }
    let stamp = now_rfc3339();
    let Some(incident) = update(&state.args.store, id, |i| {
        i.status = IncidentStatus::Resolved;
        i.resolved_at = Some(stamp.clone());
    }) else {
        return Err(CommandError::Unknown(id.to_owned()));
    };
    save(state, &incident)?;
    apply_freeze(state, id).await?;
    timeline(
        state,
        id,
        TimelineEntry::now(
            "resolved",
            format!(
                "resolved by {by}{}: {note}",
                if force { " (forced)" } else { "" }
            ),
            json!({ "force": force, "by": by }),
        ),
    )?;
    // The packet exists before the row that says the incident is resolved,
    // so whoever reacts to the row finds it; it is written again below once
    // the resolution notice is in the timeline.
    write_packet(state, id, &incident)?;
    audit(
        state,
        row(
            "incident.resolved",
            &incident,
            json!({
                "id": id,
                "severity": incident.severity,
                "note": note,
                "force": force,
                "by": by,
                "duration_s": postmortem::duration_s(&incident),
            }),
        ),
    )
    .await;
    notify(
        state,
        &incident,
        "incident_resolved",
        format!("{id} resolved: {note}"),
        vec![format!(
            "fill in the postmortem under incidents/{id}/postmortem.md"
        )],
    )
    .await?;
    let incident = state
        .args
        .store
        .get(id)
        .map(|i| i.clone())
        .unwrap_or(incident);
    write_packet(state, id, &incident)?;
    tracing::info!(id = %id, force, "Incident resolved; postmortem written.");
    Ok(())
}

/// Writes the postmortem packet (markdown and JSON) from the timeline on disk.
pub(super) fn write_packet(
    state: &CommanderState,
    id: &str,
    incident: &Incident,
) -> Result<(), IncidentError> {
    let entries = disk::read_timeline(&state.root, id)?;
    let (markdown, json) = postmortem::build(incident, &entries);
    disk::write_postmortem(&state.root, id, &markdown, &json)
}
