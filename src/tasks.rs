//! Helper tasks tied to the lifetime of their owner.
//!
//! An actor that spawns a task (a ticker, a timer, a serve loop) must not
//! leave it running when it goes away. `post_stop` is not enough: a killed or
//! panicked actor skips it and only drops its state, so the state holds an
//! [`AbortOnDrop`] for each task it owns.

use tokio::task::{AbortHandle, JoinHandle};

/// Aborts a task when dropped.
///
/// It keeps only the task's abort handle, so the owner may still hold (and
/// await) the [`JoinHandle`] itself, and one guard type fits tasks of any
/// output.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(AbortHandle);

impl AbortOnDrop {
    /// A guard for `task`.
    pub(crate) fn new<T>(task: &JoinHandle<T>) -> Self {
        Self(task.abort_handle())
    }

    /// Whether the task has ended.
    pub(crate) fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
