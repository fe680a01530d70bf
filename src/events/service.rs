//! The seams of Warden itself: the service's life (`service.*`), disaster
//! recovery (`dr.*`), the log's own repairs (`audit.*`), retention
//! (`storage.pruned`), operators (`control.command`, `operator.note`),
//! chaos (`chaos.fault`), the supervision tree (`supervision.*`), managed
//! processes (`managed.*`), the wake cursor and the boot-time snapshots of
//! the escalation ladder.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Event;

event!(
    /// Warden booted: the boot gates passed and the tree is about to start.
    Boot = "service.boot" {
        /// Warden's version.
        version: String,
        /// Its process id.
        pid: u32,
        /// The API's address.
        api: String,
        /// Every boot gate's result, in the order they ran.
        gates: Vec<crate::control::BootGate>,
        /// Open issues the debouncer took back from its store.
        open_issues_restored: usize,
    }
);

event!(
    /// The supervision tree is running (again, after a meltdown, when
    /// `incarnation` is above 1).
    Started = "service.started" {
        /// 1 for the first tree of this boot.
        incarnation: u32,
        /// One line: probes, components, notifiers.
        summary: String,
    }
);

event!(
    /// A graceful stop began (SIGTERM, SIGINT, or the API).
    Stopping = "service.stopping" {
        /// Why.
        reason: String,
    }
);

event!(
    /// The supervision tree gave up (its root's restart ladder ran out).
    Meltdown = "service.meltdown" {
        /// Meltdowns this boot, including this one.
        meltdowns: u32,
        /// `restart_tree` (automation paused), `rollback_config` or `stop`.
        action: String,
    }
);

event!(
    /// The configuration proved itself (the tree stayed up for
    /// `stable_after`) and was kept as last-known-good.
    ConfigKnownGood = "service.config_known_good" {
        /// Where the copy is.
        path: String,
        /// `sha256:<hex>` of the configuration text.
        digest: String,
    }
);

event!(
    /// A new configuration melted the tree down: the next boot runs on the
    /// last-known-good copy. The operator's file is not touched.
    ConfigRolledBack = "service.config_rolled_back" {
        /// What was set aside.
        from: String,
        /// Its digest.
        from_digest: String,
        /// The copy booted from next.
        to: String,
        /// Its digest.
        to_digest: String,
        /// Always false: the operator's file is never rewritten.
        operator_config_written: bool,
    }
);

impl Event for crate::control::ConfigOrigin {
    const SEAMS: &'static [&'static str] = &["service.config_origin"];
}

event!(
    /// SIGHUP re-read every operator token.
    SecretsReloaded = "service.secrets_reloaded" {
        /// Tokens now in force.
        operator_tokens: usize,
    }
);

event!(
    /// SIGHUP could not re-read the tokens; the previous ones stay in force.
    SecretsReloadFailed = "service.secrets_reload_failed" {
        /// Why (no secret in it).
        error: String,
    }
);

impl Event for crate::storage::RetentionReport {
    const SEAMS: &'static [&'static str] = &["storage.pruned"];
}

event!(
    /// A cursor points past the end of the log: the state dir was restored
    /// from an older copy (boot gate `cursors_consistent`).
    CursorBeyondLog = "dr.cursor_beyond_log" {
        /// Which cursor, and where.
        detail: String,
        /// The log's last seq.
        log_last_seq: u64,
    }
);

/// The state dir is older than the known epoch says: `dr.rewind_detected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RewindDetected(pub crate::control::EpochFacts);

impl Event for RewindDetected {
    const SEAMS: &'static [&'static str] = &["dr.rewind_detected"];
}

/// The known epoch file went backwards: `dr.known_epoch_violation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KnownEpochViolation(pub crate::control::EpochFacts);

impl Event for KnownEpochViolation {
    const SEAMS: &'static [&'static str] = &["dr.known_epoch_violation"];
}

event!(
    /// The epoch files could not be read.
    EpochUnreadable = "dr.epoch_unreadable" {
        /// Why.
        detail: String,
    }
);

event!(
    /// An operator accepted the state dir as it is (`bump_epoch`).
    EpochBumped = "dr.epoch_bumped" {
        /// The epoch before.
        from: u64,
        /// The epoch now.
        to: u64,
        /// The log's last seq when bumped.
        audit_high_water: u64,
        /// The operator's reason.
        reason: Option<String>,
        /// `operator`.
        actor: String,
    }
);

event!(
    /// The log's torn tail was cut off at start (a crash mid-write).
    AuditRecovered = "audit.recovered" {
        /// The segment file.
        file: String,
        /// Bytes cut.
        truncated_bytes: u64,
        /// The last whole row.
        last_good_seq: Option<u64>,
    }
);

event!(
    /// Rows were dropped while the log could not be written and its queue
    /// was full; the gap is on record.
    RowsDropped = "audit.rows_dropped" {
        /// How many.
        rows: u64,
        /// Why.
        reason: String,
    }
);

/// The operational state, before or after a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateView {
    /// The state.
    pub state: crate::control::RunState,
    /// Why it is paused, if it is.
    #[serde(default)]
    pub degradation_reasons: Vec<String>,
}

impl From<&crate::control::StateSnapshot> for StateView {
    fn from(snapshot: &crate::control::StateSnapshot) -> Self {
        Self {
            state: snapshot.state,
            degradation_reasons: snapshot.degradation_reasons.clone(),
        }
    }
}

event!(
    /// An operator's command (`pause`, `resume`, `stop`, `reset`,
    /// `bump_epoch`, ...), applied or refused.
    ControlCommand = "control.command" {
        /// The command.
        command: String,
        /// The operator's reason.
        reason: Option<String>,
        /// `operator`.
        actor: String,
        /// `applied` or `failed`.
        result: String,
        /// What it did, or why it failed.
        detail: Value,
        /// The state before.
        before: StateView,
        /// The state after.
        after: StateView,
    }
);

event!(
    /// An operator's note on a story or a component (`POST /api/notes`).
    OperatorNote = "operator.note" {
        /// The note.
        text: String,
        /// Who wrote it.
        author: Option<String>,
    }
);

event!(
    /// A fault injected through the chaos surface.
    ChaosFault = "chaos.fault" {
        /// The fault, as written.
        fault: String,
        /// Whether it hit something.
        landed: bool,
        /// The actor it hit.
        actor_id: Option<String>,
    }
);

event!(
    /// The wake consumer's cursor was unreadable: it resumed at the tail.
    WakeCursorReset = "wake.cursor_reset" {
        /// The cursor file.
        path: String,
        /// Why it was unreadable.
        reason: String,
        /// The seq it resumed after.
        resumed_at: u64,
    }
);

event!(
    /// The last-known-good files of a component were copied at boot.
    SnapshotTaken = "escalation.snapshot_taken" {
        /// Files copied.
        copied: Vec<String>,
        /// Files missing at boot.
        missing: Vec<String>,
        /// Files refused (symbolic links).
        refused: Vec<String>,
        /// This boot had already taken it.
        already_taken: bool,
    }
);

event!(
    /// The last-known-good files could not be copied: no rollback possible.
    SnapshotFailed = "escalation.snapshot_failed" {
        /// Why.
        error: String,
    }
);

event!(
    /// A managed process group of the previous run was found at boot and stopped.
    PreviousStopped = "managed.previous_stopped" {
        /// Its process group.
        pgid: i32,
        /// `gone`, `stopped` or `killed`.
        outcome: String,
    }
);

event!(
    /// An automatic restart of a managed process waits: automation is held.
    RestartHeld = "managed.restart_held" {
        /// The ladder attempt.
        attempt: u32,
        /// Why it is held.
        reason: String,
    }
);

impl Event for crate::managed::ManagedEvent {
    const SEAMS: &'static [&'static str] = &[
        "managed.started",
        "managed.exited",
        "managed.restart_scheduled",
        "managed.fatal",
        "managed.start_failed",
        "managed.stopped",
    ];

    fn seam(&self) -> &'static str {
        crate::managed::ManagedEvent::seam(self)
    }
}

event!(
    /// A supervisor started a child.
    ChildStarted = "supervision.started" {
        /// The supervisor.
        supervisor: String,
        /// The child's name.
        child: String,
        /// Its actor id.
        actor_id: String,
    }
);

event!(
    /// A supervised child exited.
    ChildExited = "supervision.exited" {
        /// The supervisor.
        supervisor: String,
        /// The child.
        child: String,
        /// How it ended, e.g. `panicked: ...`.
        exit: String,
        /// A panic or a failure, not a requested stop.
        abnormal: bool,
    }
);

event!(
    /// A restart is scheduled after the child's back-off.
    RestartScheduled = "supervision.restart_scheduled" {
        /// The supervisor.
        supervisor: String,
        /// The child.
        child: String,
        /// Restarts within the window, this one included.
        attempt: u32,
        /// The back-off before it.
        delay_ms: u64,
        /// Why the child ended.
        reason: String,
    }
);

event!(
    /// A child was restarted.
    ChildRestarted = "supervision.restarted" {
        /// The supervisor.
        supervisor: String,
        /// The child.
        child: String,
        /// Restarts within the window.
        attempt: u32,
    }
);

event!(
    /// A child could not be started.
    StartFailed = "supervision.start_failed" {
        /// The supervisor.
        supervisor: String,
        /// The child.
        child: String,
        /// Why.
        error: String,
    }
);

event!(
    /// A child was stopped with its supervisor.
    ChildStopped = "supervision.stopped" {
        /// The supervisor.
        supervisor: String,
        /// The child.
        child: String,
        /// Killed after the shutdown timeout.
        killed: bool,
    }
);

event!(
    /// A supervisor's restart ladder ran out: it gives up and escalates.
    SupervisorMeltdown = "supervision.meltdown" {
        /// The supervisor.
        supervisor: String,
        /// Restarts within the window.
        restarts: u32,
        /// The window.
        within_ms: u64,
    }
);
