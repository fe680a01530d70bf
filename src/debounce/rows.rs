//! How a debounce effect is written down: the audit row of each effect
//! (`probe.wake_requested`, `probe.flapping`, `probe.wake_suppressed`,
//! `probe.resolved`, `probe.flapping_settled`) and its metric labels.

use super::actor::{DebouncerArgs, ProbeRules};
use super::state::{Effect, Suppression, WakeKind};
use crate::audit::{NewRow, SEQ_PLACEHOLDER};
use crate::events;
use crate::events::Event as _;
use crate::messages::Observation;
use crate::settings::Severity;

/// The `event` and `reason` labels of an effect's row.
pub(super) fn effect_labels(effect: &Effect) -> (&'static str, &'static str) {
    match effect {
        Effect::Wake { kind, .. } => (kind.as_str(), ""),
        Effect::Suppressed { reason, .. } => (
            "suppressed",
            match reason {
                Suppression::Window { .. } => "window",
                Suppression::Dependency(_) => "dependency",
                Suppression::Maintenance(_) => "maintenance",
                Suppression::Flapping => "flapping",
            },
        ),
        Effect::Resolved { .. } => ("resolved", ""),
        Effect::FlappingSettled { .. } => ("flapping_settled", ""),
    }
}

pub(super) fn effect_key(effect: &Effect, rules: &ProbeRules) -> (String, Severity) {
    match effect {
        Effect::Wake {
            category, severity, ..
        }
        | Effect::Suppressed {
            category, severity, ..
        }
        | Effect::Resolved {
            category, severity, ..
        } => (category.clone(), *severity),
        Effect::FlappingSettled { category } => (category.clone(), rules.severity),
    }
}

fn suppression(reason: &Suppression) -> events::Suppression {
    let (reason, by) = match reason {
        Suppression::Window { .. } => ("window", None),
        Suppression::Dependency(dependency) => ("dependency", Some(dependency.clone())),
        Suppression::Maintenance(window) => ("maintenance", Some(window.clone())),
        Suppression::Flapping => ("flapping", None),
    };
    events::Suppression {
        reason: reason.to_owned(),
        suppressed_by: by,
    }
}

fn title(probe: &str, category: &str, kind: &WakeKind, stage: Option<&str>) -> String {
    match (kind, stage) {
        (WakeKind::Flapping, _) => format!("{probe} is flapping"),
        (_, Some("expired")) => format!("{probe}: credential has expired"),
        (_, Some(stage)) => format!("{probe}: credential expires within {stage}"),
        (WakeKind::Reminder, None) => format!("{probe} is still failing ({category})"),
        _ => format!("{probe}: {}", category.replace('_', " ")),
    }
}

/// The component's other open issues now, for a wake row. Only the
/// component's own probes are looked at (a scan of the whole store made a
/// burst of issues cost O(probes²)).
fn other_open_issues(args: &DebouncerArgs, probe: &str, component: &str) -> Vec<events::OpenIssue> {
    args.config
        .probes_of(component)
        .iter()
        .filter(|other| *other != probe)
        .filter_map(|other| {
            let entry = args.store.get(other)?;
            let issue = entry.machine.open_issue()?;
            Some(events::OpenIssue {
                probe: other.clone(),
                category: issue.category.clone(),
                severity: issue.severity,
                woken: issue.woken,
                caller_session_id: entry.session.clone(),
            })
        })
        .take(events::OPEN_ISSUES_IN_ROW)
        .collect()
}

pub(super) fn effect_row(
    args: &DebouncerArgs,
    probe: &str,
    rules: &ProbeRules,
    effect: &Effect,
    observation: Option<Observation>,
    session: Option<&str>,
    // Called with the row's seam and story id (`{seq}` still in it when
    // the row starts a story) before the event is encoded: opens the
    // row's span and answers its `traceparent`, which goes into the event.
    trace: impl FnOnce(&str, &str) -> Option<String>,
) -> NewRow {
    let snapshot = observation.or_else(|| args.latest.get(probe).map(|o| o.clone()));
    let detail = snapshot
        .as_ref()
        .map(|o| o.reasons.join("; "))
        .unwrap_or_default();
    let new_story = |category: &str| format!("probe:{probe}:{category}:{SEQ_PLACEHOLDER}");
    let (row, session) = match effect {
        Effect::Wake {
            kind,
            category,
            severity,
            consecutive_failures,
            stage,
            reminder,
        } => {
            let session = match (kind, session) {
                (WakeKind::Fired | WakeKind::Flapping, _) | (_, None) => new_story(category),
                (_, Some(existing)) => existing.to_owned(),
            };
            let mut event = events::Wake {
                probe: probe.to_owned(),
                component: rules.component.clone(),
                severity: *severity,
                category: category.clone(),
                kind: *kind,
                title: title(probe, category, kind, stage.as_deref()),
                detail,
                observation: snapshot,
                consecutive_failures: *consecutive_failures,
                stage: stage.clone(),
                reminder: *reminder,
                envelope_status: rules.envelope_status.to_owned(),
                envelope_fix: rules.envelope_fix.clone(),
                open_issues: other_open_issues(args, probe, &rules.component),
                traceparent: None,
            };
            event.traceparent = trace(event.seam(), &session);
            (events::row(&event), session)
        }
        Effect::Suppressed {
            kind,
            category,
            severity,
            reason,
            suppressed_count,
        } => {
            let session = match (kind, session) {
                (WakeKind::Fired, _) | (_, None) => new_story(category),
                (_, Some(existing)) => existing.to_owned(),
            };
            let mut event = events::Suppressed {
                probe: probe.to_owned(),
                component: rules.component.clone(),
                severity: *severity,
                category: category.clone(),
                kind: *kind,
                title: title(probe, category, kind, None),
                detail,
                observation: snapshot,
                suppression: suppression(reason),
                suppressed_count: *suppressed_count,
                traceparent: None,
            };
            event.traceparent = trace(event.seam(), &session);
            (events::row(&event), session)
        }
        Effect::Resolved {
            category,
            severity,
            open_for,
            woken,
        } => {
            let session = session.map_or_else(|| new_story(category), str::to_owned);
            let mut event = events::Resolved {
                probe: probe.to_owned(),
                component: rules.component.clone(),
                severity: *severity,
                category: category.clone(),
                title: format!("{probe} recovered"),
                open_for_ms: u64::try_from(open_for.as_millis()).unwrap_or(u64::MAX),
                woken: *woken,
                observation: snapshot,
                traceparent: None,
            };
            event.traceparent = trace(event.seam(), &session);
            (events::row(&event), session)
        }
        Effect::FlappingSettled { category } => {
            let session = session.map_or_else(|| new_story(category), str::to_owned);
            let mut event = events::FlappingSettled {
                probe: probe.to_owned(),
                component: rules.component.clone(),
                category: category.clone(),
                traceparent: None,
            };
            event.traceparent = trace(event.seam(), &session);
            (events::row(&event), session)
        }
    };
    row.session(session).component(rules.component.clone())
}
