//! The audit writer's arguments, built from the `audit` section, and the
//! chaos suite's fault-injection surface (`chaos`), which works by handing
//! the writer faults to inject.

use std::path::PathBuf;
use std::sync::Arc;

use super::Names;
use crate::audit::{AuditFaults, AuditQueue, AuditWriterArgs};
use crate::chaos::ChaosControl;
use crate::cluster::{ClusterError, StreamLog};
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
