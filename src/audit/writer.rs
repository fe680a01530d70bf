//! The [`AuditWriter`] actor: owns the one thread that appends to the log.
//!
//! In: [`AuditMsg::Flush`] (answered with the last durable seq once everything
//! queued before it is durable) and [`AuditMsg::Stats`]. Rows do not travel
//! through the mailbox: callers push them into the shared [`AuditQueue`]
//! through [`AuditLog`](super::AuditLog), and the writer thread
//! (`writer/committer.rs`) drains it with group commit.
//!
//! Restart safety: `pre_start` first stops and joins the thread of a previous
//! instance (a killed actor skips `post_stop`, so its thread may still be
//! finishing a batch), then runs [`recover`](super::recover), then starts a
//! new thread on the same queue, which picks up whatever was appended
//! meanwhile. Dropping the state (kill, panic) tells the thread to stop after
//! its current batch. A graceful stop (`post_stop`) first commits everything
//! queued, giving up at the first write error (those rows stay queued for the
//! next instance, so stopping never hangs on a failing disk), and waits for
//! the thread.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::queue::{Item, Reply, Shared, StopFlag, WriterSlot};
use super::{AuditError, AuditFaults, AuditHealth, AuditHealthSnapshot, AuditQueue, FsyncPolicy};

mod committer;

use committer::{CommitConfig, Committer};

/// Everything a writer instance needs; cloned by a supervisor for each restart.
#[derive(Debug, Clone)]
pub struct AuditWriterArgs {
    /// The log directory (`<state_dir>/audit`); created if missing.
    pub dir: PathBuf,
    /// When a row counts as durable.
    pub fsync: FsyncPolicy,
    /// Most rows in one write + sync (`batch`/`never`); at least 1.
    pub batch_max: usize,
    /// Start a new file once the current one is at least this many bytes.
    pub rotate_bytes: u64,
    /// The shared queue from [`AuditLog::new`](super::AuditLog::new); outlives instances.
    pub queue: AuditQueue,
    /// Where the writer reports health; should be `queue.health()` so
    /// [`AuditLog::health`](super::AuditLog::health) sees the same value.
    pub health: Arc<AuditHealth>,
    /// First wait before retrying a failed write (doubles each failure).
    pub retry_min: Duration,
    /// Longest wait between retries.
    pub retry_max: Duration,
    /// Injected I/O failures (tests, chaos); `None` in production.
    pub faults: Option<Arc<AuditFaults>>,
    /// Cluster mode: the JetStream stream that is the log (the files in
    /// `dir` are then this node's copy of it). `None`: a local log.
    pub stream: Option<Arc<crate::cluster::StreamLog>>,
}

impl AuditWriterArgs {
    /// Defaults: `fsync = batch`, `batch_max = 1024`, `rotate_bytes = 64 MiB`,
    /// retries 50 ms doubling to 1 s, no faults.
    pub fn new(dir: impl Into<PathBuf>, queue: AuditQueue) -> Self {
        Self {
            dir: dir.into(),
            fsync: FsyncPolicy::Batch,
            batch_max: 1024,
            rotate_bytes: 64 * 1024 * 1024,
            health: queue.health(),
            queue,
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_secs(1),
            faults: None,
            stream: None,
        }
    }
}

/// Requests to the writer actor.
#[derive(Debug)]
pub enum AuditMsg {
    /// Answer with the last durable seq once everything queued so far is durable.
    Flush(RpcReplyPort<Result<u64, AuditError>>),
    /// Answer with the current health counters.
    Stats(RpcReplyPort<AuditHealthSnapshot>),
}

/// A writer instance's handle on its thread.
pub struct AuditWriterState {
    shared: Arc<Shared>,
    health: Arc<AuditHealth>,
    stop: Arc<StopFlag>,
    wake: mpsc::Sender<()>,
}

impl Drop for AuditWriterState {
    fn drop(&mut self) {
        // Runs on kill and panic too (which skip post_stop): the thread must
        // not outlive its instance, or two threads could append at once.
        self.stop.now();
        signal_stop(&self.shared, &self.wake);
    }
}

/// The audit writer actor (stateless; see [`AuditWriterArgs`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditWriter;

impl Actor for AuditWriter {
    type Msg = AuditMsg;
    type State = AuditWriterState;
    type Arguments = AuditWriterArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let shared = args.queue.shared.clone();
        let previous = shared.writer_slot().take();
        if let Some(previous) = previous {
            previous.stop.now();
            signal_stop(&shared, &previous.wake);
            join(previous.handle).await?;
        }
        let stop = Arc::new(StopFlag::default());
        let (wake, wake_rx) = mpsc::channel();
        let config = commit_config(&args);
        let (thread_shared, thread_stop) = (shared.clone(), stop.clone());
        let (committer, report) = tokio::task::spawn_blocking(move || {
            let report = super::recover(&config.dir)?;
            let committer = Committer::open(config, thread_shared, &report, thread_stop, wake_rx)?;
            Ok::<_, AuditError>((committer, report))
        })
        .await
        .map_err(|e| AuditError::WriterThread(e.to_string()))??;
        if let Some(t) = &report.truncated {
            // First in line, so it gets last_good_seq + 1.
            let row = crate::events::row(&crate::events::service::AuditRecovered {
                file: t.file.display().to_string(),
                truncated_bytes: t.truncated_bytes,
                last_good_seq: t.last_good_seq,
            })
            .component("audit");
            shared.push_front(vec![Item::Row(row, Reply::None)]);
        }
        let last = report.last_good_seq.unwrap_or(0);
        args.health.set_durable_seq(last);
        shared.durable.send_if_modified(|seq| {
            let newer = last > *seq;
            *seq = (*seq).max(last);
            newer
        });
        let handle = std::thread::Builder::new()
            .name("audit-writer".to_owned())
            .spawn(move || committer.run())
            .map_err(|e| AuditError::WriterThread(e.to_string()))?;
        *shared.writer_slot() = Some(WriterSlot {
            stop: stop.clone(),
            wake: wake.clone(),
            handle,
        });
        tracing::info!(
            dir = %args.dir.display(),
            next_seq = report.next_seq(),
            fsync = ?args.fsync,
            "Audit writer started."
        );
        Ok(AuditWriterState {
            shared,
            health: args.health,
            stop,
            wake,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Graceful stop: what was appended before it is committed first, so a
        // stopped writer leaves nothing behind unless the disk is failing.
        // Only that: under sustained appends "until the queue is empty"
        // would never come (a chaos run saw a stop take forever).
        {
            let queue = state.shared.items();
            state.stop.drain(queue.len());
        }
        signal_stop(&state.shared, &state.wake);
        let mine = take_if_ours(&state.shared, &state.stop);
        if let Some(mine) = mine {
            join(mine.handle).await?;
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            AuditMsg::Flush(reply) => on_flush(state, reply),
            AuditMsg::Stats(reply) => on_stats(state, reply),
        }
        Ok(())
    }
}

fn on_flush(state: &AuditWriterState, reply: RpcReplyPort<Result<u64, AuditError>>) {
    // Answered by the thread, in queue order; the actor never blocks on I/O.
    state.shared.push(Item::Barrier(Reply::Port(reply)));
}

fn on_stats(state: &AuditWriterState, reply: RpcReplyPort<AuditHealthSnapshot>) {
    let _ = reply.send(state.health.snapshot());
}

fn commit_config(args: &AuditWriterArgs) -> CommitConfig {
    CommitConfig {
        dir: args.dir.clone(),
        fsync: args.fsync,
        batch_max: args.batch_max.max(1),
        rotate_bytes: args.rotate_bytes,
        retry_min: args.retry_min,
        retry_max: args.retry_max.max(args.retry_min),
        faults: args.faults.clone(),
        health: args.health.clone(),
        stream: args
            .stream
            .clone()
            .map(|log| (log, tokio::runtime::Handle::current())),
    }
}

/// Cluster mode: brings the local copy of the log up to the stream's end
/// before the writer starts, because boot reads the log (open issues,
/// consumers' state) before the tree is up. Does nothing for a local log,
/// and leaves a copy with a torn last line to the writer, which repairs it
/// and records the repair.
pub async fn copy_stream(args: &AuditWriterArgs) -> Result<(), AuditError> {
    if args.stream.is_none() {
        return Ok(());
    }
    let config = commit_config(args);
    let (_log, queue) = super::AuditLog::new();
    let shared = queue.shared.clone();
    let stop = Arc::new(StopFlag::default());
    let (_wake, wake_rx) = mpsc::channel();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&config.dir).map_err(|e| AuditError::io(&config.dir, e))?;
        let report = super::inspect(&config.dir)?;
        if report.truncated.is_some() {
            return Ok(());
        }
        Committer::open(config, shared, &report, stop, wake_rx).map(drop)
    })
    .await
    .map_err(|e| AuditError::WriterThread(e.to_string()))?
}

/// Takes the writer slot if it holds the thread of the instance owning `stop`.
fn take_if_ours(shared: &Shared, stop: &Arc<StopFlag>) -> Option<WriterSlot> {
    let mut slot = shared.writer_slot();
    let ours = slot.as_ref().is_some_and(|s| Arc::ptr_eq(&s.stop, stop));
    if ours { slot.take() } else { None }
}

/// Wakes a writer thread so it sees its raised [`StopFlag`].
fn signal_stop(shared: &Shared, wake: &mpsc::Sender<()>) {
    // Cuts a retry backoff short; the thread may already be gone.
    let _ = wake.send(());
    // Taking the lock orders the flag before the thread's next check-then-wait.
    drop(shared.items());
    shared.ready.notify_all();
}

async fn join(handle: JoinHandle<()>) -> Result<(), AuditError> {
    tokio::task::spawn_blocking(move || handle.join())
        .await
        .map_err(|e| AuditError::WriterThread(e.to_string()))?
        .map_err(|_| AuditError::WriterThread("writer thread panicked".to_owned()))
}

#[cfg(test)]
mod tests;
