//! Opening an incident: the rating, the evidence written before anything
//! else sees it, the freeze, the `incident.opened` row and its notice.

use super::*;

pub(super) async fn on_open(
    state: &mut CommanderState,
    trigger: OpenTrigger,
) -> Result<String, IncidentError> {
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
                criticality: criticality(state, component),
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
                criticality: criticality(state, component),
                ladder_exhausted: true,
                important_components_down: 1,
            });
            let reason = format!("escalation ladder exhausted on {component}");
            // The ladder belongs to whatever incident already covers the component.
            if let Some(id) = related(state, session.as_deref(), component) {
                let incident = update(&state.args.store, &id, |_| {});
                timeline(
                    state,
                    &id,
                    TimelineEntry::now("ladder_exhausted", reason.clone(), history.clone()),
                )?;
                if let Some(incident) = incident
                    && severity < incident.severity
                {
                    change_severity(state, &id, severity, reason).await?;
                    apply_freeze(state, &id).await?;
                }
                return Ok(id);
            }
            (severity, reason)
        }
        OpenTrigger::Meltdown { .. } => (Sev::Sev1, "the supervision tree melted down".to_owned()),
        OpenTrigger::Substrate { detail } => (Sev::Sev1, format!("substrate failure: {detail}")),
        OpenTrigger::Operator { severity, .. } => (
            severity.unwrap_or(Sev::Sev3),
            "opened by an operator".to_owned(),
        ),
    };
    open(state, trigger, severity, reason).await
}

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

/// Opens a new incident: claim an id, write the record, write the evidence,
/// publish it in the store, and only then append `incident.opened`.
pub(super) async fn open(
    state: &mut CommanderState,
    trigger: OpenTrigger,
    severity: Sev,
    reason: String,
) -> Result<String, IncidentError> {
    let date = jiff::Timestamp::now().strftime("%Y%m%d").to_string();
    let root = state.root.clone();
    let id = tokio::task::spawn_blocking(move || disk::claim_id(&root, &date))
        .await
        .map_err(|error| IncidentError::Io {
            path: state.root.clone(),
            source: std::io::Error::other(error.to_string()),
        })??;
    let now = now_rfc3339();
    let mut components = BTreeSet::new();
    let mut probes = BTreeSet::new();
    let mut sessions = BTreeSet::new();
    match &trigger {
        OpenTrigger::Issue {
            caller_session_id,
            probe,
            component,
            ..
        } => {
            components.insert(component.clone());
            probes.insert(probe.clone());
            sessions.extend(caller_session_id.iter().cloned());
        }
        OpenTrigger::LadderExhausted { component, .. } => {
            components.insert(component.clone());
        }
        OpenTrigger::Operator {
            components: named, ..
        } => components.extend(named.iter().cloned()),
        OpenTrigger::Meltdown { .. } | OpenTrigger::Substrate { .. } => {}
    }
    let tick = Instant::now();
    let mut incident = Incident {
        id: id.clone(),
        severity,
        status: IncidentStatus::Open,
        title: title_of(&trigger),
        components,
        probes,
        sessions,
        resolved_sessions: BTreeSet::new(),
        opened_at: now.clone(),
        updated_at: now.clone(),
        resolved_at: None,
        trigger,
        last_update_at: now.clone(),
        severity_history: vec![SeverityChange {
            at: now,
            from: None,
            to: severity,
            reason: reason.clone(),
        }],
        evidence: Vec::new(),
        opened_seq: 0,
        notices_sent: 0,
        last_update_tick: Some(tick),
        opened_tick: Some(tick),
    };
    save(state, &incident)?;
    if let OpenTrigger::Issue { .. } = &incident.trigger {
        timeline(
            state,
            &id,
            TimelineEntry::now(
                "wake",
                format!("wake requested: {}", incident.title),
                serde_json::to_value(&incident.trigger).unwrap_or_default(),
            ),
        )?;
    }
    timeline(
        state,
        &id,
        TimelineEntry::now(
            "opened",
            format!("opened as {severity}: {reason}"),
            json!({ "severity": severity, "title": incident.title }),
        ),
    )?;

    // Evidence first: nothing else sees the incident before this is on disk.
    let mut probes: Vec<String> = incident.probes.iter().cloned().collect();
    for observation in state.args.latest.iter() {
        if incident.components.contains(&observation.component)
            && !probes.contains(&observation.probe)
        {
            probes.push(observation.probe.clone());
        }
    }
    let sessions: Vec<String> = incident.sessions.iter().cloned().collect();
    incident.evidence = snapshot(state, &id, &probes, &sessions, "issue", true).await?;
    save(state, &incident)?;
    timeline(
        state,
        &id,
        TimelineEntry::now(
            "evidence",
            format!("{} evidence file(s) written", incident.evidence.len()),
            json!({ "files": incident.evidence }),
        ),
    )?;
    // A freezing incident freezes its components before it becomes visible:
    // an action waiting for this incident's evidence then sees the freeze
    // together with the evidence, never the evidence alone. The freeze is
    // recorded right after `incident.opened`.
    let (freezing, frozen) = mark_freeze(state, &incident);
    state.args.store.insert(id.clone(), incident.clone());

    let opened = row(
        "incident.opened",
        &incident,
        json!({
            "id": id,
            "severity": severity,
            "title": incident.title,
            "reason": reason,
            "evidence": incident.evidence,
            "trigger": incident.trigger,
        }),
    );
    let opened = match incident.sessions.iter().next() {
        Some(session) => opened.session(session.clone()),
        None => opened,
    };
    if let Some(seq) = audit(state, opened).await
        && let Some(updated) = update(&state.args.store, &id, |i| i.opened_seq = seq)
    {
        save(state, &updated)?;
    }
    tracing::info!(id = %id, severity = %severity, "Incident opened.");
    record_freeze(state, &incident, freezing, frozen).await?;
    if let Some(incident) = state.args.store.get(&id).map(|i| i.clone()) {
        let summary = format!(
            "{} opened as {severity}: {reason}. Components: {}.",
            incident.id,
            join_set(&incident.components)
        );
        notify(state, &incident, "incident_opened", summary, Vec::new()).await?;
    }
    Ok(id)
}

pub(super) fn join_set(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "none".to_owned()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Writes evidence files for `probes` and `sessions` (and the effective
/// config when `with_config`), returning their relative paths.
pub(super) async fn snapshot(
    state: &CommanderState,
    id: &str,
    probes: &[String],
    sessions: &[String],
    label: &str,
    with_config: bool,
) -> Result<Vec<String>, IncidentError> {
    let observations: serde_json::Map<String, Value> = probes
        .iter()
        .map(|probe| {
            let history = state
                .args
                .history
                .get(probe)
                .map(|h| h.iter().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            let latest = state.args.latest.get(probe).map(|o| o.clone());
            (
                probe.clone(),
                json!({ "latest": latest, "history": history }),
            )
        })
        .collect();
    let root = state.root.clone();
    let id = id.to_owned();
    let audit_dir = state.args.audit_dir.clone();
    let sessions = sessions.to_vec();
    let max_rows = state.args.settings.evidence_rows;
    let config = with_config.then(|| state.args.effective_config.clone());
    let state_dir = state.args.state_dir.clone();
    let label = label.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut written = Vec::new();
        written.push(disk::write_evidence(
            &root,
            &id,
            &format!("{label}-observations"),
            &Value::Object(observations),
        )?);
        written.push(disk::write_evidence(
            &root,
            &id,
            &format!("{label}-audit"),
            &audit_rows(&audit_dir, &sessions, max_rows),
        )?);
        if let Some(config) = config {
            // A reference, not a copy: the version is stored once per digest.
            let reference = match config.store(&state_dir) {
                Ok(stored) => json!({
                    "config_digest": stored.digest,
                    "path": stored.path,
                    "size": stored.size,
                    "note": "the effective configuration (secrets shown as ***) is stored once per version; path is relative to the state dir",
                }),
                Err(error) => json!({ "error": error.to_string() }),
            };
            written.push(disk::write_evidence(
                &root,
                &id,
                "effective-config",
                &reference,
            )?);
        }
        Ok(written)
    })
    .await
    .map_err(|error| IncidentError::Io {
        path: state.root.clone(),
        source: std::io::Error::other(error.to_string()),
    })?
}

/// Rows scanned when a session id does not say where its story starts.
pub(super) const UNBOUNDED_SCAN_ROWS: u64 = 50_000;

/// The first seq worth reading for `sessions`: a story id ends in the seq of
/// its first row (`probe:<probe>:<category>:<seq>`), and no row of the story
/// comes before it. Ids without one fall back to the log's last rows.
pub(super) fn scan_start(reader: &AuditReader, sessions: &[String]) -> u64 {
    let starts: Option<Vec<u64>> = sessions
        .iter()
        .map(|s| s.rsplit(':').next().and_then(|tail| tail.parse().ok()))
        .collect();
    match starts.and_then(|starts| starts.into_iter().min()) {
        Some(first) => first,
        None => reader
            .last_seq()
            .ok()
            .flatten()
            .map_or(1, |last| last.saturating_sub(UNBOUNDED_SCAN_ROWS).max(1)),
    }
}

/// The last `max_rows` audit rows of `sessions`, read from where the oldest
/// story begins (not the whole log: an incident storm must not cost a full
/// scan per incident).
pub(super) fn audit_rows(
    audit_dir: &std::path::Path,
    sessions: &[String],
    max_rows: usize,
) -> Value {
    if sessions.is_empty() {
        return json!({ "sessions": sessions, "rows": [], "note": "no caller session joined" });
    }
    let reader = match AuditReader::open(audit_dir) {
        Ok(reader) => reader,
        Err(error) => {
            return json!({ "sessions": sessions, "rows": [], "error": error.to_string() });
        }
    };
    let mut rows = VecDeque::new();
    let mut corrupt = 0u64;
    let mut dropped = 0u64;
    for row in reader.rows_from(scan_start(&reader, sessions), None) {
        match row {
            Ok(row)
                if row
                    .caller_session_id
                    .as_ref()
                    .is_some_and(|s| sessions.contains(s)) =>
            {
                rows.push_back(row);
                if rows.len() > max_rows {
                    rows.pop_front();
                    dropped += 1;
                }
            }
            Ok(_) => {}
            Err(_) => corrupt += 1,
        }
    }
    json!({ "sessions": sessions, "rows": rows, "older_rows_dropped": dropped, "corrupt_rows_skipped": corrupt })
}
