//! A handle on the current root supervisor, so the API can ask whether the
//! tree is up without holding a reference that a restart would make stale.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ractor::ActorRef;
use serde::Serialize;
use warden_supervisors::SupervisorMsg;

/// One child of the root, as `/api/health` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ChildStatus {
    /// The child's id in the root's spec.
    pub id: String,
    /// Whether an instance is running right now.
    pub running: bool,
    /// Restarts since Warden started.
    pub restarts: u32,
}

/// The root supervisor of the current incarnation, if one is up.
#[derive(Debug, Clone, Default)]
pub struct TreeHandle {
    root: Arc<Mutex<Option<ActorRef<SupervisorMsg>>>>,
}

impl TreeHandle {
    /// Records the current root (None while it is down).
    pub fn set(&self, root: Option<ActorRef<SupervisorMsg>>) {
        *self.root.lock().unwrap_or_else(PoisonError::into_inner) = root;
    }

    /// The root's children, or None when the tree is down or does not answer in time.
    pub async fn children(&self, timeout: Duration) -> Option<Vec<ChildStatus>> {
        let root = self
            .root
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        let children = ractor::call_t!(
            root,
            SupervisorMsg::WhichChildren,
            timeout.as_millis() as u64
        )
        .ok()?;
        Some(
            children
                .into_iter()
                .map(|child| ChildStatus {
                    running: child.cell.is_some(),
                    restarts: child.restarts,
                    id: child.id,
                })
                .collect(),
        )
    }
}
