//! The supervisor's calls for dynamic use: `StartChild`, `TerminateChild`, `WhichChildren`.

use ractor::ActorCell;

use super::state::{Child, SupervisorState};
use super::{ChildInfo, SupervisorError};
use crate::ChildSpec;

impl SupervisorState {
    /// `StartChild`: appends and starts a child. A failure here is returned to
    /// the caller and does not count as a restart.
    pub(super) async fn add_child(
        &mut self,
        myself: &ActorCell,
        spec: ChildSpec,
    ) -> Result<(), SupervisorError> {
        if self.children.iter().any(|child| child.spec.id == spec.id) {
            return Err(SupervisorError::DuplicateChild(spec.id));
        }
        if let Some(max) = self.max_children
            && self.children.len() >= max
        {
            return Err(SupervisorError::MaxChildren(max));
        }
        let id = spec.id.clone();
        self.children.push(Child {
            spec,
            cell: None,
            restarts: 0,
            pending: false,
        });
        let idx = self.children.len() - 1;
        if let Err(error) = self.start_child(myself, idx).await {
            self.children.pop();
            return Err(SupervisorError::StartFailed { child: id, error });
        }
        Ok(())
    }

    /// `TerminateChild`: stops the child per its shutdown rule and removes it.
    pub(super) async fn terminate_child(&mut self, id: &str) -> Result<(), SupervisorError> {
        let Some(idx) = self.children.iter().position(|child| child.spec.id == id) else {
            return Err(SupervisorError::ChildNotFound(id.to_string()));
        };
        self.stop_child(idx).await;
        self.children.remove(idx);
        Ok(())
    }

    /// `WhichChildren`.
    pub(super) fn which_children(&self) -> Vec<ChildInfo> {
        self.children
            .iter()
            .map(|child| ChildInfo {
                id: child.spec.id.clone(),
                kind: child.spec.kind,
                restart: child.spec.restart,
                cell: child.cell.clone(),
                actor_id: child.cell.as_ref().map(ActorCell::get_id),
                restarts: child.restarts,
            })
            .collect()
    }
}
