//! The commander's interface: what the actor is started with
//! ([`CommanderArgs`]) and what it is sent ([`IncidentMsg`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use ractor::RpcReplyPort;
use serde_json::Value;

use super::core::Config;
use super::evidence::EffectiveConfig;
use super::model::OpenTrigger;
use super::severity::Sev;
use super::{CommandError, FreezeSet, IncidentStore};
use crate::audit::AuditLog;
use crate::debounce::{LatestObservations, ObservationHistory};
use crate::messages::IssueEvent;
use crate::notify::Outbox;
use crate::settings::{Criticality, IncidentSettings};

/// Arguments, cloneable so a supervisor can respawn the commander.
#[derive(Clone)]
pub struct CommanderArgs {
    /// `[incidents]`.
    pub settings: IncidentSettings,
    /// `service.state_dir`; incidents live in its `incidents/` folder.
    pub state_dir: PathBuf,
    /// The audit log (append side).
    pub audit: AuditLog,
    /// The audit log's directory, read for evidence.
    pub audit_dir: PathBuf,
    /// Where incident notices go (routing, delivery rows, metrics).
    pub outbox: Outbox,
    /// Latest observation per probe (current impact).
    pub latest: LatestObservations,
    /// Recent observations per probe (evidence, resolution).
    pub history: ObservationHistory,
    /// Criticality per component.
    pub criticality: HashMap<String, Criticality>,
    /// `depends_on` per component.
    pub depends_on: HashMap<String, Vec<String>>,
    /// Every incident, shared with the API.
    pub store: IncidentStore,
    /// Where the commander keeps its cursor (`<state_dir>/cursors`).
    pub cursor_dir: PathBuf,
    /// Components whose automation is frozen.
    pub freeze: FreezeSet,
    /// The effective configuration, secrets redacted, copied into evidence.
    pub effective_config: EffectiveConfig,
    /// How often cadence and auto-resolution are checked.
    pub tick: Duration,
}

impl CommanderArgs {
    /// What the core's decisions read from these arguments.
    pub(super) fn core_config(&self) -> Config {
        Config {
            settings: self.settings.clone(),
            criticality: self.criticality.clone(),
            depends_on: self.depends_on.clone(),
        }
    }
}

/// Messages to the commander.
#[derive(Debug)]
pub enum IncidentMsg {
    /// An issue row, as the intake read it from the log (also sent by
    /// tests that drive the commander without a log).
    Issue(IssueEvent),
    /// New rows may be durable: read the log after the cursor.
    Pump,
    /// Open an incident (or join the open one the trigger belongs to);
    /// replies with the incident id.
    Open {
        /// What asks for it.
        trigger: OpenTrigger,
        /// The id, once evidence and the `incident.opened` row are written.
        reply: Option<RpcReplyPort<String>>,
    },
    /// Add an operator note to the timeline.
    Note {
        /// The incident.
        id: String,
        /// The note.
        text: String,
        /// Who wrote it.
        author: Option<String>,
        /// `Err` names what is wrong (unknown id, disk).
        reply: RpcReplyPort<Result<(), CommandError>>,
    },
    /// Change the severity (operator; audited).
    SetSeverity {
        /// The incident.
        id: String,
        /// The new severity.
        severity: Sev,
        /// Why.
        reason: String,
        /// `Err` names what is wrong (unknown id, resolved, disk).
        reply: RpcReplyPort<Result<(), CommandError>>,
    },
    /// Resolve: refused while an affected probe is unhealthy unless forced.
    Resolve {
        /// The incident.
        id: String,
        /// The operator's note.
        note: String,
        /// Resolve even though impact has not stopped.
        force: bool,
        /// [`CommandError::ImpactOngoing`] when refused.
        reply: RpcReplyPort<Result<(), CommandError>>,
    },
    /// Append to the timeline of the open incident of `session` (else of
    /// `component`); dropped when no open incident matches.
    Timeline {
        /// A `caller_session_id`.
        session: Option<String>,
        /// A component.
        component: Option<String>,
        /// `fix`, `tier`, `rollback`, ...
        kind: String,
        /// One line.
        text: String,
        /// Anything else (`outcome` feeds the postmortem).
        details: Value,
    },
    /// Time passed: send due updates, resolve incidents whose impact stopped.
    Tick,
}
