//! `[chaos]`: the fault-injection surface used by the chaos suite. Off unless
//! a config turns it on; the embedded default never does.

use serde::{Deserialize, Serialize};

/// Chaos-testing settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChaosSettings {
    /// Serve `POST /api/chaos/faults` (operator token required) and arm the
    /// audit writer's I/O failpoints. Never enable this on a production host:
    /// anyone with the operator token can then kill Warden's actors.
    pub enabled: bool,
}
