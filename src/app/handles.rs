//! The handles one boot makes and every incarnation of the tree shares: the
//! in-memory stores, the audit log's append side, the operational state and
//! the boot's control files. Actor arguments are cloned out of them, so a
//! restarted actor (or a rebuilt tree) finds the same stores.

use std::path::PathBuf;
use std::sync::Arc;

use ractor::OutputPort;
use tokio::sync::Notify;

use super::{AppError, Names, TreeHandle, audit_dir};
use crate::api::OperatorTokens;
use crate::audit::AuditLog;
use crate::control::{BootStatus, DrEpoch, OperationalState};
use crate::debounce::{
    DebounceConfig, DebounceStore, LatestObservations, ObservationHistory, ObservationQueue,
};
use crate::incidents::{FreezeSet, IncidentStore};
use crate::managed::ManagedEvent;
use crate::metrics::Metrics;
use crate::probes::Heartbeats;
use crate::settings::Settings;
use crate::wake::WakeStatus;

/// Everything a boot shares between its actors, the API and the lifecycle.
pub(super) struct Handles {
    pub(super) settings: Arc<Settings>,
    pub(super) names: Names,
    pub(super) audit: AuditLog,
    pub(super) audit_dir: PathBuf,
    pub(super) state: OperationalState,
    pub(super) boot: BootStatus,
    pub(super) dr: DrEpoch,
    pub(super) tokens: OperatorTokens,
    pub(super) tree: TreeHandle,
    /// Notified by `POST /api/shutdown`.
    pub(super) requested: Arc<Notify>,
    pub(super) http: reqwest::Client,
    pub(super) metrics: Metrics,
    pub(super) config: Arc<DebounceConfig>,
    pub(super) store: DebounceStore,
    pub(super) latest: LatestObservations,
    pub(super) history: ObservationHistory,
    pub(super) queue: ObservationQueue,
    pub(super) heartbeats: Heartbeats,
    pub(super) wake: WakeStatus,
    pub(super) incidents: IncidentStore,
    pub(super) freeze: FreezeSet,
    pub(super) managed_events: Arc<OutputPort<ManagedEvent>>,
    /// Cluster mode: which probes this node checks.
    pub(super) ownership: Option<crate::cluster::Ownership>,
}

impl Handles {
    /// Empty stores around what the boot gates already made.
    pub(super) fn new(
        settings: Arc<Settings>,
        names: Names,
        audit: AuditLog,
        state: OperationalState,
        boot: BootStatus,
        dr: DrEpoch,
        tokens: OperatorTokens,
    ) -> Result<Self, AppError> {
        let http =
            crate::probes::http_client().map_err(|error| AppError::Spawn(error.to_string()))?;
        let ownership = (settings.cluster.kind == crate::settings::ClusterKind::Nats).then(|| {
            let probes = settings
                .probes
                .iter()
                .map(|p| {
                    // Pushes land in the API of the node they reach: a
                    // heartbeat is checked where the lease sends them.
                    let pinned = p.kind == Some(crate::settings::ProbeKind::Heartbeat);
                    (p.name.clone(), pinned)
                })
                .collect();
            crate::cluster::Ownership::new(settings.cluster.node(), probes)
        });
        Ok(Self {
            ownership,
            audit_dir: audit_dir(&settings.service.state_dir),
            config: Arc::new(super::pipeline::debounce_config(&settings)),
            settings,
            names,
            audit,
            state,
            boot,
            dr,
            tokens,
            tree: TreeHandle::default(),
            requested: Arc::new(Notify::new()),
            http,
            metrics: Metrics::new(),
            store: Arc::default(),
            latest: Arc::default(),
            history: Arc::default(),
            queue: ObservationQueue::default(),
            heartbeats: Heartbeats::default(),
            wake: WakeStatus::default(),
            incidents: Arc::default(),
            freeze: Arc::default(),
            managed_events: Arc::new(OutputPort::default()),
        })
    }
}
