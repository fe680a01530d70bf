//! How a ladder ends: the operator's warning, an exhausted ladder (rollback
//! to the snapshot, or no rollback when nothing was snapshotted), automation
//! stopped after two exhaustions in a row, and their notices.

use super::*;

pub(super) fn notice(
    ctx: &CycleContext,
    record: &CycleRecord,
    seq: u64,
    kind: &str,
    severity: Severity,
    title: String,
    summary: String,
) -> Notice {
    Notice {
        idempotency_key: format!("warden-{seq}"),
        seq,
        caller_session_id: record.session.clone(),
        group: None,
        probe: String::new(),
        component: ctx.component.name.clone(),
        severity,
        category: "escalation".into(),
        kind: kind.into(),
        status: NoticeStatus::Firing,
        title,
        summary,
        actions: Vec::new(),
        runbook: None,
        at: jiff::Timestamp::now().to_string(),
        details: json!({ "history": record.history.to_context(None) }),
    }
}

/// Requests a notice for every notifier that takes it; the wake consumer
/// delivers it from the log, retrying until each took it.
pub(super) async fn broadcast(ctx: &CycleContext, notice: &Notice) {
    if let Err(error) = ctx.outbox().request(notice, Route::Subscribed).await {
        tracing::error!(error = %error, kind = %notice.kind, "Could not request an escalation notice.");
    }
}

pub(super) async fn warn_operator(ctx: &CycleContext, record: &CycleRecord) {
    let attempts = record.ladder.as_ref().map_or(0, EscalationLadder::attempts);
    let seq = emit(
        ctx,
        record,
        &esc::Warning {
            component: ctx.component.name.clone(),
            attempts,
            threshold: ctx.component.warning_threshold,
        },
    )
    .await;
    let notice = notice(
        ctx,
        record,
        seq.unwrap_or(0),
        "escalation_warning",
        Severity::Warning,
        format!("{}: escalating", ctx.component.name),
        format!(
            "{} escalation step(s) so far for {}: {}",
            attempts,
            ctx.component.name,
            summary_line(&record.history)
        ),
    );
    broadcast(ctx, &notice).await;
}

/// The ladder is exhausted: roll back (first time) or stop automation
/// (second time in a row). Returns the hold that kept the rollback from
/// starting, with the record untouched, so the cycle waits and tries again.
pub(super) async fn exhausted(
    ctx: &CycleContext,
    record: &mut CycleRecord,
    warn: bool,
) -> Option<String> {
    let stopping = record.exhaustions_in_row + 1 >= 2;
    if !stopping && ctx.component.rollback.snapshot.is_empty() {
        return nothing_to_roll_back(ctx, record, warn).await;
    }
    let started = if stopping {
        None
    } else {
        let rollback = esc::ActionStarted {
            managed_restart: Some(ctx.managed.is_some()),
            ..action_started(ctx, "rollback")
        };
        match start_action(ctx, record, rollback, true).await {
            Ok(seq) => Some(seq),
            Err(reason) => return Some(reason),
        }
    };
    if warn {
        warn_operator(ctx, record).await;
    }
    record.active = false;
    record.exhaustions_in_row += 1;
    if stopping {
        record.automation_stopped = true;
        let seq = emit(
            ctx,
            record,
            &esc::AutomationStopped {
                component: ctx.component.name.clone(),
                exhaustions_in_row: record.exhaustions_in_row,
                history: record.history.to_context(None),
            },
        )
        .await;
        let notice = notice(
            ctx,
            record,
            seq.unwrap_or(0),
            "automation_stopped",
            Severity::Critical,
            format!(
                "{}: ladder exhausted twice; automation stopped",
                ctx.component.name
            ),
            format!(
                "The escalation ladder of {} was exhausted twice in a row without a verified heal. Warden will not act on it again until restarted; it needs a person now.",
                ctx.component.name
            ),
        );
        broadcast(ctx, &notice).await;
        ctx.timeline(
            record,
            "rollback",
            "ladder exhausted twice in a row; automation stopped".into(),
            json!({ "seq": seq, "outcome": "automation_stopped" }),
        );
        return None;
    }
    let restore = Snapshots::restore(&ctx.state_dir, &ctx.component.name);
    let restored = match &restore {
        Ok(report) => {
            json!({ "restored": report.restored, "missing": report.missing, "taken_at": report.taken_at })
        }
        Err(error) => json!({ "error": error.to_string() }),
    };
    let restart = if ctx.managed.is_some() {
        Some(
            ManagedRestart {
                name: ctx.managed.clone(),
            }
            .restart()
            .await,
        )
    } else {
        None
    };
    let seq = emit(
        ctx,
        record,
        &esc::RolledBack {
            component: ctx.component.name.clone(),
            restored,
            restarted: restart.as_ref().map(|r| match r {
                Ok(done) => done.clone(),
                Err(error) => format!("failed: {error}"),
            }),
            started_seq: started,
            history: record.history.to_context(None),
        },
    )
    .await;
    let notice = notice(
        ctx,
        record,
        seq.unwrap_or(0),
        "rolled_back",
        Severity::Critical,
        format!(
            "{}: ladder exhausted; configuration rolled back to last-known-good",
            ctx.component.name
        ),
        format!(
            "Every rung of {}'s escalation ladder was tried without a verified heal. Its snapshot was restored{}. History: {}",
            ctx.component.name,
            if restart.is_some() {
                " and the process restarted"
            } else {
                ""
            },
            summary_line(&record.history)
        ),
    );
    broadcast(ctx, &notice).await;
    let (outcome, text) = match (&restore, &restart) {
        (Err(error), _) => (
            "failed",
            format!("ladder exhausted; restoring last-known-good failed: {error}"),
        ),
        (Ok(_), Some(Err(error))) => (
            "restart_failed",
            format!("ladder exhausted; last-known-good restored, but the restart failed: {error}"),
        ),
        (Ok(_), _) => (
            "rolled_back",
            "ladder exhausted; last-known-good restored".to_owned(),
        ),
    };
    ctx.timeline(
        record,
        "rollback",
        text,
        json!({ "seq": seq, "outcome": outcome }),
    );
    ctx.tell_commander(crate::incidents::IncidentMsg::Open {
        trigger: crate::incidents::OpenTrigger::LadderExhausted {
            component: ctx.component.name.clone(),
            history: record.history.to_context(None),
            session: record.session.clone(),
        },
        reply: None,
    });
    record.ladder = None;
    None
}

/// The ladder is exhausted and the component has no `rollback.snapshot`:
/// there is nothing to restore, so no rollback happens. A managed process
/// is still restarted, the ladder's last resort (the restart is an action
/// and waits out a hold like any other). The operator hears it as a
/// warning, not as a rollback that never happened.
pub(super) async fn nothing_to_roll_back(
    ctx: &CycleContext,
    record: &mut CycleRecord,
    warn: bool,
) -> Option<String> {
    let started = if ctx.managed.is_some() {
        let restart = esc::ActionStarted {
            managed_restart: Some(true),
            ..action_started(ctx, "restart")
        };
        match start_action(ctx, record, restart, true).await {
            Ok(seq) => Some(seq),
            Err(reason) => return Some(reason),
        }
    } else {
        None
    };
    if warn {
        warn_operator(ctx, record).await;
    }
    record.active = false;
    record.exhaustions_in_row += 1;
    let restart = match started {
        Some(_) => Some(
            ManagedRestart {
                name: ctx.managed.clone(),
            }
            .restart()
            .await,
        ),
        None => None,
    };
    let restarted = restart.as_ref().map(|r| match r {
        Ok(done) => done.clone(),
        Err(error) => format!("failed: {error}"),
    });
    let seq = emit(
        ctx,
        record,
        &esc::Exhausted {
            component: ctx.component.name.clone(),
            rolled_back: false,
            reason: "nothing was snapshotted".to_owned(),
            restarted,
            started_seq: started,
            history: record.history.to_context(None),
        },
    )
    .await;
    let (did, outcome) = match &restart {
        Some(Ok(_)) => ("Its process was restarted", "restarted"),
        Some(Err(_)) => ("Restarting its process failed", "restart_failed"),
        None => ("Nothing was restarted", "nothing_to_roll_back"),
    };
    let tried = if record.history.entries().next().is_some() {
        format!(" History: {}", summary_line(&record.history))
    } else {
        String::new()
    };
    let notice = notice(
        ctx,
        record,
        seq.unwrap_or(0),
        "exhausted",
        Severity::Warning,
        format!(
            "{}: ladder exhausted; no rollback (nothing was snapshotted)",
            ctx.component.name
        ),
        format!(
            "Warden has tried everything configured for {}. No rollback.snapshot is configured, so no rollback happened. {did}; if it is still unhealthy it needs a person.{tried}",
            ctx.component.name
        ),
    );
    broadcast(ctx, &notice).await;
    ctx.timeline(
        record,
        "rollback",
        format!("ladder exhausted; nothing was snapshotted, so no rollback happened. {did}"),
        json!({ "seq": seq, "outcome": outcome }),
    );
    ctx.tell_commander(crate::incidents::IncidentMsg::Open {
        trigger: crate::incidents::OpenTrigger::LadderExhausted {
            component: ctx.component.name.clone(),
            history: record.history.to_context(None),
            session: record.session.clone(),
        },
        reply: None,
    });
    record.ladder = None;
    None
}

/// The last few history entries in one line, for notices.
pub(super) fn summary_line(history: &EscalationHistory) -> String {
    let entries: Vec<String> = history.entries().map(|e| e.summary.clone()).collect();
    let start = entries.len().saturating_sub(6);
    entries[start..].join("; ")
}
