//! The supervisor's calls for dynamic use: `StartChild(ren)`, `TerminateChild(ren)`, `WhichChildren`.

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
        match self.add_children(myself, vec![spec]).await.pop() {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    /// `TerminateChild`: stops the child per its shutdown rule and removes it.
    pub(super) async fn terminate_child(&mut self, id: &str) -> Result<(), SupervisorError> {
        if self
            .terminate_children(vec![id.to_owned()])
            .await
            .is_empty()
        {
            Ok(())
        } else {
            Err(SupervisorError::ChildNotFound(id.to_string()))
        }
    }

    /// `StartChildren`: [`add_child`](Self::add_child) for many, with one
    /// pass over the children for the duplicate check instead of one per
    /// child. Returns the children that did not start, with why.
    pub(super) async fn add_children(
        &mut self,
        myself: &ActorCell,
        specs: Vec<ChildSpec>,
    ) -> Vec<(String, SupervisorError)> {
        let mut known: std::collections::HashSet<String> = self
            .children
            .iter()
            .map(|child| child.spec.id.clone())
            .collect();
        let mut failed = Vec::new();
        for spec in specs {
            if !known.insert(spec.id.clone()) {
                failed.push((spec.id.clone(), SupervisorError::DuplicateChild(spec.id)));
                continue;
            }
            if let Some(max) = self.max_children
                && self.children.len() >= max
            {
                failed.push((spec.id.clone(), SupervisorError::MaxChildren(max)));
                continue;
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
                known.remove(&id);
                failed.push((
                    id.clone(),
                    SupervisorError::StartFailed { child: id, error },
                ));
            }
        }
        failed
    }

    /// `TerminateChildren`: [`terminate_child`](Self::terminate_child) for
    /// many, removing them in one pass. Returns the ids it did not know.
    pub(super) async fn terminate_children(&mut self, ids: Vec<String>) -> Vec<String> {
        let mut wanted: std::collections::HashSet<String> = ids.into_iter().collect();
        let mut gone = Vec::new();
        for idx in 0..self.children.len() {
            if wanted.remove(&self.children[idx].spec.id) {
                self.stop_child(idx).await;
                gone.push(idx);
            }
        }
        let mut idx = 0;
        self.children.retain(|_| {
            let keep = gone.binary_search(&idx).is_err();
            idx += 1;
            keep
        });
        wanted.into_iter().collect()
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
