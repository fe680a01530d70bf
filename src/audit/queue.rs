//! [`AuditLog`] (the client every actor holds) and [`AuditQueue`] (the writer's
//! end). Both share one queue made once by the service, so rows appended while
//! the writer actor restarts wait for the next instance instead of being lost.
//!
//! The queue is bounded ([`QUEUE_CAPACITY`]), so a failing disk costs a
//! fixed amount of memory instead of growing until the process dies. Rows a
//! client asks for ([`AuditLog::try_submit`], the API) may fill only half of
//! it and are refused beyond, so callers outside the process can never crowd
//! out Warden's own rows. Warden's own rows are refused only when the queue
//! is full; they are then counted, and the writer records how many were lost
//! (`audit.rows_dropped`) as soon as it writes again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use ractor::RpcReplyPort;
use tokio::sync::{oneshot, watch};

use super::{AuditError, AuditHealth, NewRow};

/// Where the answer to a queued item goes.
pub(crate) enum Reply {
    /// Nobody waits (`append_nowait`).
    None,
    /// An `AuditLog` call.
    Oneshot(oneshot::Sender<Result<u64, AuditError>>),
    /// An actor call (`AuditMsg::Flush`).
    Port(RpcReplyPort<Result<u64, AuditError>>),
    /// A [`Pending`] row, which its caller may withdraw while it is queued.
    Tagged(u64, oneshot::Sender<Result<u64, AuditError>>),
}

impl Reply {
    pub(crate) fn send(self, result: Result<u64, AuditError>) {
        // A caller that stopped waiting is not an error for the writer.
        match self {
            Self::None => {}
            Self::Oneshot(tx) | Self::Tagged(_, tx) => {
                let _ = tx.send(result);
            }
            Self::Port(port) => {
                let _ = port.send(result);
            }
        }
    }
}

/// One queued request.
pub(crate) enum Item {
    /// A row to append; answered with its seq once durable.
    Row(NewRow, Reply),
    /// Answered with the last durable seq once everything queued before it is
    /// durable (forces a sync even with `fsync = never`).
    Barrier(Reply),
}

/// How a writer thread is asked to end; only ever raised (run → drain → now).
#[derive(Debug, Default)]
pub(crate) struct StopFlag {
    mode: AtomicU8,
    /// Items a draining writer still owes: those queued when it was asked
    /// to stop. Rows appended after that wait in the queue for the next
    /// instance, so a graceful stop ends even while appenders keep going.
    owed: AtomicUsize,
}

/// Keep committing.
const RUN: u8 = 0;
/// Commit what is queued, then exit; give up at the first failure.
const DRAIN: u8 = 1;
/// Exit after the batch in hand.
const NOW: u8 = 2;

impl StopFlag {
    /// Graceful stop (`post_stop`): commit the `queued` items first. Call it
    /// with the queue locked, so `queued` and the batches the thread counts
    /// against it are split at the same point.
    pub(crate) fn drain(&self, queued: usize) {
        self.owed.store(queued, Ordering::SeqCst);
        self.mode.fetch_max(DRAIN, Ordering::SeqCst);
    }

    /// Kill or replacement: stop after the current batch.
    pub(crate) fn now(&self) {
        self.mode.fetch_max(NOW, Ordering::SeqCst);
    }

    /// Whether a graceful stop has been asked for.
    pub(crate) fn is_draining(&self) -> bool {
        self.mode.load(Ordering::SeqCst) == DRAIN
    }

    /// Records `n` items taken from the queue after the drain was asked for
    /// and committed.
    pub(crate) fn committed(&self, n: usize) {
        let _ = self
            .owed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |owed| {
                Some(owed.saturating_sub(n))
            });
    }

    /// Whether the thread should exit, given whether the queue is empty.
    pub(crate) fn should_exit(&self, queue_empty: bool) -> bool {
        match self.mode.load(Ordering::SeqCst) {
            RUN => false,
            DRAIN => queue_empty || self.owed.load(Ordering::SeqCst) == 0,
            _ => true,
        }
    }
}

/// The running writer thread of the current actor instance.
pub(crate) struct WriterSlot {
    pub(crate) stop: Arc<StopFlag>,
    pub(crate) wake: std::sync::mpsc::Sender<()>,
    pub(crate) handle: JoinHandle<()>,
}

/// An item was not queued (and is dropped): the queue is at its limit.
#[derive(Debug)]
pub(crate) struct QueueFull;

/// Most items the queue holds; see the module docs for who may fill it.
pub const QUEUE_CAPACITY: usize = 65_536;

pub(crate) struct Shared {
    items: Mutex<VecDeque<Item>>,
    /// Most items queued at once.
    capacity: usize,
    /// Warden's own rows refused because the queue was full, not yet recorded.
    pub(crate) dropped: AtomicU64,
    /// Ids of [`Pending`] rows.
    next_tag: AtomicU64,
    /// Signalled when items arrive or a writer is told to stop.
    pub(crate) ready: Condvar,
    pub(crate) health: Arc<AuditHealth>,
    /// Last durable seq, for consumers that want to be told of new rows.
    pub(crate) durable: watch::Sender<u64>,
    /// The thread of the live writer instance; a new instance stops and joins
    /// the old one before touching the files, so two never write at once.
    pub(crate) writer: Mutex<Option<WriterSlot>>,
}

impl Shared {
    pub(crate) fn items(&self) -> MutexGuard<'_, VecDeque<Item>> {
        // Queue operations are single push/pop calls that leave it consistent.
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn writer_slot(&self) -> MutexGuard<'_, Option<WriterSlot>> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, item: Item) {
        self.items().push_back(item);
        self.ready.notify_all();
    }

    /// Pushes `item` only if `allowed` says yes, deciding under the queue's
    /// lock: every item queued before this one was queued before the
    /// decision, and every item queued after it, after.
    pub(crate) fn push_if<E>(
        &self,
        item: Item,
        allowed: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let mut queue = self.items();
        allowed()?;
        queue.push_back(item);
        drop(queue);
        self.ready.notify_all();
        Ok(())
    }

    /// Queues `item` if fewer than `limit` items wait; drops it otherwise.
    fn push_within(&self, item: Item, limit: usize) -> Result<(), QueueFull> {
        let mut queue = self.items();
        if queue.len() >= limit {
            return Err(QueueFull);
        }
        queue.push_back(item);
        drop(queue);
        self.ready.notify_all();
        Ok(())
    }

    /// Queues one of Warden's own rows, or counts it as dropped when full.
    fn push_own(&self, item: Item) -> Result<(), QueueFull> {
        self.push_within(item, self.capacity).inspect_err(|_| {
            if self.dropped.fetch_add(1, Ordering::SeqCst) == 0 {
                tracing::error!(
                    capacity = self.capacity,
                    "The audit queue is full (the log has not been writable for a while); rows are being dropped and counted."
                );
            }
        })
    }

    /// Puts unacknowledged items back at the head, in their order.
    pub(crate) fn push_front(&self, items: Vec<Item>) {
        let mut queue = self.items();
        for item in items.into_iter().rev() {
            queue.push_front(item);
        }
        drop(queue);
        self.ready.notify_all();
    }
}

/// Cheap-to-clone client of the audit log, used by every other actor and the
/// HTTP API. Made once by the service with [`AuditLog::new`].
#[derive(Clone)]
pub struct AuditLog {
    shared: Arc<Shared>,
}

/// The writer's end of the shared queue; goes into
/// [`AuditWriterArgs`](super::AuditWriterArgs) and outlives writer instances.
#[derive(Clone)]
pub struct AuditQueue {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("queued", &self.queued())
            .finish()
    }
}

impl std::fmt::Debug for AuditQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditQueue")
            .field("queued", &self.shared.items().len())
            .finish()
    }
}

impl AuditQueue {
    /// The health value the writer updates (the same one [`AuditLog::health`] returns).
    pub fn health(&self) -> Arc<AuditHealth> {
        self.shared.health.clone()
    }
}

impl AuditLog {
    /// Creates the shared queue: the client, and the end to pass to the writer.
    pub fn new() -> (AuditLog, AuditQueue) {
        Self::with_capacity(QUEUE_CAPACITY)
    }

    /// [`new`](Self::new) with a queue of `capacity` items (at least 2).
    pub fn with_capacity(capacity: usize) -> (AuditLog, AuditQueue) {
        let (durable, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            items: Mutex::new(VecDeque::new()),
            capacity: capacity.max(2),
            dropped: AtomicU64::new(0),
            next_tag: AtomicU64::new(0),
            ready: Condvar::new(),
            health: Arc::new(AuditHealth::new()),
            durable,
            writer: Mutex::new(None),
        });
        (
            AuditLog {
                shared: shared.clone(),
            },
            AuditQueue { shared },
        )
    }

    /// Appends `row`; resolves with its seq once it is durable (per the fsync
    /// policy). While the writer is failing or restarting this waits: wrap it
    /// in a timeout where waiting is not acceptable (the row stays queued).
    /// Fails at once with [`AuditError::QueueFull`] when the queue is full.
    pub async fn append(&self, row: NewRow) -> Result<u64, AuditError> {
        self.submit(row).await
    }

    /// Queues `row` now, before the returned future is polled, and resolves
    /// with its seq once it is durable, like [`append`](Self::append). Rows
    /// submitted one after the other keep that order in the log, so a caller
    /// with several rows submits them all and then awaits them: they share
    /// one write and fsync instead of waiting for one each.
    pub fn submit(
        &self,
        row: NewRow,
    ) -> impl Future<Output = Result<u64, AuditError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let queued = self.shared.push_own(Item::Row(row, Reply::Oneshot(tx)));
        async move {
            queued.map_err(|_| AuditError::QueueFull)?;
            rx.await.map_err(|_| AuditError::WriterGone)?
        }
    }

    /// Queues a row a client asked for (the API), only while the queue is
    /// less than half full, so clients cannot crowd out Warden's own rows.
    /// The [`Pending`] resolves once the row is durable, and can be
    /// withdrawn while the writer has not taken it yet.
    pub fn try_submit(&self, row: NewRow) -> Result<Pending, AuditError> {
        let tag = self.shared.next_tag.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared
            .push_within(
                Item::Row(row, Reply::Tagged(tag, tx)),
                self.shared.capacity / 2,
            )
            .map_err(|_| AuditError::QueueFull)?;
        Ok(Pending {
            tag,
            shared: self.shared.clone(),
            rx,
        })
    }

    /// Queues `row` only if `allowed` returns `Ok` at the moment the row
    /// takes its place in the log's order; otherwise nothing is queued and
    /// the refusal is returned. The returned future resolves like
    /// [`submit`](Self::submit).
    ///
    /// This makes a check and the row that records acting on it one step
    /// with respect to every other row: code that sets shared state (a
    /// pause, a freeze) *before* queuing the row recording it is either
    /// ordered after this row, or seen by `allowed`. `allowed` runs under
    /// the queue's lock, so it must be quick and must not append.
    pub fn submit_if<E>(
        &self,
        row: NewRow,
        allowed: impl FnOnce() -> Result<(), E>,
    ) -> Result<impl Future<Output = Result<u64, AuditError>> + Send + 'static, E> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .push_if(Item::Row(row, Reply::Oneshot(tx)), allowed)?;
        Ok(async move { rx.await.map_err(|_| AuditError::WriterGone)? })
    }

    /// Appends `row` without waiting, for synchronous callers. The row is
    /// queued and written like any other; only when the queue is full is it
    /// dropped, and then counted in an `audit.rows_dropped` row.
    pub fn append_nowait(&self, row: NewRow) {
        let _ = self.shared.push_own(Item::Row(row, Reply::None));
    }

    /// Warden's own rows dropped on a full queue and not yet recorded.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::SeqCst)
    }

    /// Resolves once everything queued before this call is durable (synced
    /// even with `fsync = never`). Used at shutdown.
    pub async fn flush(&self) -> Result<(), AuditError> {
        self.flush_seq().await.map(|_| ())
    }

    /// Like [`flush`](Self::flush), returning the last durable seq (0 when the log is empty).
    pub async fn flush_seq(&self) -> Result<u64, AuditError> {
        let (tx, rx) = oneshot::channel();
        // A barrier holds no row, and a full queue is when a flush (the
        // shutdown drain) matters most: it is never refused for capacity.
        self.shared
            .push_within(Item::Barrier(Reply::Oneshot(tx)), usize::MAX)
            .map_err(|_| AuditError::QueueFull)?;
        rx.await.map_err(|_| AuditError::WriterGone)?
    }

    /// The writer's shared health value.
    pub fn health(&self) -> Arc<AuditHealth> {
        self.shared.health.clone()
    }

    /// Watches the last durable seq (0 until the first row), so consumers can
    /// wake on new rows instead of polling.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.durable.subscribe()
    }

    /// Casts `message()` to `actor` each time new rows become durable, for
    /// as long as the actor takes messages: how a consumer on a cursor hears
    /// that there is more to read. The caller owns the task and aborts it
    /// when its state drops (a killed actor skips `post_stop`).
    pub fn wake_on_durable<M: ractor::Message>(
        &self,
        actor: ractor::ActorRef<M>,
        message: fn() -> M,
    ) -> tokio::task::JoinHandle<()> {
        let mut durable = self.subscribe();
        tokio::spawn(async move {
            while durable.changed().await.is_ok() {
                if actor.cast(message()).is_err() {
                    return;
                }
            }
        })
    }

    /// How many requests wait for the writer.
    pub fn queued(&self) -> usize {
        self.shared.items().len()
    }
}

/// A row queued by [`AuditLog::try_submit`].
pub struct Pending {
    tag: u64,
    shared: Arc<Shared>,
    rx: oneshot::Receiver<Result<u64, AuditError>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("tag", &self.tag).finish()
    }
}

impl Pending {
    /// Waits until the row is durable; answers its seq. Cancel-safe: after a
    /// timeout, call [`withdraw`](Self::withdraw) or wait again.
    pub async fn durable(&mut self) -> Result<u64, AuditError> {
        (&mut self.rx).await.map_err(|_| AuditError::WriterGone)?
    }

    /// Takes the row out of the queue if the writer has not taken it yet:
    /// `Ok` means it will never be written. `Err` gives it back when the
    /// writer already holds it (it is then written as soon as the disk
    /// allows, or the process ends).
    pub fn withdraw(self) -> Result<(), Self> {
        let mut queue = self.shared.items();
        let position = queue.iter().position(
            |item| matches!(item, Item::Row(_, Reply::Tagged(tag, _)) if *tag == self.tag),
        );
        match position {
            Some(position) => {
                queue.remove(position);
                Ok(())
            }
            None => {
                drop(queue);
                Err(self)
            }
        }
    }
}
