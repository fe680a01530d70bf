//! What operators and the escalation ask of an open incident: a severity
//! change, a freeze, a note, a timeline entry.

use super::*;

pub(super) async fn change_severity(
    state: &mut CommanderState,
    id: &str,
    severity: Sev,
    reason: String,
) -> Result<(), IncidentError> {
    let mut from = None;
    let Some(incident) = update(&state.args.store, id, |incident| {
        from = Some(incident.severity);
        incident.severity = severity;
        incident.severity_history.push(SeverityChange {
            at: now_rfc3339(),
            from: Some(from.unwrap_or(severity)),
            to: severity,
            reason: reason.clone(),
        });
    }) else {
        return Ok(());
    };
    let from = from.unwrap_or(severity);
    save(state, &incident)?;
    timeline(
        state,
        id,
        TimelineEntry::now(
            "severity",
            format!("severity {from} → {severity}: {reason}"),
            json!({ "from": from, "to": severity }),
        ),
    )?;
    audit(
        state,
        row(
            "incident.severity_changed",
            &incident,
            json!({ "id": id, "from": from, "to": severity, "reason": reason }),
        ),
    )
    .await;
    Ok(())
}

/// Freezes the incident's components while it is open at a freezing
/// severity; unfreezes them otherwise.
pub(super) async fn apply_freeze(
    state: &mut CommanderState,
    id: &str,
) -> Result<(), IncidentError> {
    let Some(incident) = state.args.store.get(id).map(|i| i.clone()) else {
        return Ok(());
    };
    let (should, changed) = mark_freeze(state, &incident);
    record_freeze(state, &incident, should, changed).await
}

/// Updates the `FreezeSet` for `incident` (not yet recorded): whether it
/// freezes, and the components whose state changed.
pub(super) fn mark_freeze(state: &CommanderState, incident: &Incident) -> (bool, Vec<String>) {
    let id = incident.id.as_str();
    let should = incident.status == IncidentStatus::Open
        && freezes(incident.severity, state.args.settings.freeze_automation_at);
    let freeze = &state.args.freeze;
    let mut changed = Vec::new();
    if should {
        for component in &incident.components {
            if !freeze.contains_key(component) {
                freeze.insert(component.clone(), id.to_owned());
                changed.push(component.clone());
            }
        }
    } else {
        freeze.retain(|component, owner| {
            let mine = owner == id;
            if mine {
                changed.push(component.clone());
            }
            !mine
        });
    }
    (should, changed)
}

/// Records a change [`mark_freeze`] made: timeline entry and audit row.
pub(super) async fn record_freeze(
    state: &mut CommanderState,
    incident: &Incident,
    should: bool,
    changed: Vec<String>,
) -> Result<(), IncidentError> {
    let id = incident.id.as_str();
    if changed.is_empty() {
        return Ok(());
    }
    let (kind, seam, verb) = if should {
        ("freeze", "incident.automation_frozen", "frozen")
    } else {
        ("unfreeze", "incident.automation_unfrozen", "unfrozen")
    };
    timeline(
        state,
        id,
        TimelineEntry::now(
            kind,
            format!("automation {verb} on {}", changed.join(", ")),
            json!({ "components": changed }),
        ),
    )?;
    audit(
        state,
        row(seam, incident, json!({ "id": id, "components": changed })),
    )
    .await;
    Ok(())
}

pub(super) async fn on_note(
    state: &mut CommanderState,
    id: &str,
    text: String,
    author: Option<String>,
) -> Result<(), CommandError> {
    let incident = update(&state.args.store, id, |_| {})
        .ok_or_else(|| CommandError::Unknown(id.to_owned()))?;
    let by = author.as_deref().unwrap_or("operator");
    timeline(
        state,
        id,
        TimelineEntry::now("note", format!("{by}: {text}"), json!({ "author": author })),
    )?;
    save(state, &incident)?;
    audit(
        state,
        row(
            "incident.note",
            &incident,
            json!({ "id": id, "text": text, "author": author }),
        ),
    )
    .await;
    Ok(())
}

pub(super) async fn on_set_severity(
    state: &mut CommanderState,
    id: &str,
    severity: Sev,
    reason: String,
) -> Result<(), CommandError> {
    let current = state
        .args
        .store
        .get(id)
        .map(|i| (i.severity, i.status))
        .ok_or_else(|| CommandError::Unknown(id.to_owned()))?;
    if current.1 == IncidentStatus::Resolved {
        return Err(CommandError::Resolved {
            id: id.to_owned(),
            already: false,
        });
    }
    if current.0 == severity {
        return Ok(());
    }
    change_severity(state, id, severity, format!("operator: {reason}")).await?;
    Ok(apply_freeze(state, id).await?)
}

pub(super) fn on_timeline(
    state: &mut CommanderState,
    session: Option<String>,
    component: Option<String>,
    kind: String,
    text: String,
    details: Value,
) -> Result<(), IncidentError> {
    let store = &state.args.store;
    let by_session = session.as_ref().and_then(|session| {
        store
            .iter()
            .find(|i| i.is_active() && i.sessions.contains(session))
            .map(|i| i.id.clone())
    });
    let id = by_session.or_else(|| {
        component.as_ref().and_then(|component| {
            let found: Vec<Incident> = store
                .iter()
                .filter(|i| i.is_active() && i.components.contains(component))
                .map(|i| i.clone())
                .collect();
            best(&found).map(|i| i.id.clone())
        })
    });
    let Some(id) = id else {
        tracing::debug!(kind = %kind, "No open incident for a timeline entry; dropped.");
        return Ok(());
    };
    timeline(state, &id, TimelineEntry::now(kind, text, details))?;
    if let Some(incident) = update(&state.args.store, &id, |_| {}) {
        save(state, &incident)?;
    }
    Ok(())
}
