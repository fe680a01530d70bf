//! A cluster node's duties beside its tree: saying it is up (membership),
//! taking its share of the probes ([`Ownership`]), and becoming the active
//! node when the lease is free: catching its copy of the log up, taking
//! over the cluster's state files, then starting the consumers. The lease
//! holder renews it and copies its state into the cluster until it stops
//! or loses the lease; losing it pauses every action and stops Warden.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ractor::ActorRef;
use warden_supervisors::SupervisorMsg;

use super::AppError;
use super::handles::Handles;
use super::spec::{Shared, leader_children, probe_child, probe_child_id};
use crate::cluster::{ClusterError, Lease, Members, Ownership, StateMirror, StreamLog};
use crate::control::OperationalState;
use crate::debounce::{DebouncerMsg, Reassigned};
use crate::settings::ClusterSettings;

/// How often a node says it is up and reads who else is.
const BEAT_EVERY: Duration = crate::cluster::MIRROR_EVERY;

/// How long a node that joined takes no probe from its peers: long enough
/// for each of them to read the list twice and stop checking what it gives
/// up, so a probe is not checked by two nodes while they move.
const SETTLE: Duration = Duration::from_millis(1500);

/// The consumers that read the log from a cursor, and so must resume where
/// the last active node stopped. A new cursor consumer must be added here,
/// or a failover would start it at the log's tail and skip rows.
const CONSUMERS: [&str; 3] = [
    crate::wake::CURSOR_NAME,
    crate::incidents::intake::CURSOR_NAME,
    crate::escalation::CURSOR_NAME,
];

/// What a cluster node needs beyond its tree.
pub(super) struct ClusterNode {
    pub(super) log: Arc<StreamLog>,
    pub(super) members: Members,
    pub(super) settings: ClusterSettings,
    /// Where a consumer with no cursor anywhere in the cluster starts: this
    /// node's log end at boot, so rows its peers' probes append before the
    /// first active node starts are not skipped.
    pub(super) boot_tail: u64,
}

impl ClusterSettings {
    /// Cluster mode: the node's connection to the log's stream and its
    /// membership entry, with its copy of the log brought up to the
    /// stream's end before boot reads it. `None` for a local log.
    pub(super) async fn join(
        &self,
        log: Option<Arc<StreamLog>>,
        args: &crate::audit::AuditWriterArgs,
    ) -> Result<Option<ClusterNode>, AppError> {
        let Some(log) = log else {
            return Ok(None);
        };
        super::audit::copy_stream(args).await?;
        let boot_tail = crate::audit::AuditReader::open(&args.dir)
            .and_then(|reader| reader.last_seq())
            .map_err(|error| AppError::Boot(format!("reading the audit log's end: {error}")))?
            .unwrap_or(0);
        // An entry outlives its node by a second less than the bound, and
        // every node reads the list every BEAT_EVERY.
        let ttl = self
            .rebalance_within
            .saturating_sub(Duration::from_secs(1))
            .max(Duration::from_secs(1));
        let members = log.members(ttl).await?;
        members.beat("standby").await;
        Ok(Some(ClusterNode {
            log,
            members,
            settings: self.clone(),
            boot_tail,
        }))
    }
}

/// The node task and the sender that asks it to step down (release the
/// lease, leave the membership).
pub(super) type Keeper = Option<(
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
)>;

/// Where the node task leaves the error that ended the active node.
pub(super) type Lost = Arc<Mutex<Option<ClusterError>>>;

/// Starts the node's duties (see the module doc).
pub(super) fn spawn(node: Option<ClusterNode>, shared: &Shared, h: &Handles) -> (Keeper, Lost) {
    let lost: Lost = Arc::default();
    let (Some(node), Some(ownership)) = (node, h.ownership.clone()) else {
        return (None, lost);
    };
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let (mover, mut moves) = tokio::sync::mpsc::unbounded_channel();
    let probe_index: std::collections::HashMap<String, usize> = shared
        .probe_args
        .iter()
        .enumerate()
        .map(|(i, args)| (args.probe.name.clone(), i))
        .collect();
    let duties = Duties {
        node,
        ownership,
        shared: shared.clone(),
        state: h.state.clone(),
        requested: h.requested.clone(),
        state_dir: h.settings.service.state_dir.clone(),
        audit_dir: h.audit_dir.clone(),
        audit: h.audit.clone(),
        debouncer: h.names.of("debouncer"),
        lost: lost.clone(),
        joined: tokio::time::Instant::now(),
        mover,
    };
    let task = tokio::spawn(duties.run(released));
    let (shared, index) = (shared.clone(), probe_index);
    tokio::spawn(async move {
        // Ends when the node task drops its sender.
        while let Some(moved) = moves.recv().await {
            move_probe_actors(&shared, &index, &moved).await;
        }
    });
    (Some((task, release)), lost)
}

struct Duties {
    node: ClusterNode,
    ownership: Ownership,
    shared: Shared,
    state: OperationalState,
    requested: Arc<tokio::sync::Notify>,
    state_dir: PathBuf,
    audit_dir: PathBuf,
    audit: crate::audit::AuditLog,
    debouncer: String,
    lost: Lost,
    joined: tokio::time::Instant,
    /// Hands moves to the task that starts and stops probe actors.
    mover: tokio::sync::mpsc::UnboundedSender<crate::cluster::Moved>,
}

impl Duties {
    async fn run(self, mut released: tokio::sync::oneshot::Receiver<()>) {
        let lease = tokio::select! {
            lease = self.standby() => lease,
            _ = &mut released => {
                self.node.members.leave().await;
                return;
            }
        };
        let mut lease = lease;
        let mut mirror = None;
        let outcome = tokio::select! {
            error = lease.keep() => Some(error),
            _ = &mut released => None,
            error = self.active(&mut mirror) => Some(error),
        };
        match outcome {
            Some(error) => {
                self.state.pause("cluster");
                tracing::error!(error = %error, "Lost the active-node lease: every action is paused and Warden stops.");
                *self.lost.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
                self.requested.notify_one();
            }
            None => {
                if let Some(mirror) = &mut mirror {
                    mirror.publish().await;
                }
                self.node.members.leave().await;
                lease.release().await;
            }
        }
    }

    /// Beats as a standby and keeps its share of the probes until the lease
    /// is free; a standby polls it six times per TTL.
    async fn standby(&self) -> Lease {
        let ttl = self.node.settings.lease_ttl;
        let mut reported: Option<String> = None;
        let mut next_try = tokio::time::Instant::now();
        loop {
            self.node.members.beat("standby").await;
            self.rebalance().await;
            if tokio::time::Instant::now() >= next_try {
                next_try = tokio::time::Instant::now() + ttl / 6;
                match self.node.log.acquire_lease(ttl).await {
                    Ok(lease) => {
                        tracing::info!(
                            node = self.node.log.node(),
                            revision = lease.revision(),
                            "This node holds the active-node lease."
                        );
                        return lease;
                    }
                    Err(ClusterError::LeaseHeld { holder, .. }) => {
                        if reported.as_deref() != Some(holder.as_str()) {
                            tracing::info!(holder = %holder, node = self.node.log.node(), "Standby: another node is the active node; this one checks its share of the probes and takes over when the lease is released or expires.");
                            reported = Some(holder);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "Standby: could not read the active-node lease; trying again.");
                    }
                }
            }
            tokio::time::sleep(BEAT_EVERY).await;
        }
    }

    /// Takes over and then serves as the active node; returns only with
    /// the error that makes it give up (the lease is renewed beside it).
    async fn active(&self, mirror: &mut Option<StateMirror>) -> ClusterError {
        // A step that fails (a slow server, an election) is tried again:
        // the lease is renewed meanwhile, and nothing has started yet.
        loop {
            match self.take_over().await {
                Ok(taken) => {
                    *mirror = Some(taken);
                    break;
                }
                Err(error) => {
                    tracing::warn!(error = %error, "Could not take over yet; trying again.");
                    tokio::time::sleep(BEAT_EVERY).await;
                }
            }
        }
        loop {
            if let Some(mirror) = mirror.as_mut() {
                mirror.publish().await;
            }
            self.node.members.beat("active").await;
            self.rebalance().await;
            tokio::time::sleep(BEAT_EVERY).await;
        }
    }

    /// Catches the local copy up to the stream's end, restores the last
    /// active node's cursors and state files, then starts the consumers.
    async fn take_over(&self) -> Result<StateMirror, ClusterError> {
        let log = &self.node.log;
        let end = log.last_seq().await?;
        // The writer copies peers' rows as they land (its health holds the
        // copy's durable end); wait for it to reach the end as the lease
        // found it.
        while self.audit.health().snapshot().last_durable_seq < end {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut mirror = log.state_mirror(&self.state_dir).await?;
        let restored = mirror.restore().await?;
        mirror.seed(&CONSUMERS, self.node.boot_tail).await?;
        self.node.members.beat("active").await;
        self.shared.leader.store(true, Ordering::SeqCst);
        self.start_leader_children().await;
        tracing::info!(
            restored,
            end,
            "Took over the cluster's state (cursors, incidents, escalation) and started the consumers."
        );
        Ok(mirror)
    }

    async fn start_leader_children(&self) {
        if self.state.state() == crate::control::RunState::Stopped {
            // The tree is stopping: consumers started now would only race it.
            return;
        }
        let Some(root) = ActorRef::<SupervisorMsg>::where_is(self.shared.names.root()) else {
            // The tree is being rebuilt: its new root's spec includes them.
            return;
        };
        for spec in leader_children(&self.shared) {
            let id = spec.id().to_owned();
            match ractor::call!(root, SupervisorMsg::StartChild, spec) {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::error!(child = %id, error = %error, "Could not start a consumer of the active node.");
                }
                Err(error) => {
                    tracing::error!(child = %id, error = %error, "The root did not answer starting a consumer.");
                }
            }
        }
    }

    /// Reads who is up and moves probes to or from this node; the
    /// debouncer drops the state of probes that left and rebuilds, from the
    /// log, that of probes that arrived. A failed read keeps the last split.
    async fn rebalance(&self) {
        let members = match self.node.log.member_list().await {
            Ok(members) => members,
            Err(error) => {
                tracing::debug!(error = %error, "Could not read the cluster's members; probe ownership unchanged.");
                return;
            }
        };
        let active = members
            .iter()
            .find(|m| m.role == "active")
            .map(|m| m.node.clone());
        let settling = self.joined.elapsed() < SETTLE;
        let this = self.node.log.node();
        // While settling, this node computes the split without itself: it
        // takes nothing yet, while its peers already give up its share.
        let names = members
            .into_iter()
            .map(|m| m.node)
            .filter(|node| !settling || node != this)
            .collect();
        let plan = self.ownership.plan(names, active);
        let moved = plan.moved.clone();
        if moved.gained.is_empty() && moved.lost.is_empty() {
            // The member list may still have changed (a node joined that
            // took nothing from this one).
            self.ownership.apply(plan);
            return;
        }
        let open = if moved.gained.is_empty() {
            Default::default()
        } else {
            let dir = self.audit_dir.clone();
            let gained = moved.gained.clone();
            let scanned = tokio::task::spawn_blocking(move || crate::debounce::open_issues(&dir))
                .await
                .ok();
            match scanned {
                Some(Ok(mut open)) => {
                    open.retain(|probe, _| gained.contains(probe));
                    open
                }
                Some(Err(error)) => {
                    tracing::error!(error = %error, "Could not rebuild the open issues of probes that moved here; they may be woken again.");
                    Default::default()
                }
                None => Default::default(),
            }
        };
        let message = DebouncerMsg::Reassigned(Reassigned {
            lost: moved.lost.clone(),
            gained: moved.gained.clone(),
            open,
        });
        // Told before the split changes: an arriving probe's first check
        // here queues behind its rebuilt state, so an outage that continues
        // is not taken for a new one.
        match ActorRef::<DebouncerMsg>::where_is(self.debouncer.clone()) {
            Some(debouncer) => {
                if let Err(error) = debouncer.cast(message) {
                    tracing::error!(error = %error, "Could not tell the debouncer which probes moved.");
                }
            }
            None => tracing::error!(
                "The debouncer is not running; probes that moved keep their old state."
            ),
        }
        self.ownership.apply(plan);
        // The actors move on their own task: starting or stopping thousands
        // of them must not hold up this node's beat, or its entry would
        // expire and its peers would take its probes meanwhile.
        let _ = self.mover.send(moved);
    }
}

/// Stops the actors of probes that left and starts those of probes that
/// arrived, so a node holds only its share (a probe actor costs memory
/// and a timer even when it skips its checks).
async fn move_probe_actors(
    shared: &Shared,
    probe_index: &std::collections::HashMap<String, usize>,
    moved: &crate::cluster::Moved,
) {
    let Some(probes) = ActorRef::<SupervisorMsg>::where_is(shared.names.probes()) else {
        // Being rebuilt: its new spec starts the owned probes.
        return;
    };
    let started = tokio::time::Instant::now();
    if !moved.lost.is_empty() {
        let ids = moved.lost.iter().map(|p| probe_child_id(p)).collect();
        if let Err(error) = ractor::call!(probes, SupervisorMsg::TerminateChildren, ids) {
            tracing::warn!(error = %error, "Could not stop the actors of probes that moved away.");
        }
    }
    let specs: Vec<_> = moved
        .gained
        .iter()
        .filter_map(|probe| {
            probe_index
                .get(probe)
                .and_then(|&i| shared.probe_args.get(i))
        })
        .map(|args| probe_child(shared, args))
        .collect();
    if !specs.is_empty() {
        match ractor::call!(probes, SupervisorMsg::StartChildren, specs) {
            Ok(failed) => {
                for (id, error) in failed {
                    tracing::error!(child = %id, error = %error, "Could not start the actor of a probe that moved here.");
                }
            }
            Err(error) => {
                tracing::error!(error = %error, "The probes supervisor did not answer.");
            }
        }
    }
    tracing::info!(
        started = moved.gained.len(),
        stopped = moved.lost.len(),
        took = ?started.elapsed(),
        "Probe actors moved."
    );
}
