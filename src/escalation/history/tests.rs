#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

fn entry(n: usize) -> HistoryEntry {
    HistoryEntry {
        at: "2026-01-01T00:00:00Z".to_owned(),
        kind: HistoryKind::Note,
        rung: String::new(),
        attempt: 0,
        summary: format!("note {n}"),
        details: serde_json::Value::Null,
    }
}

#[test]
fn records_in_order_and_the_context_carries_everything() {
    let mut history = EscalationHistory::new("site", Some("probe:site:down:7".to_owned()));
    history.record(
        HistoryKind::Observation,
        "",
        0,
        "site is down",
        serde_json::json!({"probe": "site"}),
    );
    history.record(
        HistoryKind::Fix,
        "fix",
        1,
        "skipped: envelope disabled",
        serde_json::Value::Null,
    );
    history.record(
        HistoryKind::Rejection,
        "agent",
        1,
        "not mine",
        serde_json::json!({"status": "rejected"}),
    );
    let context = history.to_context(Some("the pool is exhausted"));
    assert_eq!(context["component"], "site");
    assert_eq!(context["caller_session_id"], "probe:site:down:7");
    assert_eq!(context["investigation_summary"], "the pool is exhausted");
    assert_eq!(context["dropped_entries"], 0);
    let kinds: Vec<&str> = context["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["observation", "fix", "rejection"]);
    assert_eq!(context["entries"][2]["rung"], "agent");
    assert!(
        context["entries"][0]["at"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .is_ok()
    );
    assert!(history.to_context(None)["investigation_summary"].is_null());
}

#[test]
fn keeps_the_last_entries_and_counts_the_dropped() {
    let mut history = EscalationHistory::new("site", None);
    for n in 0..MAX_ENTRIES + 5 {
        history.push(entry(n));
    }
    assert_eq!(history.entries().len(), MAX_ENTRIES);
    assert_eq!(history.dropped(), 5);
    assert_eq!(history.entries().next().unwrap().summary, "note 5");
    assert_eq!(history.to_context(None)["dropped_entries"], 5);
    history.clear();
    assert_eq!(history.entries().len(), 0);
    assert_eq!(history.dropped(), 0);
}

#[test]
fn round_trips_through_json() {
    let mut history = EscalationHistory::new("site", None);
    for n in 0..3 {
        history.push(entry(n));
    }
    history.record(
        HistoryKind::Tier,
        "agent",
        2,
        "fixed",
        serde_json::json!({"status": "fixed", "notes": "ok"}),
    );
    let text = serde_json::to_string(&history).unwrap();
    let back: EscalationHistory = serde_json::from_str(&text).unwrap();
    assert_eq!(back, history);
}
