//! What goes into the core and what comes out: [`Input`], [`Effect`], and
//! the continuations an effect carries until the actor answers it.

use super::*;

/// One input to [`CommanderCore::step`].
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An issue row from the log (or a test).
    Issue(IssueEvent),
    /// Open an incident, or join the open one the trigger belongs to.
    Open(OpenTrigger),
    /// An operator's note.
    Note {
        /// The incident.
        id: String,
        /// The note.
        text: String,
        /// Who wrote it.
        author: Option<String>,
    },
    /// An operator's severity change.
    SetSeverity {
        /// The incident.
        id: String,
        /// The new severity.
        severity: Sev,
        /// Why.
        reason: String,
    },
    /// An operator's resolution.
    Resolve {
        /// The incident.
        id: String,
        /// The operator's note.
        note: String,
        /// Resolve even though impact has not stopped.
        force: bool,
        /// The incident's probes now.
        probes: Probes,
    },
    /// A timeline entry from elsewhere in Warden (escalation).
    Timeline {
        /// A `caller_session_id`.
        session: Option<String>,
        /// A component.
        component: Option<String>,
        /// `fix`, `tier`, `rollback`, ...
        kind: String,
        /// One line.
        text: String,
        /// Anything else.
        details: Value,
    },
    /// Time passed for one active incident: resolve it if impact stopped,
    /// else send its update if one is due. One input per incident, so a
    /// disk error on one does not hold back the others.
    Tick {
        /// The incident.
        id: String,
        /// Its probes now.
        probes: Probes,
    },
    /// Answers [`Effect::ClaimId`].
    IdClaimed {
        /// The id, its directory created.
        id: String,
        /// What [`Effect::ClaimId`] carried.
        draft: Draft,
    },
    /// Answers [`Effect::Snapshot`].
    EvidenceWritten {
        /// The files, relative to the incident's directory.
        files: Vec<String>,
        /// What the snapshot carried.
        then: AfterEvidence,
    },
    /// Answers an [`Effect::Append`] that asked for its seq.
    Appended {
        /// The row's seq; `None` when the append failed (logged).
        seq: Option<u64>,
        /// What the append carried.
        then: AfterAppend,
    },
    /// Answers [`Effect::Notify`]: the request is in the log.
    Requested {
        /// Seq of the `notice.requested` row; `None` when no notifier takes
        /// the notice, or the append failed (logged).
        seq: Option<u64>,
        /// What the notice carried.
        then: AfterNotice,
    },
    /// A notifier's handling of one of an incident's notices, as the wake
    /// consumer recorded it in the log.
    Delivery {
        /// Seq of the delivery row (a replayed one is recognised by it).
        seq: u64,
        /// The incident (the row's session).
        id: String,
        /// What the row says.
        delivered: crate::events::Delivered,
    },
    /// Answers [`Effect::ReadTimeline`].
    TimelineRead {
        /// The incident's timeline on disk, oldest first.
        entries: Vec<TimelineEntry>,
        /// What the read carried.
        then: PendingUpdate,
    },
}

/// An incident decided on, waiting for its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// What opens it.
    pub trigger: OpenTrigger,
    /// Its first rating.
    pub severity: Sev,
    /// Why that rating.
    pub reason: String,
}

/// What happens once evidence is written.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterEvidence {
    /// A new incident becomes visible.
    Opening {
        /// The incident, not yet in the core or the store.
        incident: Box<Incident>,
        /// Why its severity.
        reason: String,
        /// When it opened.
        opened: Timestamp,
    },
    /// The rest of a join by a probe new to the incident.
    Joined(Box<Joined>),
}

/// A join waiting for the new probe's evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// The incident.
    pub id: String,
    /// The issue that joined.
    pub event: IssueEvent,
    /// Whether the incident already held the issue's session.
    pub known_session: bool,
    /// The issue's rating, for a wake.
    pub rating: Option<(Sev, String)>,
}

/// What happens once a row's seq is known.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterAppend {
    /// `incident.opened` was appended: record its seq, the freeze, notify.
    Opened {
        /// The incident.
        id: String,
        /// Whether it freezes automation.
        freezing: bool,
        /// The components it froze.
        frozen: Vec<String>,
        /// Why its severity.
        reason: String,
    },
}

/// What happens once a notice is delivered.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterNotice {
    /// The opening notice: the open is done.
    Opened {
        /// The incident.
        id: String,
    },
    /// A scheduled update: record it.
    Update(Box<Update>),
    /// The resolution notice: rewrite the postmortem with it.
    Resolved {
        /// The incident.
        id: String,
        /// Whether the resolution was forced.
        force: bool,
    },
}

impl AfterNotice {
    /// The incident the notice is about.
    pub fn id(&self) -> &str {
        match self {
            AfterNotice::Opened { id } | AfterNotice::Resolved { id, .. } => id,
            AfterNotice::Update(update) => &update.id,
        }
    }

    /// The notice's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            AfterNotice::Opened { .. } => "incident_opened",
            AfterNotice::Update(_) => "incident_update",
            AfterNotice::Resolved { .. } => "incident_resolved",
        }
    }
}

/// Evidence to write for an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The incident.
    pub id: String,
    /// Probes whose observations are copied.
    pub probes: Vec<String>,
    /// Components whose observed probes are copied too (the opening
    /// snapshot covers every probe of an affected component).
    pub components: BTreeSet<String>,
    /// Sessions whose audit rows are copied.
    pub sessions: Vec<String>,
    /// File name prefix.
    pub label: String,
    /// Whether the effective configuration is referenced.
    pub with_config: bool,
    /// What happens once written.
    pub then: AfterEvidence,
}

/// What a step asks the actor to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Claim a new id for `date` (`YYYYMMDD`); answer [`Input::IdClaimed`].
    ClaimId {
        /// The UTC date of opening.
        date: String,
        /// The incident waiting for it.
        draft: Draft,
    },
    /// Write `incident.json`.
    Save(Box<Incident>),
    /// Show the incident in the shared store (the API, escalation).
    Publish(Box<Incident>),
    /// Append to an incident's timeline.
    Timeline {
        /// The incident.
        id: String,
        /// The entry.
        entry: TimelineEntry,
    },
    /// Write evidence; answer [`Input::EvidenceWritten`].
    Snapshot(Box<Snapshot>),
    /// Freeze automation on `components` (none was frozen).
    Freeze {
        /// The incident that freezes them.
        id: String,
        /// The components.
        components: Vec<String>,
    },
    /// Unfreeze the `components` incident `id` froze.
    Unfreeze {
        /// The incident that froze them.
        id: String,
        /// The components.
        components: Vec<String>,
    },
    /// Append an audit row; answer [`Input::Appended`] when `then` is set.
    Append {
        /// The row.
        row: NewRow,
        /// What needs its seq.
        then: Option<AfterAppend>,
    },
    /// Request a notice for every notifier that wants it (a
    /// `notice.requested` row); answer [`Input::Requested`].
    Notify {
        /// The notice.
        notice: Box<Notice>,
        /// What happens after.
        then: AfterNotice,
    },
    /// Read an incident's timeline; answer [`Input::TimelineRead`].
    ReadTimeline(PendingUpdate),
    /// Write the postmortem packet from the timeline on disk.
    Postmortem(Box<Incident>),
    /// Answer the caller of the input that started this chain.
    Reply(Reply),
    /// Log a milestone.
    Log(Log),
}

impl Effect {
    /// Whether the actor must answer this effect with an input before the
    /// story goes on. Such an effect is always the last of its step.
    pub fn awaits_answer(&self) -> bool {
        match self {
            Effect::ClaimId { .. }
            | Effect::Snapshot(_)
            | Effect::Notify { .. }
            | Effect::ReadTimeline(_) => true,
            Effect::Append { then, .. } => then.is_some(),
            Effect::Save(_)
            | Effect::Publish(_)
            | Effect::Timeline { .. }
            | Effect::Freeze { .. }
            | Effect::Unfreeze { .. }
            | Effect::Postmortem(_)
            | Effect::Reply(_)
            | Effect::Log(_) => false,
        }
    }
}

/// The answer to a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The incident opened or joined.
    Opened(String),
    /// A note, severity change or resolution: done, or why not.
    Done(Result<(), Refusal>),
}

/// Why the core refused a command (a disk error is the actor's to report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No incident has this id.
    Unknown(String),
    /// The incident is resolved.
    Resolved {
        /// The incident.
        id: String,
        /// A second resolution.
        already: bool,
    },
    /// Impact has not stopped.
    ImpactOngoing(ImpactOngoing),
}

impl From<Refusal> for CommandError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Unknown(id) => CommandError::Unknown(id),
            Refusal::Resolved { id, already } => CommandError::Resolved { id, already },
            Refusal::ImpactOngoing(ongoing) => CommandError::ImpactOngoing(ongoing),
        }
    }
}

/// A milestone worth a log line.
#[derive(Debug, Clone, PartialEq)]
pub enum Log {
    /// An incident opened.
    Opened {
        /// The incident.
        id: String,
        /// Its severity.
        severity: Sev,
    },
    /// An incident resolved and its postmortem is written.
    Resolved {
        /// The incident.
        id: String,
        /// Whether forced.
        force: bool,
    },
    /// A timeline entry found no open incident.
    Dropped {
        /// The entry's kind.
        kind: String,
    },
}
