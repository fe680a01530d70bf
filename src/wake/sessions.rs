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
    rows: HashMap<String, VecDeque<Kept>>,
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
    /// Records `row` under its story, if it has one (a copy without its
    /// bulky fields).
    pub fn observe(&mut self, row: &AuditRow) {
        self.keep(row, || compact(&row.details));
    }

    /// [`Sessions::observe`] for a row the consumer has no other use for:
    /// its details are moved in, not copied.
    pub fn observe_owned(&mut self, row: AuditRow) {
        let AuditRow {
            seq,
            ts,
            seam,
            caller_session_id,
            mut details,
            ..
        } = row;
        let Some(session) = caller_session_id else {
            return;
        };
        if let Value::Object(map) = &mut details {
            for key in crate::audit::BULKY_DETAILS {
                map.remove(key);
            }
        }
        let story = self.story(&session, &seam, || {
            crate::events::parse_details::<crate::events::escalation::FixAttempted>(&seam, &details)
        });
        story.push(Kept {
            seq,
            ts,
            seam,
            details,
        });
    }

    fn keep(&mut self, row: &AuditRow, details: impl FnOnce() -> Value) {
        let Some(session) = &row.caller_session_id else {
            return;
        };
        let story = self.story(session, &row.seam, || {
            crate::events::parse_details::<crate::events::escalation::FixAttempted>(
                &row.seam,
                &row.details,
            )
        });
        story.push(Kept {
            seq: row.seq,
            ts: row.ts.clone(),
            seam: row.seam.clone(),
            details: details(),
        });
    }

    /// The rows kept of `session`, after taking note of what a row of
    /// `seam` there says about acknowledgements and fixes.
    fn story(
        &mut self,
        session: &str,
        seam: &str,
        fix: impl FnOnce() -> Option<crate::events::escalation::FixAttempted>,
    ) -> Story<'_> {
        if !self.rows.contains_key(session) {
            if self.order.len() >= SESSIONS
                && let Some(oldest) = self.order.pop_front()
            {
                self.rows.remove(&oldest);
                self.acked.remove(&oldest);
                self.fixes.with(|set| set.remove(&oldest));
            }
            self.order.push_back(session.to_owned());
        }
        match seam {
            super::ACK_SEAM => {
                self.acked.insert(session.to_owned());
            }
            "probe.resolved" => {
                self.acked.remove(session);
            }
            _ => {}
        }
        if fix().is_some_and(|fix| fix.outcome != "skipped") {
            self.fixes.with(|set| set.insert(session.to_owned()));
        }
        Story(self.rows.entry(session.to_owned()).or_default())
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
                    .filter(|r| r.seq < seq)
                    .map(|r| {
                        json!({
                            "seq": r.seq,
                            "ts": r.ts,
                            "seam": r.seam,
                            "details": r.details,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One row of a story, as the investigator sees it (bulky fields left out);
/// turned into JSON only when an investigation asks for it.
#[derive(Debug)]
struct Kept {
    seq: u64,
    ts: String,
    seam: String,
    details: Value,
}

/// The kept rows of one story, at most [`ROWS_PER_SESSION`].
struct Story<'a>(&'a mut VecDeque<Kept>);

impl Story<'_> {
    fn push(self, kept: Kept) {
        if self.0.len() >= ROWS_PER_SESSION {
            self.0.pop_front();
        }
        self.0.push_back(kept);
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
