//! The commander's intake: the issue rows of the audit log, and the
//! delivery rows of its own notices, read after the commander's own durable
//! cursor, as the wake consumer reads its rows.
//!
//! Before this the commander heard issues on the in-process issue bus and,
//! after a restart, caught up from the debouncer's store; an issue published
//! while it restarted was only found again if it was still open, and a replay
//! was judged against today's memory. Now a restarted (or `kill -9`ed)
//! commander takes up exactly the rows after its cursor, in log order.
//!
//! The cursor is an ordinary one (`<state_dir>/cursors/incident-commander`),
//! so the boot gate checks it and retention never prunes past it. Next to
//! the incidents (`<state_dir>/incidents/commander.json`) is the one fact
//! the commander keeps between rows: which critical issues are open per
//! component (it rates how many important components are down). Both are
//! written atomically, the tally first, at most every 200 ms during a burst
//! (and on the commander's tick and at stop), so a crash replays what came
//! after the last write, which is harmless: an issue whose session an incident
//! already holds joins it again (a set) instead of opening another, and the
//! tally's inserts and removals are idempotent.
//!
//! A missing or unreadable file starts at the log's tail: history written
//! before the commander had a cursor is not replayed as new incidents.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audit::{AuditError, Follower};
use crate::events;
use crate::messages::IssueEvent;

/// Name of the commander's cursor under `<state_dir>/cursors/`.
pub const CURSOR_NAME: &str = "incident-commander";

/// File name of the commander's tally under `<state_dir>/incidents/`.
pub const TALLY_FILE: &str = "commander.json";

/// Seams the commander acts on; every other row only moves the cursor.
pub const SEAMS: [&str; 7] = [
    "probe.wake_requested",
    "probe.wake_suppressed",
    "probe.flapping",
    "probe.resolved",
    // The deliveries of its own notices, for each incident's timeline.
    "notification.sent",
    "notification.failed",
    "notification.folded",
];

/// A row the commander acts on.
#[derive(Debug)]
pub enum Row {
    /// An issue row.
    Issue(IssueEvent),
    /// A delivery of one of an incident's notices.
    Delivery {
        /// The incident (the row's session).
        id: String,
        /// What the row says.
        delivered: events::Delivered,
    },
}

/// What the commander makes of `row`.
fn pick(row: &crate::audit::RowRef<'_>) -> Option<Row> {
    if let Some(event) = events::issue_event(row) {
        return Some(Row::Issue(event));
    }
    let id = row.caller_session_id.as_deref()?;
    let delivered = events::Delivered::from_row(row).ok()?;
    (delivered.category == INCIDENT_CATEGORY).then(|| Row::Delivery {
        id: id.to_owned(),
        delivered,
    })
}

/// The category of every notice about an incident.
pub const INCIDENT_CATEGORY: &str = "incident";

/// Rows handled per pass (and per cursor write) before the actor handles
/// its mailbox again.
pub(crate) const BATCH: usize = 256;

/// Where the commander is: the cursor and the tally.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The last row handled (the cursor; not in the tally file).
    #[serde(skip)]
    pub seq: u64,
    /// Sessions of open critical issues, per component.
    #[serde(default)]
    pub open_critical: HashMap<String, BTreeSet<String>>,
}

/// The commander's reader of the log: a [`Follower`] on its cursor, and the
/// tally file.
#[derive(Debug)]
pub struct Intake {
    follower: Follower,
    path: PathBuf,
}

impl Intake {
    /// Opens the log, the cursor and the tally: the progress to resume
    /// from. `tally_dir` is the incidents root.
    pub fn open(
        audit_dir: &Path,
        cursor_dir: &Path,
        tally_dir: &Path,
    ) -> Result<(Intake, Progress), AuditError> {
        let (follower, seq) =
            Follower::open(audit_dir, cursor_dir, CURSOR_NAME, "incident commander")?;
        let path = tally_dir.join(TALLY_FILE);
        let open_critical = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Progress>(&bytes) {
                Ok(tally) => tally.open_critical,
                Err(error) => {
                    tracing::error!(path = %path.display(), %error, "The incident commander's tally is unreadable; it starts empty.");
                    HashMap::new()
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(source) => return Err(AuditError::Io { path, source }),
        };
        let progress = Progress { seq, open_critical };
        let mut intake = Intake { follower, path };
        intake.store(&progress)?;
        Ok((intake, progress))
    }

    /// The next rows after the last one read, up to a batch, each with its
    /// seq and what the commander makes of it (`None` for a row it only
    /// passes over).
    pub fn next_batch(&mut self) -> Vec<(u64, Option<Row>)> {
        self.follower.next_batch(BATCH, &SEAMS, pick)
    }

    /// Marks the rows up to `seq` (the last of a batch) as handled.
    pub fn handled(&mut self, seq: u64) {
        self.follower.handled(seq);
    }

    /// Stores the cursor with `open_critical` if rows were handled since the
    /// last write and the follower's `STORE_EVERY` passed, or at once with `now` (at stop,
    /// and on the commander's tick so a quiet log is not left behind).
    pub fn store_due(
        &mut self,
        open_critical: impl FnOnce() -> HashMap<String, BTreeSet<String>>,
        now: bool,
    ) -> Result<(), AuditError> {
        match self.follower.due(now) {
            Some(seq) => self.store(&Progress {
                seq,
                open_critical: open_critical(),
            }),
            None => Ok(()),
        }
    }

    /// Records `progress` durably: the tally, then the cursor.
    pub fn store(&mut self, progress: &Progress) -> Result<(), AuditError> {
        let bytes = serde_json::to_vec(progress).map_err(|error| AuditError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(error),
        })?;
        if let Some(dir) = self.path.parent() {
            crate::files::create_private_dir_all(dir).map_err(|source| AuditError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        crate::files::write_atomic(&self.path, &bytes).map_err(|source| AuditError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.follower.store(progress.seq)
    }
}
