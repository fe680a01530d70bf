//! The recent rows of each issue story (`caller_session_id`), kept as the
//! consumer reads the log so the investigator sees what already happened
//! (earlier wakes, suppressions, notices) without a scan of the log per event.
//! Bounded: a few rows per story and a fixed number of stories, oldest first out.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use std::borrow::Cow;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::audit::RowRef;
use crate::events::Event as _;

/// Rows kept per story.
const ROWS_PER_SESSION: usize = 20;
/// Stories kept.
const SESSIONS: usize = 2048;
/// Keys of a row's details that hold whole snapshots (observations, notices,
/// delivery lists) rather than facts about the row: not kept in a story.
const BULKY_DETAILS: [&str; 3] = ["observation", "notice", "deliveries"];

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
    /// Records `row` under its story, if it has one: its details without
    /// the bulky fields, still encoded (no `Value` tree is built per row).
    pub fn observe(&mut self, row: &RowRef<'_>) {
        let Some(session) = row.caller_session_id.as_deref() else {
            return;
        };
        let story = self.story(session, &row.seam, || {
            crate::events::parse::<crate::events::escalation::FixAttempted>(row).ok()
        });
        story.push(Kept {
            seq: row.seq,
            ts: row.ts.clone().into_owned(),
            seam: row.seam.clone().into_owned(),
            details: compact(row.details),
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
        if crate::events::escalation::FixAttempted::SEAMS.contains(&seam)
            && fix().is_some_and(|fix| fix.outcome != "skipped")
        {
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
                            "details": serde_json::from_str::<Value>(r.details.get()).unwrap_or_default(),
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
    details: Box<RawValue>,
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
/// story of twenty rows stays a few kilobytes; the fields kept are copied
/// as written, not decoded. Details that are not an object are kept whole.
fn compact(details: &RawValue) -> Box<RawValue> {
    let kept = serde_json::from_str::<Compact<'_>>(details.get())
        .ok()
        .and_then(|compact| serde_json::value::to_raw_value(&compact).ok());
    kept.unwrap_or_else(|| details.to_owned())
}

/// An object's fields but the bulky ones, each value left encoded.
struct Compact<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Compact<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// A key, borrowed from the line unless it has escapes.
        struct Key<'a>(Cow<'a, str>);
        impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Cow<'de, str>;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a key")
                    }
                    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                        Ok(Cow::Borrowed(v))
                    }
                    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                        Ok(Cow::Owned(v.to_owned()))
                    }
                }
                d.deserialize_str(V).map(Key)
            }
        }
        struct Fields<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Fields<'a> {
            type Value = Compact<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a details object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Compact<'a>, A::Error> {
                let mut kept = Vec::new();
                while let Some(Key(key)) = map.next_key::<Key<'a>>()? {
                    let value = map.next_value::<&'a RawValue>()?;
                    if !BULKY_DETAILS.contains(&key.as_ref()) {
                        kept.push((key, value));
                    }
                }
                Ok(Compact(kept))
            }
        }
        deserializer.deserialize_map(Fields(std::marker::PhantomData))
    }
}

impl Serialize for Compact<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observe(sessions: &mut Sessions, line: &str) {
        let row: RowRef<'_> = serde_json::from_str(line).unwrap();
        sessions.observe(&row);
    }

    #[test]
    fn a_story_keeps_each_rows_details_as_written_but_the_bulky_fields() {
        let mut sessions = Sessions::default();
        observe(
            &mut sessions,
            r#"{"seq":3,"ts":"t3","seam":"probe.wake_requested","caller_session_id":"s","trace_id":null,"component":"api","details":{"probe":"api","observation":{"big":[1,2,3]},"q\"uote":"a\nb","n":[1,{"x":null}]}}"#,
        );
        observe(
            &mut sessions,
            r#"{"seq":4,"ts":"t4","seam":"notification.sent","caller_session_id":"s","trace_id":null,"component":"api","details":{"notice":{"title":"x"},"notifier":"hook"}}"#,
        );
        observe(
            &mut sessions,
            r#"{"seq":5,"ts":"t5","seam":"probe.resolved","caller_session_id":"other","trace_id":null,"component":"api","details":{}}"#,
        );
        assert_eq!(
            sessions.before("s", 5),
            vec![
                json!({"seq": 3, "ts": "t3", "seam": "probe.wake_requested",
                       "details": {"probe": "api", "q\"uote": "a\nb", "n": [1, {"x": null}]}}),
                json!({"seq": 4, "ts": "t4", "seam": "notification.sent",
                       "details": {"notifier": "hook"}}),
            ]
        );
        assert_eq!(sessions.before("s", 4).len(), 1);
        assert!(sessions.before("none", 9).is_empty());
    }

    #[test]
    fn an_acknowledgement_and_a_fix_that_ran_are_noted_per_story() {
        let mut sessions = Sessions::default();
        observe(
            &mut sessions,
            &format!(
                r#"{{"seq":1,"ts":"t","seam":"{}","caller_session_id":"s","trace_id":null,"component":"api","details":{{}}}}"#,
                super::super::ACK_SEAM
            ),
        );
        assert!(sessions.acked("s"));
        observe(
            &mut sessions,
            r#"{"seq":2,"ts":"t","seam":"probe.resolved","caller_session_id":"s","trace_id":null,"component":"api","details":{}}"#,
        );
        assert!(!sessions.acked("s"));
    }
}
