//! How a debounce effect is written down: the audit row of each effect
//! (`probe.wake_requested`, `probe.flapping`, `probe.wake_suppressed`,
//! `probe.resolved`, `probe.flapping_settled`) and its metric labels.

use serde_json::json;

use super::actor::{DebouncerArgs, ProbeRules};
use super::state::{Effect, Suppression, WakeKind};
use crate::audit::{NewRow, SEQ_PLACEHOLDER};
use crate::messages::Observation;
use crate::settings::Severity;

/// The `event` and `reason` labels of an effect's row.
pub(super) fn effect_labels(effect: &Effect) -> (&'static str, &'static str) {
    match effect {
        Effect::Wake { kind, .. } => (kind_name(kind), ""),
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

fn kind_name(kind: &WakeKind) -> &'static str {
    match kind {
        WakeKind::Fired => "fired",
        WakeKind::Reminder => "reminder",
        WakeKind::Escalated => "escalated",
        WakeKind::Resumed => "resumed",
        WakeKind::Flapping => "flapping",
    }
}

fn suppression(reason: &Suppression) -> serde_json::Value {
    match reason {
        Suppression::Window { .. } => json!({ "reason": "window" }),
        Suppression::Dependency(dependency) => {
            json!({ "reason": "dependency", "suppressed_by": dependency })
        }
        Suppression::Maintenance(window) => {
            json!({ "reason": "maintenance", "suppressed_by": window })
        }
        Suppression::Flapping => json!({ "reason": "flapping" }),
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

pub(super) fn effect_row(
    args: &DebouncerArgs,
    probe: &str,
    rules: &ProbeRules,
    effect: &Effect,
    observation: Option<Observation>,
    session: Option<&str>,
) -> NewRow {
    let snapshot = observation.or_else(|| args.latest.get(probe).map(|o| o.clone()));
    let detail = snapshot
        .as_ref()
        .map(|o| o.reasons.join("; "))
        .unwrap_or_default();
    let new_story = |category: &str| format!("probe:{probe}:{category}:{SEQ_PLACEHOLDER}");
    let (seam, details, session) = match effect {
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
            let seam = if matches!(kind, WakeKind::Flapping) {
                "probe.flapping"
            } else {
                "probe.wake_requested"
            };
            let details = json!({
                "probe": probe,
                "component": rules.component,
                "severity": severity,
                "category": category,
                "kind": kind_name(kind),
                "title": title(probe, category, kind, stage.as_deref()),
                "detail": detail,
                "observation": snapshot,
                "consecutive_failures": consecutive_failures,
                "stage": stage,
                "reminder": reminder,
                "envelope_status": rules.envelope_status,
                "envelope_fix": rules.envelope_fix,
            });
            (seam, details, session)
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
            let details = json!({
                "probe": probe,
                "component": rules.component,
                "severity": severity,
                "category": category,
                "kind": kind_name(kind),
                "title": title(probe, category, kind, None),
                "detail": detail,
                "observation": snapshot,
                "suppression": suppression(reason),
                "suppressed_count": suppressed_count,
            });
            ("probe.wake_suppressed", details, session)
        }
        Effect::Resolved {
            category,
            severity,
            open_for,
            woken,
        } => {
            let session = session.map_or_else(|| new_story(category), str::to_owned);
            let details = json!({
                "probe": probe,
                "component": rules.component,
                "severity": severity,
                "category": category,
                "title": format!("{probe} recovered"),
                "open_for_ms": open_for.as_millis() as u64,
                "woken": woken,
                "observation": snapshot,
            });
            ("probe.resolved", details, session)
        }
        Effect::FlappingSettled { category } => {
            let session = session.map_or_else(|| new_story(category), str::to_owned);
            let details =
                json!({ "probe": probe, "component": rules.component, "category": category });
            ("probe.flapping_settled", details, session)
        }
    };
    NewRow::new(seam, details)
        .session(session)
        .component(rules.component.clone())
}
