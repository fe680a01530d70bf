//! The record of one incident's escalation cycle.
//!
//! Every tier call carries the whole record ([`EscalationHistory::to_context`]),
//! so a tier sees what was observed, which fixes ran and what earlier tiers
//! answered or refused. The record is serde round-trippable so the
//! coordinator can persist it and pick the cycle up after a restart. It
//! keeps the last [`MAX_ENTRIES`] entries and counts the ones it dropped.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Entries kept; older ones are dropped and counted.
pub const MAX_ENTRIES: usize = 200;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryKind {
    /// A probe observation that opened or fed the cycle.
    Observation,
    /// A fix attempt and its outcome (or that it was skipped).
    Fix,
    /// A tier call and its answer.
    Tier,
    /// A tier's refusal, or a patch Warden refused to apply.
    Rejection,
    /// Anything else worth telling the next tier.
    Note,
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When, RFC 3339.
    pub at: String,
    /// What kind of entry.
    pub kind: HistoryKind,
    /// The rung: `fix`, a tier's name, or empty for observations and notes.
    pub rung: String,
    /// The rung's attempt number (0 when not an attempt).
    pub attempt: u32,
    /// One line for people.
    pub summary: String,
    /// Structured details (a [`FixOutcome`](super::FixOutcome), a
    /// [`TierAnswer`](super::TierAnswer), ...).
    pub details: serde_json::Value,
}

/// The ordered, bounded record of one cycle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EscalationHistory {
    /// The component the cycle belongs to.
    pub component: String,
    /// The issue's `caller_session_id`, joining audit rows.
    pub caller_session_id: Option<String>,
    entries: VecDeque<HistoryEntry>,
    dropped: u64,
}

impl EscalationHistory {
    /// An empty record for `component`.
    pub fn new(component: impl Into<String>, caller_session_id: Option<String>) -> Self {
        Self {
            component: component.into(),
            caller_session_id,
            entries: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Appends an entry stamped now.
    pub fn record(
        &mut self,
        kind: HistoryKind,
        rung: impl Into<String>,
        attempt: u32,
        summary: impl Into<String>,
        details: serde_json::Value,
    ) {
        self.push(HistoryEntry {
            at: jiff::Timestamp::now().to_string(),
            kind,
            rung: rung.into(),
            attempt,
            summary: summary.into(),
            details,
        });
    }

    /// Appends `entry`, dropping the oldest past [`MAX_ENTRIES`].
    pub fn push(&mut self, entry: HistoryEntry) {
        self.entries.push_back(entry);
        while self.entries.len() > MAX_ENTRIES {
            self.entries.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// The kept entries, oldest first.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &HistoryEntry> {
        self.entries.iter()
    }

    /// Entries dropped to stay within [`MAX_ENTRIES`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Forgets the entries (a verified heal ends the cycle).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.dropped = 0;
    }

    /// What every tier call carries: the component, the investigation
    /// summary, and every kept entry, oldest first.
    pub fn to_context(&self, investigation_summary: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "component": self.component,
            "caller_session_id": self.caller_session_id,
            "investigation_summary": investigation_summary,
            "entries": self.entries,
            "dropped_entries": self.dropped,
        })
    }
}

#[cfg(test)]
mod tests;
