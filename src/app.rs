//! The topology: builds Warden's supervision tree from the settings, runs the
//! boot gates, serves the API, and owns the process lifecycle (graceful stop
//! on a signal, a bounded response to a root meltdown).
//!
//! ```text
//! warden (root, one_for_one)
//! ├─ audit      AuditWriter
//! ├─ debouncer  Debouncer
//! ├─ wake       WakeConsumer
//! ├─ probes     supervisor (dynamic; one ProbeActor per probe)
//! └─ api        ApiServer
//! ```
//! Children start in that order and stop in reverse, so the audit writer is
//! the last to go and records everything the others did on the way down.

mod names;
mod observer;
mod tree;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorCell};
use serde_json::json;
use tokio::time::Instant;
use warden_supervisors::{
    Backoff, ChildSpec, Ladder, Observer, Rung, Strategy, Supervisor, SupervisorSpec,
};

use crate::api::{ApiContext, ApiServer, ApiServerArgs, ProbesView};
use crate::audit::{AuditLog, AuditWriter, AuditWriterArgs, NewRow};
use crate::control::{BootStatus, OperationalState, check_state_dir};
use crate::debounce::{
    DebounceConfig, DebounceStore, Debouncer, DebouncerArgs, IssueBus, LatestObservations,
    ObservationHistory, ObservationQueue, ProbeRules,
};
use crate::probes::{CheckContext, Heartbeats, ProbeActor, ProbeActorArgs};
use crate::settings::ProbeKind;
use crate::settings::{Secret, Settings, SupervisionSettings};
use crate::wake::{WakeConsumer, WakeConsumerArgs, WakeStatus};

pub use names::Names;
pub use observer::{AuditObserver, event_row};
pub use tree::{ChildStatus, TreeHandle};

/// Why Warden could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A secret file (`*_file` key) could not be read.
    #[error("cannot read secret file {path} (from {key}): {source}")]
    Secret {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// One or more boot gates failed.
    #[error("boot gates failed: {0}")]
    Boot(String),
    /// The API address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The root supervisor could not be started.
    #[error("cannot start the supervision tree: {0}")]
    Spawn(String),
    /// A configured part (investigator, notifier) could not be set up, e.g.
    /// its secret file is unreadable.
    #[error("{0}")]
    Setup(String),
    /// The root supervisor melted down twice; Warden stopped itself.
    #[error(
        "the supervision tree melted down twice; Warden stopped to avoid acting in a broken state"
    )]
    Meltdown,
}

/// Resolves on the first SIGTERM or SIGINT. A second signal exits the process
/// at once (130), for an operator whose graceful stop is taking too long.
pub async fn shutdown_signal() {
    first_signal().await;
    tracing::info!(
        "Shutdown requested; stopping gracefully (send the signal again to force exit)."
    );
    tokio::spawn(async {
        first_signal().await;
        tracing::warn!("Second signal received; exiting without a graceful stop.");
        std::process::exit(130);
    });
}

async fn first_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "Cannot watch SIGTERM; only SIGINT stops Warden.");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The restart policy every supervisor in the tree uses: one rung, "restart
/// in place", whose exhaustion is a meltdown escalated to the parent.
pub fn restart_ladder(settings: &SupervisionSettings) -> Ladder {
    let backoff = Backoff {
        min: settings.backoff_min,
        max: settings.backoff_max,
        jitter: settings.backoff_jitter,
        reset_after: settings.stable_after,
    };
    Ladder::single(Rung::new("restart", settings.max_restarts, settings.period).backoff(backoff))
}

fn operator_tokens(settings: &Settings) -> Result<Vec<Secret>, AppError> {
    let mut tokens = Vec::new();
    if let Some(token) = &settings.service.operator_token {
        tokens.push(token.clone());
    }
    if let Some(path) = &settings.service.operator_token_file {
        let text = std::fs::read_to_string(path).map_err(|source| AppError::Secret {
            key: "service.operator_token_file",
            path: path.clone(),
            source,
        })?;
        tokens.push(Secret::new(text.trim()));
    }
    Ok(tokens)
}

/// Where the audit log of a state dir lives.
pub fn audit_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("audit")
}

/// What the audit scan found, for the boot report. The writer does the
/// repair itself when it starts (and records it as `audit.recovered`), so the
/// gate only inspects.
fn describe_recovery(report: &crate::audit::RecoveryReport) -> String {
    let mut text = match report.last_good_seq {
        Some(seq) => format!("audit log intact up to seq {seq}"),
        None => "audit log is empty".to_owned(),
    };
    if let Some(torn) = &report.truncated {
        text.push_str(&format!(
            "; a torn last row ({} bytes in {}) will be truncated",
            torn.truncated_bytes,
            torn.file.display()
        ));
    }
    if !report.corrupt_rows.is_empty() {
        text.push_str(&format!(
            "; {} corrupt row(s) left in place (first at byte {} of {})",
            report.corrupt_rows.len(),
            report.corrupt_rows[0].offset,
            report.corrupt_rows[0].file.display()
        ));
    }
    text
}

/// Runs the boot gates in order, stopping at the first failure.
fn boot_gates(settings: &Settings, boot: &BootStatus) -> Result<(), AppError> {
    boot.record("config_valid", Ok(settings.summary()));
    let state_dir = &settings.service.state_dir;
    let passed = boot.record("state_dir_writable", check_state_dir(state_dir))
        && boot.record(
            "audit_recovered",
            crate::audit::inspect(&audit_dir(state_dir))
                .map(|report| describe_recovery(&report))
                .map_err(|error| error.to_string()),
        );
    if passed {
        return Ok(());
    }
    let failures: Vec<String> = boot
        .failures()
        .into_iter()
        .map(|gate| format!("{} ({})", gate.name, gate.detail))
        .collect();
    Err(AppError::Boot(failures.join("; ")))
}

/// Handles shared by every incarnation of the tree: what must survive restarts.
#[derive(Clone)]
struct Shared {
    settings: Settings,
    names: Names,
    audit: AuditLog,
    audit_args: AuditWriterArgs,
    api_args: ApiServerArgs,
    debouncer_args: DebouncerArgs,
    wake_args: WakeConsumerArgs,
    probe_args: Vec<ProbeActorArgs>,
    observer: Arc<dyn Observer>,
}

/// How often the debouncer evaluates time-driven rules (reminders, settling).
const DEBOUNCE_TICK: Duration = Duration::from_secs(1);

/// The default issue categories of a probe, by kind: (unhealthy, degraded).
/// A credential inside its alert window is degraded (`credential_expiring`,
/// a warning); once expired it is unhealthy (`credential_expired`), which the
/// incident rules treat as an integrity problem.
fn default_categories(kind: Option<ProbeKind>) -> (&'static str, &'static str) {
    match kind {
        Some(ProbeKind::CredentialExpiry) => ("credential_expired", "credential_expiring"),
        _ => ("service_unhealthy", "service_degraded"),
    }
}

/// The debouncer's view of the settings.
fn debounce_config(settings: &Settings) -> DebounceConfig {
    let rules = settings
        .probes
        .iter()
        .map(|probe| {
            let (unhealthy, degraded) = default_categories(probe.kind);
            let rules = ProbeRules {
                component: probe.component_name().to_owned(),
                category: probe
                    .category
                    .clone()
                    .unwrap_or_else(|| unhealthy.to_owned()),
                degraded_category: probe
                    .degraded_category
                    .clone()
                    .unwrap_or_else(|| degraded.to_owned()),
                severity: probe.severity,
                settings: settings.debounce.with(&probe.debounce),
            };
            (probe.name.clone(), rules)
        })
        .collect();
    let depends_on = settings
        .components
        .iter()
        .map(|component| (component.name.clone(), component.depends_on.clone()))
        .collect();
    // check-config already rejected windows that do not parse.
    let windows = settings
        .maintenance
        .iter()
        .filter_map(|window| crate::debounce::maintenance::Window::parse(window).ok())
        .collect();
    DebounceConfig {
        rules,
        depends_on,
        windows,
    }
}

/// Seeds the debounce store with the issues that were open when Warden last
/// stopped, so an outage spanning a restart is not woken twice.
fn restore_open_issues(dir: &Path, config: &DebounceConfig, store: &DebounceStore) -> usize {
    match crate::debounce::open_issues(dir) {
        Ok(open) => {
            let mut restored = 0;
            for (probe, at_boot) in open {
                if let Some(rules) = config.rules.get(&probe) {
                    crate::debounce::restore_entry(
                        store,
                        &probe,
                        rules,
                        at_boot.issue,
                        at_boot.session,
                    );
                    restored += 1;
                }
            }
            restored
        }
        Err(error) => {
            tracing::error!(error = %error, "Could not rebuild open issues from the audit log; they may be woken again.");
            0
        }
    }
}

fn root_spec(shared: &Shared) -> SupervisorSpec {
    let ladder = restart_ladder(&shared.settings.supervision);
    let child_timeout = shared.settings.supervision.child_shutdown_timeout;

    let audit_name = shared.names.audit();
    let audit_args = shared.audit_args.clone();
    let audit = ChildSpec::worker("audit", move |parent: ActorCell| {
        let (name, args) = (audit_name.clone(), audit_args.clone());
        Box::pin(async move {
            let (actor, _) = Actor::spawn_linked(Some(name), AuditWriter, args, parent).await?;
            Ok(actor.get_cell())
        })
    })
    .shutdown(warden_supervisors::Shutdown::Timeout(child_timeout));

    let debouncer_name = shared.names.of("debouncer");
    let debouncer_args = shared.debouncer_args.clone();
    let debouncer = ChildSpec::worker("debouncer", move |parent: ActorCell| {
        let (name, args) = (debouncer_name.clone(), debouncer_args.clone());
        Box::pin(async move {
            let (actor, _) = Actor::spawn_linked(Some(name), Debouncer, args, parent).await?;
            Ok(actor.get_cell())
        })
    })
    .shutdown(warden_supervisors::Shutdown::Timeout(child_timeout));

    let wake_name = shared.names.of("wake");
    let wake_args = shared.wake_args.clone();
    let wake = ChildSpec::worker("wake", move |parent: ActorCell| {
        let (name, args) = (wake_name.clone(), wake_args.clone());
        Box::pin(async move {
            let (actor, _) = Actor::spawn_linked(Some(name), WakeConsumer, args, parent).await?;
            Ok(actor.get_cell())
        })
    })
    .shutdown(warden_supervisors::Shutdown::Timeout(child_timeout));

    let probe_children: Vec<ChildSpec> = shared
        .probe_args
        .iter()
        .map(|args| {
            let name = shared.names.of(&format!("probe.{}", args.probe.name));
            let args = args.clone();
            ChildSpec::worker(
                format!("probe:{}", args.probe.name),
                move |parent: ActorCell| {
                    let (name, args) = (name.clone(), args.clone());
                    Box::pin(async move {
                        let (actor, _) =
                            Actor::spawn_linked(Some(name), ProbeActor, args, parent).await?;
                        Ok(actor.get_cell())
                    })
                },
            )
            .shutdown(warden_supervisors::Shutdown::Timeout(child_timeout))
        })
        .collect();
    let probes_name = shared.names.probes();
    let probes_spec = SupervisorSpec::new("probes", Strategy::OneForOne)
        .policy(ladder.clone())
        .children(probe_children)
        .observer(shared.observer.clone());
    let probes = ChildSpec::supervisor("probes", move |parent: ActorCell| {
        let (name, spec) = (probes_name.clone(), probes_spec.clone());
        Box::pin(async move {
            let (actor, _) = Supervisor::spawn_linked(Some(name), spec, parent).await?;
            Ok(actor.get_cell())
        })
    });

    let api_name = shared.names.api();
    let api_args = shared.api_args.clone();
    let api = ChildSpec::worker("api", move |parent: ActorCell| {
        let (name, args) = (api_name.clone(), api_args.clone());
        Box::pin(async move {
            let (actor, _) = Actor::spawn_linked(Some(name), ApiServer, args, parent).await?;
            Ok(actor.get_cell())
        })
    })
    .shutdown(warden_supervisors::Shutdown::Timeout(child_timeout));

    SupervisorSpec::new("warden", Strategy::OneForOne)
        .policy(ladder)
        .children(vec![audit, debouncer, wake, probes, api])
        .observer(shared.observer.clone())
}

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
    /// Issue events, published after each issue row is durable.
    pub issues: IssueBus,
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
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    lifecycle: tokio::task::JoinHandle<Result<(), AppError>>,
}

impl Warden {
    /// Stops gracefully (reverse start order, audit log flushed) and waits.
    pub async fn shutdown(mut self) -> Result<(), AppError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.wait().await
    }

    /// Waits until the instance stops on its own (a second meltdown).
    pub async fn wait(&mut self) -> Result<(), AppError> {
        match (&mut self.lifecycle).await {
            Ok(result) => result,
            Err(error) => Err(AppError::Spawn(format!(
                "the lifecycle task failed: {error}"
            ))),
        }
    }
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

/// Runs the boot gates, binds the API and starts the supervision tree.
/// Returns once the tree is up.
pub async fn start(settings: Settings) -> Result<Warden, AppError> {
    let started = Instant::now();
    // Destructured with every field named so a new section cannot go unwired.
    let Settings {
        service,
        audit: audit_settings,
        telemetry: _,      // applied by main before the runtime starts
        supervision: _,    // read through restart_ladder
        probe_defaults: _, // passed to every ProbeActor
        debounce: _,       // read through debounce_config
        probes: _,         // one ProbeActor each
        components: _,     // dependencies, through debounce_config
        maintenance: _,    // windows, through debounce_config
        wake: wake_settings,
        investigator: investigator_settings,
        notifiers: notifier_settings,
        incidents: _, // the incident commander (wired separately)
    } = &settings;

    let tokens = operator_tokens(&settings)?;
    let boot = BootStatus::default();
    boot_gates(&settings, &boot)?;

    let state = OperationalState::default();
    let names = Names::new();
    let dir = audit_dir(&service.state_dir);
    let (audit, queue) = AuditLog::new();
    let mut audit_args = AuditWriterArgs::new(dir.clone(), queue);
    audit_args.fsync = audit_settings.fsync;
    audit_args.batch_max = audit_settings.batch_max;
    audit_args.rotate_bytes = audit_settings.rotate_bytes.as_u64();
    let health = audit.health();
    state.watch("audit_unwritable", move || health.is_failing());

    let listener =
        std::net::TcpListener::bind(service.api_listen).map_err(|source| AppError::Bind {
            addr: service.api_listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| AppError::Bind {
        addr: service.api_listen,
        source,
    })?;
    let tree = TreeHandle::default();
    let config = Arc::new(debounce_config(&settings));
    let store: DebounceStore = Arc::default();
    let restored = restore_open_issues(&dir, &config, &store);
    let latest: LatestObservations = Arc::default();
    let queue = ObservationQueue::default();
    let heartbeats = Heartbeats::default();
    let issues: IssueBus = Arc::new(ractor::OutputPort::default());
    let http = crate::probes::http_client().map_err(|error| AppError::Spawn(error.to_string()))?;
    let history: ObservationHistory = Arc::default();
    let wake_status = WakeStatus::default();
    let investigator =
        crate::investigate::Investigator::from_settings(investigator_settings, http.clone())
            .map_err(|error| AppError::Setup(error.to_string()))?;
    let notifiers = crate::notify::Notifiers::from_settings(notifier_settings, http.clone())
        .map_err(|error| AppError::Setup(error.to_string()))?;
    crate::wake::seed_budget(&dir, &investigator);
    let wake_args = WakeConsumerArgs {
        audit: audit.clone(),
        audit_dir: dir.clone(),
        cursor_dir: service.state_dir.join("cursors"),
        investigator,
        notifiers,
        history: history.clone(),
        store: store.clone(),
        config: config.clone(),
        settings: wake_settings.clone(),
        runbook: investigator_settings.runbook_url.clone(),
        status: wake_status.clone(),
    };
    let check_ctx = CheckContext {
        http,
        heartbeats: heartbeats.clone(),
    };
    let debouncer_args = DebouncerArgs {
        config: config.clone(),
        store: store.clone(),
        queue: queue.clone(),
        latest: latest.clone(),
        audit: audit.clone(),
        issues: issues.clone(),
        tick: DEBOUNCE_TICK,
    };
    let probe_args: Vec<ProbeActorArgs> = settings
        .probes
        .iter()
        .map(|probe| ProbeActorArgs {
            probe: probe.clone(),
            defaults: settings.probe_defaults.clone(),
            ctx: check_ctx.clone(),
            latest: latest.clone(),
            history: history.clone(),
            history_len: wake_settings.history,
            queue: queue.clone(),
            debouncer: names.of("debouncer"),
        })
        .collect();
    let api_args = ApiServerArgs {
        listener: Arc::new(Mutex::new(Some(listener))),
        addr,
        context: ApiContext {
            state: state.clone(),
            boot: boot.clone(),
            audit: audit.clone(),
            audit_dir: dir.clone(),
            operator_tokens: tokens,
            tree: tree.clone(),
            call_timeout: service.call_timeout,
            started,
            probes: ProbesView {
                probes: Arc::new(settings.probes.clone()),
                defaults: settings.probe_defaults.clone(),
                latest: latest.clone(),
                store: store.clone(),
                heartbeats: heartbeats.clone(),
            },
            wake: wake_status.clone(),
            investigator: wake_args.investigator.clone(),
            incidents: crate::api::IncidentsView {
                store: Arc::default(),
                commander: names.of("incidents"),
                dir: crate::incidents::incidents_root(&service.state_dir),
            },
        },
    };
    let shared = Shared {
        observer: Arc::new(AuditObserver::new(audit.clone())),
        settings: settings.clone(),
        names: names.clone(),
        audit: audit.clone(),
        audit_args,
        api_args,
        debouncer_args,
        wake_args,
        probe_args,
    };
    audit.append_nowait(NewRow::new(
        "service.boot",
        json!({ "version": env!("CARGO_PKG_VERSION"), "pid": std::process::id(), "api": addr.to_string(), "gates": boot.report().gates, "open_issues_restored": restored }),
    ));

    let root = spawn_root(&shared, &tree, 1).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let lifecycle = {
        let (state, tree, timeout) = (state.clone(), tree.clone(), service.shutdown_timeout);
        tokio::spawn(async move {
            let result = supervise(&shared, root, &state, &tree, timeout, stopped).await;
            tree.set(None);
            // Whatever was queued after the writer stopped (its own stop event,
            // the final rows) is written by a short-lived writer so nothing is lost.
            drain(&shared.audit, &shared.audit_args, timeout).await;
            tracing::info!(uptime = ?started.elapsed(), "Warden stopped.");
            result
        })
    };
    Ok(Warden {
        addr,
        names,
        audit,
        state,
        tree,
        issues,
        store,
        latest,
        history,
        wake: wake_status,
        heartbeats,
        stop: Some(stop),
        lifecycle,
    })
}

/// Writes whatever is still queued for the audit log after the tree stopped
/// (the writer's own stop event, the last rows), with a short-lived writer,
/// bounded by `timeout`.
async fn drain(audit: &AuditLog, args: &AuditWriterArgs, timeout: Duration) {
    if audit.queued() == 0 {
        return;
    }
    let (writer, handle) = match Actor::spawn(None, AuditWriter, args.clone()).await {
        Ok(spawned) => spawned,
        Err(error) => {
            tracing::error!(error = %error, queued = audit.queued(), "Could not start a writer for the final audit rows.");
            return;
        }
    };
    match tokio::time::timeout(timeout, audit.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(error = %error, "Could not write the final audit rows."),
        Err(_) => tracing::error!(
            queued = audit.queued(),
            "Timed out writing the final audit rows."
        ),
    }
    writer.stop(None);
    let _ = tokio::time::timeout(timeout, handle).await;
}

type Root = (
    ractor::ActorRef<warden_supervisors::SupervisorMsg>,
    tokio::task::JoinHandle<()>,
);

async fn spawn_root(
    shared: &Shared,
    tree: &TreeHandle,
    incarnation: u32,
) -> Result<Root, AppError> {
    let (root, handle) = Supervisor::spawn(Some(shared.names.root()), root_spec(shared))
        .await
        .map_err(|error| AppError::Spawn(error.to_string()))?;
    tree.set(Some(root.clone()));
    shared.audit.append_nowait(NewRow::new(
        "service.started",
        json!({ "incarnation": incarnation, "summary": shared.settings.summary() }),
    ));
    tracing::info!(summary = %shared.settings.summary(), incarnation, "Warden is running.");
    Ok((root, handle))
}

async fn supervise(
    shared: &Shared,
    first: Root,
    state: &OperationalState,
    tree: &TreeHandle,
    shutdown_timeout: Duration,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), AppError> {
    let (mut root, mut handle) = first;
    let mut meltdowns = 0u32;
    loop {
        tokio::select! {
            _ = &mut stopped => {
                state.stop();
                shared.audit.append_nowait(NewRow::new("service.stopping", json!({ "reason": "shutdown requested" })));
                if let Err(error) = warden_supervisors::shutdown(&root, shutdown_timeout).await {
                    tracing::error!(error = %error, "The supervision tree did not stop cleanly.");
                }
                return Ok(());
            }
            _ = &mut handle => {
                tree.set(None);
                meltdowns += 1;
                if meltdowns >= 2 {
                    state.stop();
                    shared.audit.append_nowait(NewRow::new("service.meltdown", json!({ "meltdowns": meltdowns, "action": "stop" })));
                    tracing::error!(meltdowns, "The supervision tree melted down again; stopping Warden.");
                    return Err(AppError::Meltdown);
                }
                state.pause("meltdown");
                shared.audit.append_nowait(NewRow::new("service.meltdown", json!({ "meltdowns": meltdowns, "action": "restart_tree" })));
                tracing::error!(meltdowns, "The supervision tree melted down; restarting it once with automation paused.");
                (root, handle) = spawn_root(shared, tree, meltdowns + 1).await?;
            }
        }
    }
}
