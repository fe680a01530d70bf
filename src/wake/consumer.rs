//! `WakeConsumer`: reads the audit log after its durable cursor, hands each
//! wake row to an event task (in order per issue, concurrently across issues),
//! offers undelivered notices again on a timer, and stores the cursor as the
//! watermark of finished rows moves.
//!
//! In: [`WakeMsg::Pump`] (new durable rows; sent by a watcher on the audit
//! log's durable seq), [`WakeMsg::Finished`], [`WakeMsg::Redeliver`] (timer),
//! [`WakeMsg::Redelivered`]. Out: `probe.investigation_completed`,
//! `notification.sent` and `notification.failed` rows, and the notices.
//!
//! Every task is owned: event tasks live in a `JoinSet` in the state, the
//! watcher and timer are aborted when the state drops (also on a kill).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::event::{self, EventContext, EventInput, EventResult};
use super::flight::Flight;
use super::ledger::Ledger;
use super::sessions::Sessions;
use super::{CURSOR_NAME, NOTICE_SEAM, WAKE_SEAMS};
use crate::audit::{AuditError, AuditLog, AuditReader, Cursor, RowHead, RowIter, RowRef};
use crate::debounce::ObservationHistory;
use crate::events::NoticeRequested;
use crate::investigate::Investigator;
use crate::notify::{Notice, Notifiers};
use crate::settings::WakeSettings;

/// Rows read from the log per batch.
const BATCH: usize = 256;
/// Least time between two cursor writes. The cursor may lag: a replay after a
/// crash skips recorded work through the ledger, so a lagging cursor costs a
/// rescan, never a duplicate; writing it on every row would cost an fsync each.
const CURSOR_EVERY: Duration = Duration::from_millis(200);
/// How stale the stored cursor may get while every message starts new work
/// (a replay after a crash rescans what it has not passed).
const CURSOR_LAG: Duration = Duration::from_secs(5);
/// Safety net: read the log this often even if no new-row signal arrived.
const POLL: Duration = Duration::from_secs(1);

/// Live counters of the consumer, shared with the API and tests.
#[derive(Debug, Default, Clone)]
pub struct WakeStatus(Arc<WakeCounters>);

#[derive(Debug, Default)]
struct WakeCounters {
    cursor: AtomicU64,
    read_up_to: AtomicU64,
    in_flight: AtomicU64,
    undelivered: AtomicU64,
    handled: AtomicU64,
}

/// A snapshot of [`WakeStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WakeSnapshot {
    /// The durable cursor: every row up to it is finished.
    pub cursor: u64,
    /// The last row read.
    pub read_up_to: u64,
    /// Wake rows read and not finished.
    pub in_flight: u64,
    /// Wake rows with a notice some notifier has not taken yet.
    pub undelivered: u64,
    /// Wake rows handled since start.
    pub handled: u64,
}

impl WakeStatus {
    /// The current values.
    pub fn snapshot(&self) -> WakeSnapshot {
        let c = &self.0;
        WakeSnapshot {
            cursor: c.cursor.load(Ordering::Relaxed),
            read_up_to: c.read_up_to.load(Ordering::Relaxed),
            in_flight: c.in_flight.load(Ordering::Relaxed),
            undelivered: c.undelivered.load(Ordering::Relaxed),
            handled: c.handled.load(Ordering::Relaxed),
        }
    }
}

/// Arguments, cloneable so the supervisor can respawn the consumer.
#[derive(Clone)]
pub struct WakeConsumerArgs {
    /// Append side of the audit log.
    pub audit: AuditLog,
    /// The log's directory.
    pub audit_dir: PathBuf,
    /// Where the durable cursor lives (`<state_dir>/cursors`).
    pub cursor_dir: PathBuf,
    /// The investigator.
    pub investigator: Investigator,
    /// The notifiers.
    pub notifiers: Notifiers,
    /// Recent observations per probe.
    pub history: ObservationHistory,
    /// `[wake]`.
    pub settings: WakeSettings,
    /// Runbook link given to the investigator and in notices.
    pub runbook: Option<String>,
    /// Live counters.
    pub status: WakeStatus,
    /// Metrics (investigations, notices).
    pub metrics: crate::metrics::Metrics,
}

/// Messages to the consumer.
#[derive(Debug)]
pub enum WakeMsg {
    /// New rows may be durable: read and start what is ready.
    Pump,
    /// An event task ended.
    Finished {
        /// The wake row's seq.
        seq: u64,
        /// The issue key.
        key: String,
        /// The row (kept for redelivery).
        row: Box<RowHead>,
        /// What it did, or the audit error that stopped it.
        result: Box<Result<EventResult, String>>,
    },
    /// Time to offer undelivered notices again.
    Redeliver,
    /// A redelivery round ended: per seq, the notifiers that still refuse.
    Redelivered(Result<Vec<(u64, Vec<String>)>, String>),
}

struct Undelivered {
    row: RowHead,
    notice: Notice,
    notifiers: Vec<String>,
}

/// The consumer's runtime state, rebuilt on every start.
pub struct WakeState {
    args: WakeConsumerArgs,
    ctx: Arc<EventContext>,
    reader: AuditReader,
    cursor: Cursor,
    stored: u64,
    stored_at: Instant,
    next_seq: u64,
    /// Kept between passes, so each pass reads on from the open file.
    rows: Option<RowIter>,
    flight: Flight<(RowHead, event::Work)>,
    ledger: Ledger,
    sessions: Sessions,
    undelivered: BTreeMap<u64, Undelivered>,
    redelivering: bool,
    tasks: JoinSet<()>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for WakeState {
    fn drop(&mut self) {
        // A killed consumer skips post_stop; nothing it spawned may outlive it.
        self.tasks.abort_all();
        for handle in &self.background {
            handle.abort();
        }
    }
}

/// The wake consumer actor.
pub struct WakeConsumer;

/// Rows before the cursor read back at start for the notifiers'
/// conversations (each delivery row is read for its seq and seam first).
const CONVERSATION_LOOKBACK: u64 = 50_000;

/// Tells each notifier which state its recent conversations were left in,
/// from the delivery rows of the log, so a restarted Warden does not post
/// a fact again (a second Slack "firing" post, a second PagerDuty trigger).
/// Rows after the cursor count too: they were delivered before a crash.
fn recall_conversations(reader: &AuditReader, notifiers: &Notifiers, cursor: u64) {
    use crate::events::{Delivered, Event};
    use crate::notify::DeliveryOutcome;
    let from = cursor.saturating_sub(CONVERSATION_LOOKBACK).max(1);
    let mut rows = reader.rows_from(from, None);
    let mut recalled = 0_u64;
    while let Some(item) = rows.next_head(
        |seam| Delivered::SEAMS.contains(&seam),
        |row| Delivered::from_row(row).ok(),
    ) {
        let Ok((_, Some(delivered))) = item else {
            continue;
        };
        if delivered.outcome == DeliveryOutcome::Failed {
            continue;
        }
        if let Some(key) = &delivered.conversation {
            notifiers.remember(&delivered.notifier, key, delivered.status);
            recalled += 1;
        }
    }
    if recalled > 0 {
        tracing::debug!(
            recalled,
            "Recalled the notifiers' conversations from the log."
        );
    }
}

/// Where the consumer starts: its stored cursor, or the log's tail on a
/// fresh install (history written before Warden had a consumer is not sent).
fn starting_point(
    cursor: &Cursor,
    reader: &AuditReader,
    audit: &AuditLog,
) -> Result<u64, AuditError> {
    match cursor.current() {
        Ok(Some(seq)) => Ok(seq),
        Ok(None) => {
            let tail = reader.last_seq()?.unwrap_or(0);
            cursor.store(tail)?;
            Ok(tail)
        }
        Err(AuditError::CorruptCursor { path, reason }) => {
            let tail = reader.last_seq()?.unwrap_or(0);
            tracing::error!(path = %path.display(), %reason, tail, "The wake cursor is unreadable; resuming at the log's tail.");
            audit.append_nowait(crate::events::row(
                &crate::events::service::WakeCursorReset {
                    path: path.display().to_string(),
                    reason,
                    resumed_at: tail,
                },
            ));
            cursor.store(tail)?;
            Ok(tail)
        }
        Err(other) => Err(other),
    }
}

impl Actor for WakeConsumer {
    type Msg = WakeMsg;
    type State = WakeState;
    type Arguments = WakeConsumerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: WakeConsumerArgs,
    ) -> Result<WakeState, ActorProcessingErr> {
        let reader = AuditReader::open(&args.audit_dir)?;
        let cursor = Cursor::new(&args.cursor_dir, CURSOR_NAME)?;
        let start = starting_point(&cursor, &reader, &args.audit)?;
        // What was already done for rows after the cursor (a crash between
        // recording work and moving the cursor), so the replay skips it.
        recall_conversations(&reader, &args.notifiers, start);
        let mut ledger = Ledger::default();
        let mut sessions = Sessions::default();
        let mut rows = reader.rows_from(start + 1, None);
        while let Some(item) = rows.next_head(
            |_| true,
            |row| {
                ledger.observe(row);
                sessions.observe(row);
                Some(())
            },
        ) {
            if let Err(error) = item {
                tracing::error!(error = %error, "Skipped an unreadable audit row while catching up.");
            }
        }
        let ctx = Arc::new(EventContext {
            audit: args.audit.clone(),
            investigator: args.investigator.clone(),
            notifiers: args.notifiers.clone(),
            history: args.history.clone(),
            runbook: args.runbook.clone(),
            metrics: args.metrics.clone(),
            fixes: sessions.fixes(),
        });
        let watcher = args.audit.wake_on_durable(myself.clone(), || WakeMsg::Pump);
        let timer = myself.send_interval(args.settings.redeliver_every, || WakeMsg::Redeliver);
        let poll = myself.send_interval(POLL, || WakeMsg::Pump);
        myself.cast(WakeMsg::Pump)?;
        args.status.0.cursor.store(start, Ordering::Relaxed);
        Ok(WakeState {
            flight: Flight::new(args.settings.max_concurrency, start),
            ctx,
            reader,
            cursor,
            stored: start,
            stored_at: Instant::now(),
            next_seq: start + 1,
            rows: None,
            ledger,
            sessions,
            undelivered: BTreeMap::new(),
            redelivering: false,
            tasks: JoinSet::new(),
            background: vec![watcher, timer, poll],
            args,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut WakeState,
    ) -> Result<(), ActorProcessingErr> {
        state.tasks.abort_all();
        for handle in &state.background {
            handle.abort();
        }
        store_cursor(state, true)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: WakeMsg,
        state: &mut WakeState,
    ) -> Result<(), ActorProcessingErr> {
        while state.tasks.try_join_next().is_some() {}
        match message {
            WakeMsg::Pump => {}
            WakeMsg::Finished {
                seq,
                key,
                row,
                result,
            } => {
                let result = result.map_err(|error| format!("wake event {seq}: {error}"))?;
                state.args.status.0.handled.fetch_add(1, Ordering::Relaxed);
                match result.notice {
                    Some(notice) if !result.undelivered.is_empty() => {
                        state.flight.stopped(&key, seq, false);
                        state.undelivered.insert(
                            seq,
                            Undelivered {
                                row: *row,
                                notice,
                                notifiers: result.undelivered,
                            },
                        );
                    }
                    _ => {
                        state.flight.stopped(&key, seq, true);
                        state.ledger.forget(seq);
                    }
                }
            }
            WakeMsg::Redeliver => start_redelivery(&myself, state),
            WakeMsg::Redelivered(result) => {
                state.redelivering = false;
                for (seq, still) in result.map_err(|error| format!("redelivery: {error}"))? {
                    if still.is_empty() {
                        state.undelivered.remove(&seq);
                        state.flight.finish(seq);
                        state.ledger.forget(seq);
                    } else if let Some(entry) = state.undelivered.get_mut(&seq) {
                        entry.notifiers = still;
                    }
                }
            }
        }
        read(state);
        // The cursor's write (a file, its fsync, the directory's fsync) runs
        // on this worker thread, and a task just spawned waits for the
        // thread it was spawned on: storing here would hold a fresh notice
        // back by the two fsyncs. So the cursor moves when nothing was
        // started: on the event's own `Finished`, or the next quiet poll;
        // in a stream that never pauses, once it is `CURSOR_LAG` old.
        if start_ready(&myself, state) == 0 || state.stored_at.elapsed() >= CURSOR_LAG {
            store_cursor(state, false)?;
        }
        Ok(())
    }
}

/// Reads rows after the last one read until the log is caught up or the
/// in-flight limit is reached.
fn read(state: &mut WakeState) {
    loop {
        if state.flight.in_flight() >= state.args.settings.max_in_flight {
            return;
        }
        let next_seq = state.next_seq;
        let reader = &state.reader;
        let mut iter = state
            .rows
            .take()
            .unwrap_or_else(|| reader.rows_from(next_seq, None));
        let mut count = 0;
        while count < BATCH {
            let Some(item) = iter.next_head(
                |_| true,
                |row| {
                    admit(state, row);
                    Some(())
                },
            ) else {
                break;
            };
            count += 1;
            match item {
                Ok(_) => {}
                Err(AuditError::CorruptRow {
                    path,
                    offset,
                    reason,
                }) => {
                    tracing::error!(path = %path.display(), offset, %reason, "Skipped a corrupt audit row.");
                }
                Err(error) => {
                    tracing::error!(error = %error, "Could not read the audit log; will retry on the next row.");
                    return;
                }
            }
        }
        state.rows = Some(iter);
        if count < BATCH {
            return;
        }
    }
}

fn admit(state: &mut WakeState, row: &RowRef<'_>) {
    state.next_seq = row.seq + 1;
    state
        .args
        .status
        .0
        .read_up_to
        .store(row.seq, Ordering::Relaxed);
    // What a row asks for never depends on the row itself being in its
    // story yet (`before` stops short of it).
    let work = work(row, &state.sessions);
    state.sessions.observe(row);
    let Some(work) = work else {
        state.flight.skip(row.seq);
        return;
    };
    let head = row.head();
    let key = work.key(&head);
    state.flight.admit(row.seq, key, (head, work));
}

/// What `row` asks of the consumer; `None` for a row it only passes over.
fn work(row: &RowRef<'_>, sessions: &Sessions) -> Option<event::Work> {
    if row.seam == NOTICE_SEAM {
        return match crate::events::parse::<NoticeRequested>(row) {
            Ok(requested) => Some(event::Work::Notice(Box::new(requested))),
            Err(error) => {
                tracing::warn!(error = %error, "A notice request does not have its seam's shape; it is skipped.");
                None
            }
        };
    }
    if !WAKE_SEAMS.contains(&row.seam.as_ref()) {
        return None;
    }
    let facts = event::wanted(row, sessions)?;
    let related = row
        .caller_session_id
        .as_deref()
        .map(|session| sessions.before(session, row.seq))
        .unwrap_or_default();
    Some(event::Work::Issue {
        facts: Box::new(facts),
        related,
    })
}

/// Starts every event the window allows; returns how many.
fn start_ready(myself: &ActorRef<WakeMsg>, state: &mut WakeState) -> usize {
    let mut started = 0;
    while let Some((seq, key, (row, work))) = state.flight.next_to_run() {
        started += 1;
        let input = EventInput {
            prior: state.ledger.completed(seq).cloned(),
            sent: state.ledger.sent_to(seq),
            work,
        };
        let (ctx, me) = (state.ctx.clone(), myself.clone());
        state.tasks.spawn(async move {
            let result = event::handle(ctx, &row, input)
                .await
                .map_err(|error| error.to_string());
            let _ = me.cast(WakeMsg::Finished {
                seq,
                key,
                row: Box::new(row),
                result: Box::new(result),
            });
        });
    }
    let status = &state.args.status.0;
    status
        .in_flight
        .store(state.flight.in_flight() as u64, Ordering::Relaxed);
    status
        .undelivered
        .store(state.undelivered.len() as u64, Ordering::Relaxed);
    started
}

/// One redelivery round at a time, oldest notice first. A notifier that
/// refuses once is not offered the rest of the round's notices, so a dead
/// endpoint costs one attempt series per round, not one per notice.
fn start_redelivery(myself: &ActorRef<WakeMsg>, state: &mut WakeState) {
    if state.redelivering || state.undelivered.is_empty() {
        return;
    }
    state.redelivering = true;
    let work: Vec<(u64, RowHead, Notice, Vec<String>)> = state
        .undelivered
        .iter()
        .map(|(seq, u)| (*seq, u.row.clone(), u.notice.clone(), u.notifiers.clone()))
        .collect();
    let (ctx, me) = (state.ctx.clone(), myself.clone());
    state.tasks.spawn(async move {
        let mut down: HashSet<String> = HashSet::new();
        let mut outcome = Vec::new();
        for (seq, row, notice, notifiers) in work {
            let (try_now, skipped): (Vec<String>, Vec<String>) =
                notifiers.into_iter().partition(|name| !down.contains(name));
            let mut still = skipped;
            if !try_now.is_empty() {
                match event::redeliver(ctx.clone(), row, notice, try_now).await {
                    Ok(refused) => {
                        down.extend(refused.iter().cloned());
                        still.extend(refused);
                    }
                    Err(error) => {
                        let _ = me.cast(WakeMsg::Redelivered(Err(error.to_string())));
                        return;
                    }
                }
            }
            outcome.push((seq, still));
        }
        let _ = me.cast(WakeMsg::Redelivered(Ok(outcome)));
    });
}

fn store_cursor(state: &mut WakeState, now: bool) -> Result<(), AuditError> {
    let mark = state.flight.watermark();
    if mark > state.stored && (now || state.stored_at.elapsed() >= CURSOR_EVERY) {
        state.cursor.store(mark)?;
        state.stored = mark;
        state.stored_at = Instant::now();
        state.args.status.0.cursor.store(mark, Ordering::Relaxed);
    }
    Ok(())
}
