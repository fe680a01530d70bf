//! The recent rows of each issue story (`caller_session_id`), kept as the
//! consumer reads the log so the investigator sees what already happened
//! (earlier wakes, suppressions, notices) without a scan of the log per event.
//! Bounded: a few rows per story and a fixed number of stories, oldest first out.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

use crate::audit::AuditRow;

/// Rows kept per story.
const ROWS_PER_SESSION: usize = 20;
/// Stories kept.
const SESSIONS: usize = 2048;

/// Recent rows per story.
#[derive(Debug, Default)]
pub struct Sessions {
    rows: HashMap<String, VecDeque<Value>>,
    order: VecDeque<String>,
    fixes: FixesRan,
    /// Stories an operator acknowledged, as read from the log: a reminder
    /// after the acknowledgement is judged by this, in log order, not by the
    /// debouncer's memory of today.
    acked: HashSet<String>,
}

/// The stories in which a fix actually ran (an `escalation.fix_attempted`
/// row that was not `skipped`), among those [`Sessions`] keeps; shared with
/// the event tasks for `autofix_attempted`.
#[derive(Debug, Clone, Default)]
pub struct FixesRan(Arc<Mutex<HashSet<String>>>);

impl FixesRan {
    fn with<T>(&self, f: impl FnOnce(&mut HashSet<String>) -> T) -> T {
        // Single insert/remove/lookup calls cannot leave the set half-updated.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether a fix ran in `session` (as far as the log has been read).
    pub fn contains(&self, session: &str) -> bool {
        self.with(|set| set.contains(session))
    }
}

impl Sessions {
    /// Records `row` under its story, if it has one.
    pub fn observe(&mut self, row: &AuditRow) {
        let Some(session) = &row.caller_session_id else {
            return;
        };
        if !self.rows.contains_key(session) {
            if self.order.len() >= SESSIONS
                && let Some(oldest) = self.order.pop_front()
            {
                self.rows.remove(&oldest);
                self.acked.remove(&oldest);
                self.fixes.with(|set| set.remove(&oldest));
            }
            self.order.push_back(session.clone());
        }
        match row.seam.as_str() {
            super::ACK_SEAM => {
                self.acked.insert(session.clone());
            }
            "probe.resolved" => {
                self.acked.remove(session);
            }
            _ => {}
        }
        if crate::events::parse::<crate::events::escalation::FixAttempted>(row)
            .is_ok_and(|fix| fix.outcome != "skipped")
        {
            self.fixes.with(|set| set.insert(session.clone()));
        }
        let rows = self.rows.entry(session.clone()).or_default();
        if rows.len() >= ROWS_PER_SESSION {
            rows.pop_front();
        }
        rows.push_back(json!({
            "seq": row.seq,
            "ts": row.ts,
            "seam": row.seam,
            "details": compact(&row.details),
        }));
    }

    /// Whether an acknowledgement of `session` was read (and its issue has
    /// not resolved since).
    pub fn acked(&self, session: &str) -> bool {
        self.acked.contains(session)
    }

    /// The shared set of stories in which a fix ran.
    pub fn fixes(&self) -> FixesRan {
        self.fixes.clone()
    }

    /// The story's rows before `seq`, oldest first.
    pub fn before(&self, session: &str, seq: u64) -> Vec<Value> {
        self.rows
            .get(session)
            .map(|rows| {
                rows.iter()
                    .filter(|r| r["seq"].as_u64().is_some_and(|s| s < seq))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The details without bulky fields (observation snapshots, notices), so a
/// story of twenty rows stays a few kilobytes.
fn compact(details: &Value) -> Value {
    match details {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !crate::audit::BULKY_DETAILS.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}
