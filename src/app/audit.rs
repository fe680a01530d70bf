//! The audit writer's arguments, built from the `audit` section, and the
//! chaos suite's fault-injection surface (`chaos`), which works by handing
//! the writer faults to inject.

use std::path::PathBuf;
use std::sync::Arc;

use super::Names;
use crate::audit::{AuditFaults, AuditQueue, AuditWriterArgs};
use crate::chaos::ChaosControl;
use crate::cluster::{ClusterError, Lease, Members, StateMirror, StreamLog};
use crate::settings::{AuditSettings, ChaosSettings, ClusterKind, ClusterSettings};

impl AuditSettings {
    /// The writer's arguments for the log in `dir`, fed from `queue`.
    pub(super) fn build(&self, dir: PathBuf, queue: AuditQueue) -> AuditWriterArgs {
        let mut args = AuditWriterArgs::new(dir, queue);
        args.fsync = self.fsync;
        args.batch_max = self.batch_max;
        args.rotate_bytes = self.rotate_bytes.as_u64();
        args
    }
}

impl ChaosSettings {
    /// The fault-injection surface when `chaos.enabled`, its audit faults
    /// wired into `audit`.
    pub(super) fn build(&self, names: &Names, audit: &mut AuditWriterArgs) -> Option<ChaosControl> {
        self.enabled.then(|| {
            tracing::warn!(
                "chaos.enabled: the fault-injection surface is on; never do this in production."
            );
            let faults = Arc::new(AuditFaults::new());
            audit.faults = Some(faults.clone());
            ChaosControl::new(names.clone(), faults)
        })
    }
}

/// The consumers that read the log from a cursor, and so must resume where
/// the last active node stopped.
const CONSUMERS: [&str; 3] = [
    crate::wake::CURSOR_NAME,
    crate::incidents::intake::CURSOR_NAME,
    crate::escalation::CURSOR_NAME,
];

impl ClusterSettings {
    /// Cluster mode: the stream the audit writer appends to, once the
    /// servers answered and the stream exists. `None` for a local log.
    pub(super) async fn connect(&self) -> Result<Option<Arc<StreamLog>>, ClusterError> {
        if self.kind == ClusterKind::Local {
            return Ok(None);
        }
        let log = StreamLog::connect(self).await?;
        tracing::info!(
            node = self.node(),
            stream = log.name(),
            replicas = self.replicas,
            "Cluster mode: the audit log is a JetStream stream."
        );
        Ok(Some(Arc::new(log)))
    }
}

impl ClusterSettings {
    /// Waits for the lease ([`Self::take_lease`]), copies the stream into
    /// the local log, then takes over the cluster's state files: all before
    /// boot reads the log and any consumer starts.
    pub(super) async fn become_active(
        &self,
        log: &StreamLog,
        args: &AuditWriterArgs,
        state_dir: &std::path::Path,
    ) -> Result<(Lease, StateMirror, Members), super::AppError> {
        let members = log.members(self.lease_ttl).await?;
        let lease = self.take_lease(log, &members).await?;
        copy_stream(args).await?;
        let mut mirror = log.state_mirror(state_dir).await?;
        let restored = mirror.restore().await?;
        let tail = crate::audit::AuditReader::open(&args.dir)
            .and_then(|reader| reader.last_seq())
            .map_err(|error| {
                super::AppError::Boot(format!("reading the audit log's end: {error}"))
            })?
            .unwrap_or(0);
        mirror.seed(&CONSUMERS, tail).await?;
        tracing::info!(
            restored,
            tail,
            "Took over the cluster's state: cursors, incidents, escalation."
        );
        members.beat("active").await;
        Ok((lease, mirror, members))
    }

    /// Waits as a standby until this node holds the active-node lease. A
    /// standby runs nothing and writes nothing; it polls the lease six
    /// times per TTL, so it starts at most a sixth of a TTL after the lease
    /// was released or expired. A signal ends the wait (the process exits).
    pub(super) async fn take_lease(
        &self,
        log: &StreamLog,
        members: &Members,
    ) -> Result<Lease, ClusterError> {
        let mut reported: Option<String> = None;
        loop {
            members.beat("standby").await;
            match log.acquire_lease(self.lease_ttl).await {
                Ok(lease) => {
                    tracing::info!(
                        node = self.node(),
                        revision = lease.revision(),
                        "This node holds the active-node lease."
                    );
                    return Ok(lease);
                }
                Err(ClusterError::LeaseHeld { holder, .. }) => {
                    if reported.as_deref() != Some(holder.as_str()) {
                        tracing::info!(
                            holder = %holder,
                            node = self.node(),
                            "Standby: another node is the active node; this one starts when its lease is released or expires."
                        );
                        reported = Some(holder);
                    }
                }
                // A standby has nothing to lose by waiting out a blip.
                Err(error) => {
                    tracing::warn!(error = %error, "Standby: could not read the active-node lease; trying again.");
                }
            }
            tokio::time::sleep(self.lease_ttl / 6).await;
        }
    }
}

/// Cluster mode: the local copy of the log brought up to the stream's end
/// before boot reads it ([`crate::audit::copy_stream`]).
pub(super) async fn copy_stream(args: &AuditWriterArgs) -> Result<(), super::AppError> {
    crate::audit::copy_stream(args)
        .await
        .map_err(|error| match error {
            crate::audit::AuditError::Cluster(error) => super::AppError::Cluster(error),
            other => super::AppError::Boot(format!("copying the cluster's audit stream: {other}")),
        })
}
