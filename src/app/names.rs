//! Actor names. Every name carries a per-instance prefix, so several Warden
//! instances (tests, chaos scenarios) can run side by side in one process even
//! though ractor's registry is process-global.

use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

/// The names of one Warden instance's actors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Default for Names {
    fn default() -> Self {
        Self::new()
    }
}

impl Names {
    /// Names for a new instance, unique within this process.
    pub fn new() -> Self {
        let instance = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed);
        Self {
            prefix: format!("warden{instance}"),
        }
    }

    /// The registered name of the actor with this role, e.g. `warden1.audit`.
    pub fn of(&self, role: &str) -> String {
        format!("{}.{role}", self.prefix)
    }

    /// The root supervisor.
    pub fn root(&self) -> String {
        self.of("root")
    }

    /// The audit writer.
    pub fn audit(&self) -> String {
        self.of("audit")
    }

    /// The probes supervisor.
    pub fn probes(&self) -> String {
        self.of("probes")
    }

    /// The HTTP API server.
    pub fn api(&self) -> String {
        self.of("api")
    }
}
