//! The rungs of the ladder: the fix envelope's step and a tier's step (a
//! webhook call or a page through a notifier), each verified before the
//! cycle climbs on.

use super::*;

pub(super) async fn fix_step(
    ctx: &CycleContext,
    record: &mut CycleRecord,
    attempt: u32,
    disabled: bool,
    warn: bool,
    signal: &mut watch::Receiver<Signal>,
    open: &watch::Receiver<BTreeSet<String>>,
) -> Outcome {
    let fix = &ctx.component.fix;
    let action = fix.action.kind.map(|kind| kind.as_str().to_owned());
    let enabled = !disabled && fix.enabled && fix.action.kind.is_some();
    let skip = if enabled {
        record
            .last_fix_at_ms
            .map(|at| {
                let now = jiff::Timestamp::now().as_millisecond();
                Duration::from_millis(u64::try_from(now.saturating_sub(at)).unwrap_or(0))
            })
            .filter(|ago| *ago < fix.cooldown)
            .map(|ago| {
                format!(
                    "cooldown: the fix ran {} ago (cooldown {})",
                    humantime::format_duration(Duration::from_secs(ago.as_secs())),
                    humantime::format_duration(fix.cooldown)
                )
            })
    } else {
        Some("the fix envelope is disabled".to_owned())
    };
    if let Some(reason) = skip {
        if warn {
            warn_operator(ctx, record).await;
        }
        record.history.record(
            HistoryKind::Fix,
            "fix",
            attempt,
            format!("skipped: {reason}"),
            json!({ "action": action }),
        );
        let _ = emit(
            ctx,
            record,
            &esc::FixAttempted {
                component: ctx.component.name.clone(),
                attempt,
                action: action.clone(),
                outcome: "skipped".to_owned(),
                reason: Some(reason.clone()),
                started_seq: None,
                duration_ms: None,
                output_excerpt: None,
                error: None,
            },
        )
        .await;
        ctx.timeline(
            record,
            "fix",
            format!("fix skipped: {reason}"),
            json!({ "attempt": attempt, "action": action, "outcome": "skipped", "reason": reason }),
        );
        return Outcome::Next;
    }
    let started = match start_action(
        ctx,
        record,
        esc::ActionStarted {
            attempt: Some(attempt),
            kind: action.clone(),
            ..action_started(ctx, "fix")
        },
        enabled,
    )
    .await
    {
        Ok(seq) => seq,
        Err(reason) => return Outcome::Held(reason),
    };
    if warn {
        warn_operator(ctx, record).await;
    }
    let hook = ManagedRestart {
        name: ctx.managed.clone(),
    };
    let outcome: FixOutcome = run_fix(&fix.action, &ctx.http, &hook).await;
    record.last_fix_at_ms = Some(jiff::Timestamp::now().as_millisecond());
    let result = if outcome.ok { "succeeded" } else { "failed" };
    record.history.record(
        HistoryKind::Fix,
        "fix",
        attempt,
        format!("{} {result}", action.clone().unwrap_or_default()),
        json!({ "output": outcome.output_excerpt, "error": outcome.error }),
    );
    let _ = emit(
        ctx,
        record,
        &esc::FixAttempted {
            component: ctx.component.name.clone(),
            attempt,
            action: action.clone(),
            outcome: result.to_owned(),
            reason: None,
            started_seq: Some(started),
            duration_ms: Some(outcome.duration_ms),
            output_excerpt: Some(outcome.output_excerpt.clone()),
            error: outcome.error.clone(),
        },
    )
    .await;
    let fix_timeline = |record: &CycleRecord, outcome_name: &str, text: String| {
        ctx.timeline(
            record,
            "fix",
            text,
            json!({ "attempt": attempt, "action": action, "outcome": outcome_name, "ran": result, "duration_ms": outcome.duration_ms }),
        );
    };
    let action_name = action.clone().unwrap_or_default();
    if !outcome.ok {
        fix_timeline(record, "failed", format!("fix {action_name} failed"));
        return Outcome::Next;
    }
    let healthy = verify(ctx, fix.verify_timeout, signal).await;
    let _ = emit(
        ctx,
        record,
        &esc::Verified {
            component: ctx.component.name.clone(),
            after: "fix".to_owned(),
            attempt,
            healthy,
            claimed: None,
        },
    )
    .await;
    if healthy {
        fix_timeline(
            record,
            "verified_healthy",
            format!("fix {action_name} ran and the probes were verified healthy"),
        );
        Outcome::Healed("fix".into())
    } else if open.borrow().is_empty() {
        fix_timeline(
            record,
            "resolved",
            format!("fix {action_name} ran; the issue resolved without a verified healthy check"),
        );
        Outcome::Resolved
    } else {
        fix_timeline(
            record,
            "not_healed",
            format!("fix {action_name} ran but the probes did not recover"),
        );
        record.history.record(
            HistoryKind::Rejection,
            "fix",
            attempt,
            "the fix ran but the probes did not recover",
            json!({}),
        );
        Outcome::Next
    }
}

pub(super) async fn tier_step(
    ctx: &CycleContext,
    record: &mut CycleRecord,
    index: usize,
    attempt: u32,
    warn: bool,
    signal: &mut watch::Receiver<Signal>,
) -> Outcome {
    let Some(tier) = ctx.component.tiers.get(index).cloned() else {
        return Outcome::Next;
    };
    if !tier.is_enabled() {
        if warn {
            warn_operator(ctx, record).await;
        }
        let reason = "the tier is disabled";
        record.history.record(
            HistoryKind::Tier,
            &tier.name,
            attempt,
            format!("skipped: {reason}"),
            json!({}),
        );
        let _ = emit(
            ctx,
            record,
            &esc::TierCalled {
                reason: Some(reason.to_owned()),
                ..tier_called(ctx, &tier.name, attempt, "skipped")
            },
        )
        .await;
        ctx.timeline(
            record,
            "tier",
            format!("{} skipped: {reason}", tier.name),
            json!({ "attempt": attempt, "outcome": "skipped" }),
        );
        return Outcome::Next;
    }
    let Some(kind) = tier.kind.map(TierKind::as_str) else {
        return Outcome::Next;
    };
    let started = match start_action(
        ctx,
        record,
        esc::ActionStarted {
            attempt: Some(attempt),
            kind: Some(kind.to_owned()),
            tier: Some(tier.name.clone()),
            ..action_started(ctx, "tier")
        },
        tier.is_enabled(),
    )
    .await
    {
        Ok(seq) => seq,
        Err(reason) => return Outcome::Held(reason),
    };
    if warn {
        warn_operator(ctx, record).await;
    }
    let context = json!({
        "component": ctx.component.name,
        "description": ctx.component.description,
        "caller_session_id": record.session,
        "tier": tier.name,
        "attempt": attempt,
        "history": record.history.to_context(None),
    });
    match tier.kind {
        Some(TierKind::Webhook) => {
            let url = tier.url.clone().unwrap_or_else(|| SecretUrl::new(""));
            let key = format!(
                "{}:{}:{attempt}",
                record.session.clone().unwrap_or_default(),
                tier.name
            );
            let answer = call_webhook(
                &url,
                &tier.headers,
                tier.timeout(),
                &ctx.http,
                &key,
                &context,
            )
            .await;
            let status = match answer.status {
                TierStatus::Fixed => "fixed",
                TierStatus::Rejected => "rejected",
                TierStatus::InProgress => "in_progress",
                TierStatus::Failed => "failed",
            }
            .to_owned();
            record.history.record(HistoryKind::Tier,
                &tier.name,
                attempt,
                format!("{} answered {status}", tier.name),
                json!({ "notes": answer.notes, "error": answer.error, "patch": answer.patch.is_some() }),
            );
            let _ = emit(
                ctx,
                record,
                &esc::TierCalled {
                    kind: Some("webhook".to_owned()),
                    started_seq: Some(started),
                    notes: answer.notes.clone(),
                    http_status: answer.http_status,
                    error: answer.error.clone(),
                    duration_ms: Some(answer.duration_ms),
                    context_entries: Some(record.history.entries().len()),
                    ..tier_called(ctx, &tier.name, attempt, &status)
                },
            )
            .await;
            let tier_timeline = |record: &CycleRecord, outcome: &str, text: String| {
                ctx.timeline(
                    record,
                    "tier",
                    text,
                    json!({ "attempt": attempt, "tier": tier.name, "answer": status, "outcome": outcome, "notes": answer.notes }),
                );
            };
            if let Some(patch) = &answer.patch
                && answer.status == TierStatus::Fixed
            {
                let patch_start = esc::ActionStarted {
                    tier: Some(tier.name.clone()),
                    ..action_started(ctx, "patch")
                };
                match start_action(ctx, record, patch_start, true).await {
                    Ok(patch_started) => {
                        apply_patch(ctx, record, &tier.name, patch, patch_started).await;
                    }
                    Err(reason) => {
                        let _ = emit(
                            ctx,
                            record,
                            &esc::StepSkipped {
                                component: ctx.component.name.clone(),
                                reason: reason.clone(),
                                waiting: false,
                                action: Some("patch".to_owned()),
                                tier: Some(tier.name.clone()),
                            },
                        )
                        .await;
                        ctx.timeline(
                            record,
                            "patch",
                            format!("patch from {} not applied: {reason}", tier.name),
                            json!({ "tier": tier.name, "outcome": "skipped", "reason": reason }),
                        );
                    }
                }
            }
            match answer.status {
                TierStatus::Fixed | TierStatus::InProgress => {
                    // "fixed" is believed only once the probes agree.
                    let healthy = verify(ctx, ctx.component.fix.verify_timeout, signal).await;
                    let _ = emit(
                        ctx,
                        record,
                        &esc::Verified {
                            component: ctx.component.name.clone(),
                            after: tier.name.clone(),
                            attempt,
                            healthy,
                            claimed: Some(status.clone()),
                        },
                    )
                    .await;
                    if healthy {
                        tier_timeline(
                            record,
                            "verified_healthy",
                            format!(
                                "{} answered {status}; the probes were verified healthy",
                                tier.name
                            ),
                        );
                        return Outcome::Healed(tier.name.clone());
                    }
                    tier_timeline(
                        record,
                        "not_healed",
                        format!(
                            "{} answered {status} but the probes did not recover",
                            tier.name
                        ),
                    );
                    record.history.record(
                        HistoryKind::Rejection,
                        &tier.name,
                        attempt,
                        format!("{} said {status} but the probes did not recover", tier.name),
                        json!({}),
                    );
                    Outcome::Next
                }
                _ => {
                    tier_timeline(record, &status, format!("{} answered {status}", tier.name));
                    Outcome::Next
                }
            }
        }
        Some(TierKind::Notifier) => {
            let name = tier.notifier.clone().unwrap_or_default();
            let seq = emit(
                ctx,
                record,
                &esc::TierCalled {
                    kind: Some("notifier".to_owned()),
                    notifier: Some(name.clone()),
                    started_seq: Some(started),
                    ..tier_called(ctx, &tier.name, attempt, "paging")
                },
            )
            .await;
            let notice = notice(
                ctx,
                record,
                seq.unwrap_or(0),
                "escalation",
                Severity::Critical,
                format!("{}: escalated to {}", ctx.component.name, tier.name),
                format!(
                    "Self-heal did not restore {}. Escalation history: {}",
                    ctx.component.name,
                    summary_line(&record.history)
                ),
            );
            // The page goes out through the notice ledger like every other
            // notice; the tier's outcome is the notifier's first answer, as
            // the wake consumer records it (it keeps offering a refused page).
            let outbox = ctx.outbox();
            let paged = match outbox.request(&notice, Route::Only(&name)).await {
                Ok(Some(seq)) => match outbox.outcome(seq, &name, outbox.patience(&name)).await {
                    Some(DeliveryOutcome::Sent) => "sent",
                    // The notifier already carries this conversation as firing.
                    Some(DeliveryOutcome::Folded) => "already paged",
                    Some(DeliveryOutcome::Failed) => "failed",
                    None => "no answer in time",
                },
                Ok(None) => "not routed (min_severity or matchers)",
                Err(error) => {
                    tracing::error!(error = %error, "Could not request a page.");
                    "not requested (audit log)"
                }
            };
            let delivered = matches!(paged, "sent" | "already paged");
            record.history.record(
                HistoryKind::Tier,
                &tier.name,
                attempt,
                format!("paged through {name}: {paged}"),
                json!({}),
            );
            // A person needs time: give them the verification window before climbing on.
            let healthy = verify(ctx, ctx.component.fix.verify_timeout, signal).await;
            let outcome = match (healthy, delivered) {
                (true, _) => "verified_healthy",
                (false, true) => "paged",
                (false, false) => "page_failed",
            };
            ctx.timeline(
                record,
                "tier",
                format!("{} paged through {name} ({paged})", tier.name),
                json!({ "attempt": attempt, "tier": tier.name, "notifier": name, "delivered": delivered, "outcome": outcome }),
            );
            if healthy {
                return Outcome::Healed(tier.name.clone());
            }
            Outcome::Next
        }
        None => Outcome::Next,
    }
}
