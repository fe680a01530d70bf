//! Operational control: whether Warden may act (RUNNING), is holding still
//! with reasons (PAUSED), or is going down (STOPPED), and the boot gates that
//! decide the first of those.
//!
//! The state is shared, not owned by one actor, because the HTTP API, the
//! audit writer's fault reporting and every acting component read it on hot
//! paths; it is created once per Warden instance and survives actor restarts.

mod boot;
mod epoch;
mod gates;
mod state;

pub use boot::{
    BootGate, BootReport, BootStatus, ConfigOrigin, ConfigSourceKind, GateStatus, SetAside,
    check_cursors, check_state_dir,
};
pub use epoch::{DrEpoch, EpochCheck, EpochError, EpochFacts, EpochRecord, compare};
pub use gates::{BootFindings, boot_gates, dr_epoch};
pub use state::{EXPLICIT_REASONS, OperationalState, PendingHold, RunState, StateSnapshot};
