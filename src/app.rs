//! The topology: the table of contents of a running Warden. [`start_with`]
//! runs the boot gates, builds every actor's arguments from its settings
//! section and starts the supervision tree; the parts live in the submodules:
//!
//! - `audit`: the audit writer's arguments and the chaos faults in them;
//! - `api`: operator tokens, access, TLS, the listener and the server's arguments;
//! - `pipeline`: probes, debouncer, wake consumer and incident commander arguments;
//! - `escalation`: managed processes and coordinators, boot snapshots;
//! - `spec`: the supervisor specs and the restart policy;
//! - `lifecycle`: the root, its meltdowns, the graceful stop;
//! - `node`: cluster mode's duties beside the tree: membership, this node's
//!   share of the probes, and taking over as the active node;
//! - `chores`: SIGHUP reloads, DR high-water marks, retention;
//! - `source`: the config-rollback boot loop ([`run_source`]);
//! - `handles`: the stores one boot makes and every incarnation of the tree shares;
//! - `names`, `tree`, `observer`: actor names, the current root, supervision rows;
//! - `fds`, `signals`, `error`: the open-file budget, stop signals, [`AppError`].
//!
//! The boot gates themselves are in [`crate::control`].
//!
//! ```text
//! warden (root, one_for_one)
//! ├─ audit      AuditWriter
//! ├─ debouncer  Debouncer
//! ├─ wake       WakeConsumer
//! ├─ incidents  IncidentCommander
//! ├─ probes     supervisor (dynamic; one ProbeActor per probe)
//! ├─ escalation supervisor (managed processes in dependency order, then one
//! │             EscalationCoordinator per component)
//! └─ api        ApiServer
//! ```
//! Children start in that order and stop in reverse, so the audit writer is
//! the last to go and records everything the others did on the way down.
//! In cluster mode a standby runs the tree without `wake`, `incidents` and
//! `escalation`; it starts them behind `api` once it holds the lease.

mod api;
mod audit;
mod chores;
mod error;
mod escalation;
mod fds;
mod handles;
mod lifecycle;
mod names;
mod node;
mod observer;
mod pipeline;
mod signals;
mod source;
mod spec;
mod tree;

use std::future::Future;
use std::sync::Arc;

use tokio::time::Instant;

use crate::api::OperatorTokens;
use crate::audit::AuditLog;
use crate::control::{DrEpoch, OperationalState};
use crate::debounce::{DebounceStore, LatestObservations, ObservationHistory};
use crate::events::{self, service as ev};
use crate::probes::{CheckContext, Heartbeats};
use crate::settings::Settings;
use crate::wake::WakeStatus;
use handles::Handles;

pub use error::AppError;
pub use names::Names;
pub use observer::{AuditObserver, event_row};
pub use signals::shutdown_signal;
pub use source::run_source;
pub use spec::restart_ladder;
pub use tree::{ChildStatus, TreeHandle};

pub use crate::audit::audit_dir;

/// A running Warden instance: what tests, chaos scenarios and `run` hold.
pub struct Warden {
    /// The address the API is bound to.
    pub addr: std::net::SocketAddr,
    /// Actor names of this instance.
    pub names: Names,
    /// Append side of the audit log.
    pub audit: AuditLog,
    /// Operational state.
    pub state: OperationalState,
    /// The current root supervisor.
    pub tree: TreeHandle,
    /// Debounce state per probe.
    pub store: DebounceStore,
    /// Latest observation per probe.
    pub latest: LatestObservations,
    /// Recent observations per probe.
    pub history: ObservationHistory,
    /// The wake consumer's counters.
    pub wake: WakeStatus,
    /// Heartbeat store (what `POST /api/heartbeats/<probe>` writes).
    pub heartbeats: Heartbeats,
    /// The DR epoch files.
    pub dr: DrEpoch,
    /// Accepted operator tokens (replaced on SIGHUP).
    pub tokens: OperatorTokens,
    substrate_rewind: Option<String>,
    /// Incidents, open and resolved.
    pub incidents: crate::incidents::IncidentStore,
    /// The fault-injection surface, when `chaos.enabled`.
    pub chaos: Option<crate::chaos::ChaosControl>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    lifecycle: tokio::task::JoinHandle<Result<(), AppError>>,
}

/// Runs Warden until `shutdown` resolves. Returns after a graceful stop, or
/// with an error when boot fails or the tree melts down twice.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AppError> {
    let mut warden = start(settings).await?;
    tokio::select! {
        () = shutdown => warden.shutdown().await,
        result = warden.wait() => result,
    }
}

/// What a boot knows beyond its settings.
#[derive(Debug, Clone, Default)]
pub struct BootOptions {
    /// The configuration text this boot runs on. Once the tree has run for
    /// `supervision.stable_after` without a meltdown it becomes the
    /// last-known-good configuration (`state_dir/snapshots/_warden/config.toml`).
    pub config_text: Option<String>,
    /// Root meltdowns already spent in this process: a boot after a config
    /// rollback starts at 1, so its first meltdown stops Warden.
    pub meltdowns: u32,
    /// Which configuration this is and why, for `/api/boot-status`, the
    /// dashboard and a `service.config_origin` row.
    pub origin: Option<crate::control::ConfigOrigin>,
}

/// Runs the boot gates, binds the API and starts the supervision tree.
/// Returns once the tree is up.
pub async fn start(settings: Settings) -> Result<Warden, AppError> {
    start_with(settings, BootOptions::default()).await
}

/// [`start`] with [`BootOptions`].
pub async fn start_with(settings: Settings, options: BootOptions) -> Result<Warden, AppError> {
    let started = Instant::now();
    // One copy shared by the tree, housekeeping and incident evidence: with
    // thousands of probes each copy costs kilobytes per probe.
    let settings = Arc::new(settings);
    // Destructured with every field named so a new section cannot go unwired.
    let Settings {
        service,
        audit: audit_settings,
        telemetry: _,      // applied by main before the runtime starts
        supervision: _,    // read through restart_ladder
        probe_defaults: _, // passed to every ProbeActor
        debounce: _,       // read through debounce_config
        probes,
        components: _,  // the escalation subtree; dependencies through debounce_config
        maintenance: _, // windows, through debounce_config
        wake: wake_settings,
        investigator: investigator_settings,
        notifiers: notifier_settings,
        dr: dr_settings,
        incidents: incident_settings,
        chaos: chaos_settings,
        cluster: cluster_settings,
    } = &*settings;

    let front = api::ApiFront::load(&settings)?;
    let boot = crate::control::BootStatus::default();
    if let Some(origin) = &options.origin {
        boot.set_config(origin.clone());
    }
    let dr = crate::control::dr_epoch(dr_settings, &service.state_dir);
    let dir = audit_dir(&service.state_dir);
    let findings =
        crate::control::boot_gates(&settings, &dir, &boot, &dr).map_err(AppError::Boot)?;
    let state = OperationalState::default();
    if let Some(detail) = &findings.substrate_rewind {
        state.pause("substrate");
        tracing::error!(detail = %detail, "The state dir or audit log was rewound; Warden is PAUSED until an operator verifies, bumps the epoch and resets.");
    }

    let names = Names::new();
    // In cluster mode the queue is also what a node holds while the stream
    // cannot take its rows.
    let (audit, queue) = match cluster_settings.kind {
        crate::settings::ClusterKind::Local => AuditLog::new(),
        crate::settings::ClusterKind::Nats => AuditLog::with_capacity(cluster_settings.buffer_rows),
    };
    let mut audit_args = audit_settings.build(dir, queue);
    let chaos = chaos_settings.build(&names, &mut audit_args);
    audit_args.stream = cluster_settings.connect().await?;
    // Before the writer starts and boot reads the log: the copy is brought
    // up to the stream's end.
    let node = cluster_settings
        .join(audit_args.stream.clone(), &audit_args)
        .await?;
    let health = audit.health();
    state.watch("audit_unwritable", move || health.is_failing());
    escalation::stop_previous_groups(&service.state_dir, &audit).await;
    let (listener, addr) = api::bind(service)?;

    let h = Handles::new(
        settings.clone(),
        names,
        audit,
        state,
        boot,
        dr,
        front.tokens.clone(),
    )?;
    // In cluster mode a node rebuilds the open issues of the probes it
    // owns once it knows which (`node.rs`), not every probe's at boot.
    let restored = if node.is_none() {
        pipeline::restore_open_issues(&h.audit_dir, &h.config, &h.store)
    } else {
        0
    };
    let investigator =
        crate::investigate::Investigator::from_settings(investigator_settings, h.http.clone())
            .map_err(|error| AppError::Setup(error.to_string()))?;
    let notifiers = crate::notify::Notifiers::from_settings(notifier_settings, h.http.clone())
        .map_err(|error| AppError::Setup(error.to_string()))?;
    crate::wake::seed_budget(&h.audit_dir, &investigator);
    let wake_args = wake_settings.build(&h, investigator, notifiers);
    let incidents_args = incident_settings.build(&h, wake_args.notifiers.clone());
    let escalation = Arc::new(escalation::build(&h, &wake_args.notifiers));
    let check_ctx = CheckContext {
        http: h.http.clone(),
        heartbeats: h.heartbeats.clone(),
    };
    let probe_args = probes.iter().map(|p| p.build(&h, &check_ctx)).collect();
    let investigator = wake_args.investigator.clone();
    let mut api_args = front.build(&h, listener, addr, investigator, chaos.clone(), started);
    api_args.context.cluster = audit_args.stream.clone();
    let shared = spec::Shared {
        observer: Arc::new(AuditObserver::new(h.audit.clone()).with_metrics(h.metrics.clone())),
        settings: settings.clone(),
        names: h.names.clone(),
        audit: h.audit.clone(),
        audit_args,
        api_args,
        debouncer_args: pipeline::debouncer(&h),
        wake_args,
        incidents_args,
        probe_args,
        escalation,
        leader: Arc::new(std::sync::atomic::AtomicBool::new(node.is_none())),
        ownership: h.ownership.clone(),
    };

    h.audit.append_nowait(events::row(&ev::Boot {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: std::process::id(),
        api: addr.to_string(),
        gates: h.boot.report().gates,
        open_issues_restored: restored,
    }));
    if let Some(origin) = &options.origin {
        h.audit.append_nowait(events::row(origin));
    }
    for row in findings.rows {
        h.audit.append_nowait(row);
    }
    let root = lifecycle::spawn_root(&shared, &h.tree, 1).await?;
    if let Some(detail) = &findings.substrate_rewind {
        // A restored state dir is an incident in itself (SEV1), opened once the commander is up.
        let detail = detail.clone();
        lifecycle::open_incident(
            &h.names,
            crate::incidents::OpenTrigger::Substrate { detail },
        );
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let lifecycle = lifecycle::spawn(shared, root, &h, stopped, options, started, node);
    Ok(Warden {
        addr,
        names: h.names,
        audit: h.audit,
        state: h.state,
        tree: h.tree,
        store: h.store,
        latest: h.latest,
        history: h.history,
        wake: h.wake,
        heartbeats: h.heartbeats,
        dr: h.dr,
        tokens: h.tokens,
        substrate_rewind: findings.substrate_rewind,
        incidents: h.incidents,
        chaos,
        stop: Some(stop),
        lifecycle,
    })
}
