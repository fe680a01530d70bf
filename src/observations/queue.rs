//! The queue between probe actors and the debouncer. It is created once per
//! Warden instance and outlives every debouncer instance: observations that
//! arrive while the debouncer is being restarted wait here, and one the
//! debouncer was handling when it died is still at the front, so a killed
//! debouncer loses no count. Each entry carries an id so an observation
//! already applied to the shared state is never applied twice.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::messages::Observation;

/// Most observations held before the oldest is dropped (and counted). With
/// 10,000 probes this is several cycles of slack; it only fills if the
/// debouncer is down for long, and then the newest observations matter most.
pub const QUEUE_CAPACITY: usize = 100_000;

#[derive(Default)]
struct Inner {
    items: Mutex<VecDeque<(u64, Observation)>>,
    next_id: AtomicU64,
    dropped: AtomicUsize,
}

/// Shared FIFO of observations awaiting the debouncer.
#[derive(Clone, Default)]
pub struct ObservationQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ObservationQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservationQueue")
            .field("len", &self.len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl ObservationQueue {
    fn items(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, Observation)>> {
        self.inner
            .items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an observation at the back.
    pub fn push(&self, observation: Observation) {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut items = self.items();
        if items.len() >= QUEUE_CAPACITY {
            items.pop_front();
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
        items.push_back((id, observation));
    }

    /// The oldest observation, left in place until [`ObservationQueue::done`].
    pub fn front(&self) -> Option<(u64, Observation)> {
        self.items().front().cloned()
    }

    /// Removes the front entry if it is still `id`.
    pub fn done(&self, id: u64) {
        let mut items = self.items();
        if items.front().is_some_and(|(front, _)| *front == id) {
            items.pop_front();
        }
    }

    /// Observations waiting.
    pub fn len(&self) -> usize {
        self.items().len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Observations dropped because the queue was full.
    pub fn dropped(&self) -> usize {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}
