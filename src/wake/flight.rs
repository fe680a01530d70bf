//! The in-flight window. Rows are admitted in log order; rows of the same
//! issue (key) run one after the other, rows of different issues run
//! concurrently up to a limit, and the watermark is the highest seq below
//! which every admitted row is finished, which is what the cursor stores.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

/// Ordering and concurrency bookkeeping; pure, no I/O.
#[derive(Debug)]
pub struct Flight<T> {
    max_concurrency: usize,
    /// Every admitted seq not finished yet.
    unfinished: BTreeSet<u64>,
    /// Waiting items per key, in order.
    queues: HashMap<String, VecDeque<(u64, T)>>,
    /// Keys with an item running.
    running: HashSet<String>,
    /// Keys with waiting items and nothing running, in the order they became ready.
    ready: VecDeque<String>,
    /// Highest seq read from the log (admitted or skipped).
    read_up_to: u64,
}

impl<T> Flight<T> {
    /// An empty window that resumes after `cursor`.
    pub fn new(max_concurrency: usize, cursor: u64) -> Self {
        Self {
            max_concurrency: max_concurrency.max(1),
            unfinished: BTreeSet::new(),
            queues: HashMap::new(),
            running: HashSet::new(),
            ready: VecDeque::new(),
            read_up_to: cursor,
        }
    }

    /// A row that needs no work was read.
    pub fn skip(&mut self, seq: u64) {
        self.read_up_to = self.read_up_to.max(seq);
    }

    /// A row that needs work was read.
    pub fn admit(&mut self, seq: u64, key: String, item: T) {
        self.read_up_to = self.read_up_to.max(seq);
        self.unfinished.insert(seq);
        let queue = self.queues.entry(key.clone()).or_default();
        queue.push_back((seq, item));
        if queue.len() == 1 && !self.running.contains(&key) {
            self.ready.push_back(key);
        }
    }

    /// The next item to start, if the limit allows: its key is marked running.
    pub fn next_to_run(&mut self) -> Option<(u64, String, T)> {
        if self.running.len() >= self.max_concurrency {
            return None;
        }
        let key = self.ready.pop_front()?;
        let queue = self.queues.get_mut(&key)?;
        let (seq, item) = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(&key);
        }
        self.running.insert(key.clone());
        Some((seq, key, item))
    }

    /// The running item of `key` stopped; `finished` says whether `seq` is
    /// done (false keeps it unfinished, e.g. a notice still to redeliver).
    pub fn stopped(&mut self, key: &str, seq: u64, finished: bool) {
        self.running.remove(key);
        if finished {
            self.unfinished.remove(&seq);
        }
        if self.queues.contains_key(key) && !self.ready.iter().any(|k| k == key) {
            self.ready.push_back(key.to_owned());
        }
    }

    /// A seq kept unfinished earlier is done now.
    pub fn finish(&mut self, seq: u64) {
        self.unfinished.remove(&seq);
    }

    /// Every row up to and including this seq is finished.
    pub fn watermark(&self) -> u64 {
        match self.unfinished.first() {
            Some(first) => first.saturating_sub(1),
            None => self.read_up_to,
        }
    }

    /// Rows admitted and not finished.
    pub fn in_flight(&self) -> usize {
        self.unfinished.len()
    }

    /// Items running now.
    pub fn running(&self) -> usize {
        self.running.len()
    }
}

#[cfg(test)]
mod tests;
