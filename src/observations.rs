//! What the probes observe, shared by the pipeline: each probe's latest
//! observation, its recent history, and the queue of observations waiting
//! for the debouncer. One writer per entry: a probe's actor records its own
//! observations ([`record`]) and nothing else writes here; the debouncer,
//! the consumers, the escalation cycles and the API only read. These stores
//! outlive actor restarts (they are made once per boot in `app/handles.rs`).
//!
//! Decisions are not taken from here: what a consumer decides on is in the
//! audit log (a wake row carries the observation it fired on). These are
//! for verifying a heal, evidence snapshots, trends and the dashboard.

mod queue;

use std::collections::VecDeque;
use std::sync::Arc;

use crate::messages::Observation;

pub use queue::{ObservationQueue, QUEUE_CAPACITY};

/// The latest observation per probe.
pub type LatestObservations = Arc<dashmap::DashMap<String, Observation>>;
/// The recent observations per probe (oldest first, bounded by
/// `wake.history`), without their details (the latest one has them).
pub type ObservationHistory = Arc<dashmap::DashMap<String, VecDeque<Observation>>>;

/// Records `observation` as its probe's latest and appends it to the
/// probe's history of at most `history_len` entries; called only by that
/// probe's actor.
pub fn record(
    latest: &LatestObservations,
    history: &ObservationHistory,
    observation: &Observation,
    history_len: usize,
) {
    latest.insert(observation.probe.clone(), observation.clone());
    // Sized once for the configured length: grown by doubling it would
    // settle at the next power of two (32 slots for the default 20).
    let len = history_len.max(1);
    let mut recent = history
        .entry(observation.probe.clone())
        .or_insert_with(|| VecDeque::with_capacity(len));
    while recent.len() >= len {
        recent.pop_front();
    }
    // The history is for trends (status, latency, reasons over time); the
    // details of the latest one are in `latest` and in the wake row.
    recent.push_back(Observation {
        details: serde_json::Value::Null,
        ..observation.clone()
    });
}
