//! The commander's intake of issues: reading the log after its cursor, and
//! what an issue row does to the incidents (open, join, resolve).

use super::*;

pub(super) fn criticality(state: &CommanderState, component: &str) -> Criticality {
    state
        .args
        .criticality
        .get(component)
        .copied()
        .unwrap_or_default()
}

/// The active incident an issue on `component` (with `session`) belongs to.
pub(super) fn related(
    state: &CommanderState,
    session: Option<&str>,
    component: &str,
) -> Option<String> {
    let now = Instant::now();
    let window = state.args.settings.related_window;
    let candidates: Vec<Incident> = state
        .args
        .store
        .iter()
        .filter(|incident| {
            let since = incident
                .opened_tick
                .map_or(Duration::MAX, |t| now.saturating_duration_since(t));
            joins(
                incident,
                session,
                component,
                &state.args.depends_on,
                since,
                window,
            )
        })
        .map(|incident| incident.clone())
        .collect();
    best(&candidates).map(|incident| incident.id.clone())
}

/// Handles one issue row inside a span that continues its trace.
pub(super) async fn issue(state: &mut CommanderState, event: IssueEvent) {
    let span = tracing::info_span!(parent: None, "incident.issue", actor = "incidents", probe = %event.probe);
    crate::telemetry::trace::continue_from(&span, event.traceparent.as_deref());
    logged(on_issue(state, event).instrument(span).await)
}

/// Handles the issue rows after the cursor, a batch at a time, and moves
/// the cursor (with the critical tally) after each batch. A crash replays
/// at most one batch, which is harmless: a session an incident holds joins
/// it again instead of opening another. A cursor that cannot be written
/// fails the actor, so its supervisor restarts it from the last good one.
pub(super) async fn pump(state: &mut CommanderState) -> Result<(), ActorProcessingErr> {
    loop {
        let batch = state.intake.next_batch();
        let Some(&(last, _)) = batch.last() else {
            return Ok(());
        };
        let full = batch.len() >= crate::incidents::intake::BATCH;
        for (_, event) in batch {
            if let Some(event) = event {
                issue(state, event).await;
            }
        }
        state.handled = last;
        store_progress(state, false)?;
        if !full {
            return Ok(());
        }
    }
}

/// How often, at most, the cursor and the tally are written during a burst:
/// each write is two fsyncs on the disk the audit log syncs on, and a crash
/// only replays what the cursor has not passed (harmlessly, see [`pump`]).
pub(super) const STORE_EVERY: Duration = Duration::from_millis(200);

/// Writes the cursor and the tally if they moved and `STORE_EVERY` passed
/// (or `now`: at stop, and on the tick so a quiet log is not left behind).
pub(super) fn store_progress(
    state: &mut CommanderState,
    now: bool,
) -> Result<(), ActorProcessingErr> {
    let (seq, at) = state.stored;
    if state.handled > seq && (now || at.elapsed() >= STORE_EVERY) {
        state.intake.store(&Progress {
            seq: state.handled,
            open_critical: state.open_critical.clone(),
        })?;
        state.stored = (state.handled, Instant::now());
    }
    Ok(())
}

pub(super) async fn on_issue(
    state: &mut CommanderState,
    event: IssueEvent,
) -> Result<(), IncidentError> {
    let session = event.caller_session_id.as_deref();
    match event.seam.as_str() {
        "probe.wake_requested" => {
            if event.severity == Severity::Critical
                && let Some(session) = session
            {
                state
                    .open_critical
                    .entry(event.component.clone())
                    .or_default()
                    .insert(session.to_owned());
            }
            let important_down = state
                .open_critical
                .iter()
                .filter(|(component, sessions)| {
                    !sessions.is_empty() && is_important(criticality(state, component))
                })
                .count();
            let severity = rate(&SeverityFacts {
                category: &event.category,
                issue: event.severity,
                criticality: criticality(state, &event.component),
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
            if let Some(id) = related(state, session, &event.component) {
                join(state, &id, &event, Some((severity, reason))).await
            } else if severity <= Sev::Sev3 {
                let trigger = OpenTrigger::Issue {
                    caller_session_id: event.caller_session_id.clone(),
                    probe: event.probe.clone(),
                    component: event.component.clone(),
                    category: event.category.clone(),
                    severity: event.severity,
                    seq: event.seq,
                };
                open(state, trigger, severity, reason).await.map(|_| ())
            } else {
                Ok(())
            }
        }
        // Recorded or unstable issues join what is open but never open anything.
        "probe.wake_suppressed" | "probe.flapping" => {
            match related(state, session, &event.component) {
                Some(id) => join(state, &id, &event, None).await,
                None => Ok(()),
            }
        }
        "probe.resolved" => {
            if let Some(session) = session {
                for sessions in state.open_critical.values_mut() {
                    sessions.remove(session);
                }
                issue_resolved(state, session, &event).await?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Attaches an issue to incident `id`, raising its severity when the issue
/// rates worse, and snapshots evidence for a probe new to the incident.
pub(super) async fn join(
    state: &mut CommanderState,
    id: &str,
    event: &IssueEvent,
    rating: Option<(Sev, String)>,
) -> Result<(), IncidentError> {
    let mut new_probe = false;
    let mut known_session = false;
    let Some(incident) = update(&state.args.store, id, |incident| {
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
        return Ok(());
    };
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
    timeline(
        state,
        id,
        TimelineEntry::now(kind, text, serde_json::to_value(event).unwrap_or_default()),
    )?;
    save(state, &incident)?;
    if new_probe {
        let sessions: Vec<String> = event.caller_session_id.iter().cloned().collect();
        let file = format!("joined-{}", event.probe);
        let written = snapshot(
            state,
            id,
            std::slice::from_ref(&event.probe),
            &sessions,
            &file,
            false,
        )
        .await?;
        if let Some(incident) = update(&state.args.store, id, |i| i.evidence.extend(written)) {
            save(state, &incident)?;
        }
    }
    if !known_session
        && let Some(seq) = audit(
            state,
            row(
                "incident.joined",
                &incident,
                json!({ "id": id, "probe": event.probe, "issue_seq": event.seq, "seam": event.seam }),
            )
            .session(event.caller_session_id.clone().unwrap_or_default()),
        )
        .await
    {
        tracing::debug!(seq, id, "Issue joined an incident.");
    }
    if let Some((severity, reason)) = rating
        && severity < incident.severity
    {
        change_severity(state, id, severity, reason).await?;
    }
    apply_freeze(state, id).await
}

pub(super) async fn issue_resolved(
    state: &mut CommanderState,
    session: &str,
    event: &IssueEvent,
) -> Result<(), IncidentError> {
    let ids: Vec<String> = state
        .args
        .store
        .iter()
        .filter(|i| i.is_active() && i.sessions.contains(session))
        .map(|i| i.id.clone())
        .collect();
    for id in ids {
        let mut mitigated = false;
        let Some(incident) = update(&state.args.store, &id, |incident| {
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
        timeline(
            state,
            &id,
            TimelineEntry::now(
                "issue_resolved",
                format!("{} recovered ({})", event.probe, event.category),
                json!({ "caller_session_id": session, "seq": event.seq }),
            ),
        )?;
        save(state, &incident)?;
        if mitigated {
            timeline(
                state,
                &id,
                TimelineEntry::now(
                    "mitigated",
                    "every issue of the incident has resolved; waiting for the probes to stay healthy",
                    Value::Null,
                ),
            )?;
            audit(
                state,
                row("incident.mitigated", &incident, json!({ "id": id })),
            )
            .await;
            apply_freeze(state, &id).await?;
        }
    }
    Ok(())
}
