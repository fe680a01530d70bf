//! The topology: builds Warden's supervision tree from the settings, runs the
//! boot gates, serves the API, and owns the process lifecycle (graceful stop
//! on a signal, a bounded response to a root meltdown).
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

mod fds;
mod names;
mod observer;
mod tree;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorCell};
use serde_json::json;
use tokio::sync::Notify;
use tokio::time::Instant;
use warden_supervisors::{
    Backoff, ChildSpec, Ladder, Observer, Rung, Strategy, Supervisor, SupervisorSpec,
};

use crate::api::{ApiContext, ApiServer, ApiServerArgs, OperatorTokens, ProbesView};
use crate::audit::{AuditLog, AuditWriter, AuditWriterArgs, NewRow};
use crate::control::{
    BootStatus, DrEpoch, EpochCheck, OperationalState, check_cursors, check_state_dir,
};
use crate::debounce::{
    DebounceConfig, DebounceStore, Debouncer, DebouncerArgs, IssueBus, LatestObservations,
    ObservationHistory, ObservationQueue, ProbeRules,
};
use crate::escalation::{CoordinatorArgs, CycleContext, CycleStore, EscalationCoordinator};
use crate::managed::{ManagedArgs, ManagedEvent, ManagedProcess, ManagedStatus};
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
    /// A token from a `*_file` key is shorter than 16 characters.
    #[error("the operator token in {path} (from {key}) is shorter than 16 characters")]
    WeakToken {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The API would listen beyond loopback with no operator token.
    #[error(
        "refusing to listen on {0}: it is not a loopback address and no operator token is configured (set service.operator_token_file or listen on 127.0.0.1)"
    )]
    UnsafeListen(std::net::SocketAddr),
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
    /// The tree melted down on a configuration that differs from the
    /// last-known-good one: [`run_source`] restarts on the carried text.
    #[error(
        "the supervision tree melted down on a new configuration; rolling back to the last-known-good one"
    )]
    ConfigRollback(String),
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

/// Every accepted operator token: the inline ones and each `*_file` read now.
/// Called at boot and again on SIGHUP, so a rotated file takes effect
/// without a restart.
fn operator_tokens(settings: &Settings) -> Result<Vec<Secret>, AppError> {
    let service = &settings.service;
    let mut tokens: Vec<Secret> = service.operator_token.iter().cloned().collect();
    tokens.extend(service.operator_tokens.iter().cloned());
    let files = service
        .operator_token_file
        .iter()
        .map(|path| ("service.operator_token_file", path))
        .chain(
            service
                .operator_token_files
                .iter()
                .map(|path| ("service.operator_token_files", path)),
        );
    for (key, path) in files {
        let text = std::fs::read_to_string(path).map_err(|source| AppError::Secret {
            key,
            path: path.clone(),
            source,
        })?;
        let token = text.trim();
        if token.len() < 16 {
            return Err(AppError::WeakToken {
                key,
                path: path.clone(),
            });
        }
        tokens.push(Secret::new(token));
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

/// What the gates that pause rather than refuse found.
#[derive(Default)]
struct BootFindings {
    /// Set when the substrate was rewound: Warden boots PAUSED (`substrate`).
    substrate_rewind: Option<String>,
    /// Rows to append once the audit log is up.
    rows: Vec<NewRow>,
}

/// Runs the boot gates in order. The first three refuse to boot on failure;
/// `cursors_consistent` and `dr_epoch` report a failure and let Warden boot
/// PAUSED with reason `substrate`.
fn boot_gates(
    settings: &Settings,
    boot: &BootStatus,
    dr: &DrEpoch,
) -> Result<BootFindings, AppError> {
    boot.record("config_valid", Ok(settings.summary()));
    let state_dir = &settings.service.state_dir;
    let mut last_seq = 0;
    let passed = boot.record("state_dir_writable", check_state_dir(state_dir))
        && boot.record(
            "audit_recovered",
            crate::audit::inspect(&audit_dir(state_dir))
                .map(|report| {
                    last_seq = report.last_good_seq.unwrap_or(0);
                    describe_recovery(&report)
                })
                .map_err(|error| error.to_string()),
        );
    if passed {
        let mut findings = BootFindings::default();
        if let Err(detail) = check_cursors(&state_dir.join("cursors"), last_seq) {
            boot.record("cursors_consistent", Err(detail.clone()));
            findings.rows.push(NewRow::new(
                "dr.cursor_beyond_log",
                json!({ "detail": detail, "log_last_seq": last_seq }),
            ));
            findings.substrate_rewind = Some(detail);
        } else {
            boot.record(
                "cursors_consistent",
                check_cursors(&state_dir.join("cursors"), last_seq),
            );
        }
        let epoch = dr.check(last_seq).map_err(|error| error.to_string());
        let (result, row) = describe_epoch(epoch);
        if let Err(detail) = &result {
            findings
                .substrate_rewind
                .get_or_insert_with(|| detail.clone());
        }
        findings.rows.extend(row);
        boot.record("dr_epoch", result);
        return Ok(findings);
    }
    let failures: Vec<String> = boot
        .failures()
        .into_iter()
        .map(|gate| format!("{} ({})", gate.name, gate.detail))
        .collect();
    Err(AppError::Boot(failures.join("; ")))
}

/// The `dr_epoch` gate's result and its audit row, if any.
fn describe_epoch(epoch: Result<EpochCheck, String>) -> (Result<String, String>, Option<NewRow>) {
    match epoch {
        Ok(EpochCheck::Created) => (Ok("first boot: DR epoch 1 recorded".to_owned()), None),
        Ok(EpochCheck::Consistent { epoch }) => (
            Ok(format!("DR epoch {epoch} matches the known epoch")),
            None,
        ),
        Ok(EpochCheck::Rewind(facts)) => (
            Err(format!(
                "rewind detected: state epoch {}, known epoch {}, log last seq {}, known high water {}; verify, then bump_epoch and reset",
                facts.state_epoch, facts.known_epoch, facts.log_last_seq, facts.known_high_water
            )),
            Some(NewRow::new("dr.rewind_detected", json!(facts))),
        ),
        Ok(EpochCheck::KnownEpochViolation(facts)) => (
            Err(format!(
                "KnownEpochMonotonicViolation: state epoch {} is ahead of known epoch {} (the known epoch file was rewound or replaced); verify, then bump_epoch and reset",
                facts.state_epoch, facts.known_epoch
            )),
            Some(NewRow::new("dr.known_epoch_violation", json!(facts))),
        ),
        Err(detail) => (
            Err(format!("cannot check the DR epoch: {detail}")),
            Some(NewRow::new(
                "dr.epoch_unreadable",
                json!({ "detail": detail }),
            )),
        ),
    }
}

/// Handles shared by every incarnation of the tree: what must survive restarts.
#[derive(Clone)]
struct Shared {
    settings: Arc<Settings>,
    names: Names,
    audit: AuditLog,
    audit_args: AuditWriterArgs,
    api_args: ApiServerArgs,
    debouncer_args: DebouncerArgs,
    wake_args: WakeConsumerArgs,
    incidents_args: crate::incidents::CommanderArgs,
    probe_args: Vec<ProbeActorArgs>,
    escalation: Arc<Escalation>,
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
            let fix = settings
                .components
                .iter()
                .find(|c| c.name == probe.component_name())
                .map(|c| &c.fix);
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
                envelope_status: fix.map_or("absent", crate::settings::FixSettings::status),
                envelope_fix: fix.and_then(crate::settings::FixSettings::describe),
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
    DebounceConfig::new(rules, depends_on, windows)
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
                        at_boot.trace,
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

    let incidents_name = shared.names.of("incidents");
    let incidents_args = shared.incidents_args.clone();
    let incidents = ChildSpec::worker("incidents", move |parent: ActorCell| {
        let (name, args) = (incidents_name.clone(), incidents_args.clone());
        Box::pin(async move {
            let (actor, _) = Actor::spawn_linked(
                Some(name),
                crate::incidents::IncidentCommander,
                args,
                parent,
            )
            .await?;
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

    let escalation = escalation_spec(shared, &ladder, child_timeout);

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
        .children(vec![
            audit, debouncer, wake, incidents, probes, escalation, api,
        ])
        .observer(shared.observer.clone())
}

/// What the escalation subtree is built from, made once in [`start`].
struct Escalation {
    managed: Vec<(ManagedArgs, Vec<String>)>,
    coordinators: Vec<CoordinatorArgs>,
    latest: LatestObservations,
}

/// The `escalation` supervisor: managed processes first, in dependency order
/// (each waits, on its first start only, up to its `start_timeout` for the
/// probes of its `depends_on` to be healthy), then one coordinator per
/// component. A coordinator failing restarts only itself; a managed process
/// has its own restart ladder inside its actor.
fn escalation_spec(shared: &Shared, ladder: &Ladder, child_timeout: Duration) -> ChildSpec {
    let mut children = Vec::new();
    for (args, dependency_probes) in &shared.escalation.managed {
        let name = shared.names.of(&format!("managed.{}", args.component));
        let (args, dependency_probes) = (args.clone(), dependency_probes.clone());
        let latest = shared.escalation.latest.clone();
        let first_start = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let stop_timeout = args.settings.stop_timeout;
        children.push(
            ChildSpec::worker(
                format!("managed:{}", args.component),
                move |parent: ActorCell| {
                    let (name, args, probes, latest, first) = (
                        name.clone(),
                        args.clone(),
                        dependency_probes.clone(),
                        latest.clone(),
                        first_start.clone(),
                    );
                    Box::pin(async move {
                        if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                            wait_for_dependencies(
                                &args.component,
                                &probes,
                                &latest,
                                args.settings.start_timeout,
                            )
                            .await;
                        }
                        let (actor, _) =
                            Actor::spawn_linked(Some(name), ManagedProcess, args, parent).await?;
                        Ok(actor.get_cell())
                    })
                },
            )
            // Its own stop sequence (signal, stop_timeout, kill) must fit.
            .shutdown(warden_supervisors::Shutdown::Timeout(
                stop_timeout + child_timeout,
            )),
        );
    }
    for args in &shared.escalation.coordinators {
        let component = args.ctx.component.name.clone();
        let name = shared.names.of(&format!("coordinator.{component}"));
        let args = args.clone();
        children.push(
            ChildSpec::worker(
                format!("coordinator:{component}"),
                move |parent: ActorCell| {
                    let (name, args) = (name.clone(), args.clone());
                    Box::pin(async move {
                        let (actor, _) =
                            Actor::spawn_linked(Some(name), EscalationCoordinator, args, parent)
                                .await?;
                        Ok(actor.get_cell())
                    })
                },
            )
            .shutdown(warden_supervisors::Shutdown::Timeout(child_timeout)),
        );
    }
    let spec = SupervisorSpec::new("escalation", Strategy::OneForOne)
        .policy(ladder.clone())
        .children(children)
        .observer(shared.observer.clone());
    let name = shared.names.of("escalation");
    ChildSpec::supervisor("escalation", move |parent: ActorCell| {
        let (name, spec) = (name.clone(), spec.clone());
        Box::pin(async move {
            let (actor, _) = Supervisor::spawn_linked(Some(name), spec, parent).await?;
            Ok(actor.get_cell())
        })
    })
}

/// Waits (bounded by `timeout`) until every probe in `probes` has a healthy
/// latest observation; a dependency that stays down delays the start, it
/// does not prevent it.
async fn wait_for_dependencies(
    component: &str,
    probes: &[String],
    latest: &LatestObservations,
    timeout: Duration,
) {
    if probes.is_empty() {
        return;
    }
    let deadline = Instant::now() + timeout;
    loop {
        let healthy = probes.iter().all(|p| {
            latest
                .get(p)
                .is_some_and(|o| o.status == crate::messages::Health::Healthy)
        });
        if healthy {
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                component,
                ?probes,
                "Dependencies are not healthy after the start timeout; starting anyway."
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops the managed process groups a previous incarnation left running
/// (it was killed before it could stop them), before any new one starts, so
/// exactly one copy of each runs. Each group found is audited.
async fn stop_previous_groups(state_dir: &Path, audit: &AuditLog) {
    let dir = state_dir.join(crate::managed::RECORDS_DIR);
    for group in crate::managed::stop_previous(&dir).await {
        if group.outcome != "gone" {
            tracing::warn!(component = %group.component, pgid = group.pgid, outcome = group.outcome, "A managed process group of the previous run was still there at boot.");
        }
        audit.append_nowait(
            NewRow::new(
                "managed.previous_stopped",
                json!({ "pgid": group.pgid, "outcome": group.outcome }),
            )
            .component(group.component),
        );
    }
}

/// Builds the escalation subtree's arguments and takes the boot snapshots.
#[allow(clippy::too_many_arguments)]
fn escalation(
    settings: &Settings,
    names: &Names,
    audit: &AuditLog,
    http: &reqwest::Client,
    notifiers: &crate::notify::Notifiers,
    state: &OperationalState,
    latest: &LatestObservations,
    store: &DebounceStore,
    metrics: &crate::metrics::Metrics,
    events: &Arc<ractor::OutputPort<ManagedEvent>>,
    issues: &IssueBus,
    incidents: (
        &crate::incidents::IncidentStore,
        &crate::incidents::FreezeSet,
    ),
) -> Escalation {
    let state_dir = &settings.service.state_dir;
    let cycles: CycleStore = Arc::default();
    let order = crate::managed::start_order(&settings.components);
    let probes_of = |component: &str| -> Vec<String> {
        settings
            .probes
            .iter()
            .filter(|p| p.component_name() == component)
            .map(|p| p.name.clone())
            .chain(
                settings
                    .components
                    .iter()
                    .filter(|c| c.name == component)
                    .flat_map(|c| c.probes.clone()),
            )
            .collect()
    };
    let managed = order
        .iter()
        .filter_map(|name| settings.components.iter().find(|c| &c.name == name))
        .map(|component| {
            let dependency_probes = component
                .depends_on
                .iter()
                .flat_map(|d| probes_of(d))
                .collect();
            let args = ManagedArgs {
                component: component.name.clone(),
                settings: component.clone(),
                log_dir: state_dir.join("logs").join(&component.name),
                records_dir: state_dir.join(crate::managed::RECORDS_DIR),
                audit: audit.clone(),
                events: events.clone(),
                status: ManagedStatus::default(),
                hold: {
                    let (state, freeze, name) =
                        (state.clone(), incidents.1.clone(), component.name.clone());
                    crate::managed::AutomationHold::new(move || {
                        crate::escalation::hold_reason(&state, &freeze, &name)
                    })
                },
            };
            (args, dependency_probes)
        })
        .collect();
    for component in &settings.components {
        if component.rollback.snapshot.is_empty() {
            continue;
        }
        let row = match crate::escalation::Snapshots::take(
            state_dir,
            &component.name,
            &component.rollback.snapshot,
        ) {
            Ok(report) => NewRow::new(
                "escalation.snapshot_taken",
                json!({ "copied": report.copied, "missing": report.missing, "refused": report.refused, "already_taken": report.already_taken }),
            ),
            Err(error) => {
                tracing::error!(component = %component.name, error = %error, "Could not snapshot the last-known-good files; rollback will not be possible.");
                NewRow::new(
                    "escalation.snapshot_failed",
                    json!({ "error": error.to_string() }),
                )
            }
        };
        audit.append_nowait(row.component(component.name.clone()));
    }
    let coordinators = settings
        .components
        .iter()
        .map(|component| CoordinatorArgs {
            ctx: Arc::new(CycleContext {
                component: component.clone(),
                audit: audit.clone(),
                http: http.clone(),
                notifiers: notifiers.clone(),
                state: state.clone(),
                latest: latest.clone(),
                debounce: store.clone(),
                state_dir: state_dir.clone(),
                managed: component
                    .is_managed()
                    .then(|| names.of(&format!("managed.{}", component.name))),
                metrics: metrics.clone(),
                incidents: incidents.0.clone(),
                freeze: incidents.1.clone(),
                commander: names.of("incidents"),
            }),
            store: cycles.clone(),
            issues: issues.clone(),
            managed: events.clone(),
        })
        .collect();
    Escalation {
        managed,
        coordinators,
        latest: latest.clone(),
    }
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

impl Warden {
    /// Why boot found the substrate rewound (a restored state dir, a cursor
    /// beyond the log), if it did; Warden is then PAUSED with `substrate`.
    pub fn rewind_detected(&self) -> Option<&str> {
        self.substrate_rewind.as_deref()
    }

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

/// Where a config source's text lives, for reports.
fn source_path(source: &crate::settings::ConfigSource) -> String {
    use crate::settings::ConfigSource;
    match source {
        ConfigSource::Embedded => "embedded".to_owned(),
        ConfigSource::File(path) => path.display().to_string(),
        ConfigSource::Text { name, .. } => name.clone(),
    }
}

fn load_text(text: &str) -> Result<Settings, AppError> {
    let source = crate::settings::ConfigSource::Text {
        name: "config".into(),
        toml: text.to_owned(),
    };
    crate::settings::load(&source).map_err(|error| AppError::Setup(error.lines().join("; ")))
}

/// `settings` with every operator-token source taken from `current` (the
/// operator's configuration as it is now, environment included): a
/// last-known-good text may still name a token the operator has revoked
/// since, and a rollback must not bring it back.
fn with_current_tokens(mut settings: Settings, current: &Settings) -> Settings {
    let (to, from) = (&mut settings.service, &current.service);
    to.operator_token = from.operator_token.clone();
    to.operator_tokens = from.operator_tokens.clone();
    to.operator_token_file = from.operator_token_file.clone();
    to.operator_token_files = from.operator_token_files.clone();
    to.read_token_files = from.read_token_files.clone();
    settings
}

/// The origin of a boot on the last-known-good copy that set `operator`
/// aside.
fn known_good_origin(
    state_dir: &Path,
    operator_path: &str,
    operator_text: &str,
    good: &str,
    reason: String,
) -> crate::control::ConfigOrigin {
    use crate::escalation::snapshot::{config_digest, config_snapshot_path, rejected_config_path};
    crate::control::ConfigOrigin {
        source: crate::control::ConfigSourceKind::LastKnownGood,
        path: config_snapshot_path(state_dir).display().to_string(),
        // The digest of the copy at `path`, which holds its inline secrets
        // redacted (`good` has them back from the operator's text).
        digest: config_digest(&crate::settings::seal_config_text(good)),
        reason,
        operator_config: Some(crate::control::SetAside {
            path: operator_path.to_owned(),
            digest: config_digest(operator_text),
            kept_at: rejected_config_path(state_dir).display().to_string(),
        }),
    }
}

/// Runs Warden from a config source until `shutdown`, falling back to the
/// last-known-good configuration when a new one melts the tree down (DESIGN
/// §3): the first root meltdown on a configuration that differs from the
/// last-known-good one stops the tree, records the rollback in the state dir
/// (the rejected text is kept there as `snapshots/_warden/rejected.toml`),
/// and boots once more on the last-known-good copy; a meltdown after that
/// stops Warden. The operator's `--config` file is never written: a later
/// start whose file still holds the rejected text boots from the copy too,
/// and says so in `/api/boot-status`; a changed file is tried as usual.
/// Operator tokens always come from the operator's configuration as it is
/// now, whichever text is in force.
pub async fn run_source(
    source: crate::settings::ConfigSource,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AppError> {
    use crate::control::{ConfigOrigin, ConfigSourceKind};
    use crate::escalation::snapshot::{config_digest, rolled_back_from};
    use crate::settings::ConfigSource;
    let operator_text = match &source {
        ConfigSource::Embedded => crate::settings::DEFAULT_CONFIG.to_owned(),
        ConfigSource::File(path) => std::fs::read_to_string(path)
            .map_err(|error| AppError::Setup(format!("cannot read {}: {error}", path.display())))?,
        ConfigSource::Text { toml, .. } => toml.clone(),
    };
    let operator_path = source_path(&source);
    // The operator's configuration as it is now: the token sources in force,
    // and the state dir that holds any rollback.
    let current = load_text(&operator_text)?;
    let state_dir = current.service.state_dir.clone();
    let (mut text, mut origin) = match rolled_back_from(&state_dir, &operator_text) {
        Ok(Some((record, good))) => {
            let reason = format!(
                "{operator_path} ({}) melted the supervision tree down and was rolled back at {}; it is left untouched, and Warden boots from the last-known-good copy until it changes",
                record.rejected_digest, record.at
            );
            tracing::warn!(config = %operator_path, "The configuration file still holds a version that was rolled back; booting from the last-known-good copy in the state dir.");
            let origin =
                known_good_origin(&state_dir, &operator_path, &operator_text, &good, reason);
            (good, origin)
        }
        Ok(None) => {
            let origin = ConfigOrigin {
                source: ConfigSourceKind::Operator,
                path: operator_path.clone(),
                digest: config_digest(&operator_text),
                reason: "the operator's configuration".to_owned(),
                operator_config: None,
            };
            (operator_text.clone(), origin)
        }
        Err(error) => {
            return Err(AppError::Setup(format!(
                "cannot read the configuration rollback record: {error}"
            )));
        }
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let mut meltdowns = 0;
    loop {
        let settings = with_current_tokens(load_text(&text)?, &current);
        let options = BootOptions {
            config_text: Some(text.clone()),
            meltdowns,
            origin: Some(origin.clone()),
        };
        let mut warden = start_with(settings, options).await?;
        let result = tokio::select! {
            () = &mut shutdown => return warden.shutdown().await,
            result = warden.wait() => result,
        };
        match result {
            Err(AppError::ConfigRollback(good)) => {
                // `supervise` recorded it in the state dir before stopping.
                let at = match rolled_back_from(&state_dir, &text) {
                    Ok(Some((record, _))) => record.at,
                    _ => jiff::Timestamp::now().to_string(),
                };
                let reason = format!(
                    "{operator_path} ({}) melted the supervision tree down and was rolled back at {at}; it is left untouched, and Warden boots from the last-known-good copy until it changes",
                    config_digest(&text)
                );
                origin = known_good_origin(&state_dir, &operator_path, &text, &good, reason);
                tracing::warn!("Restarting on the last-known-good configuration.");
                text = good;
                meltdowns = 1;
            }
            other => return other,
        }
    }
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
        probes: _,         // one ProbeActor each
        components: _,     // dependencies, through debounce_config
        maintenance: _,    // windows, through debounce_config
        wake: wake_settings,
        investigator: investigator_settings,
        notifiers: notifier_settings,
        dr: dr_settings,
        incidents: _, // through the incident commander's args
        chaos: chaos_settings,
    } = &*settings;

    let tokens = OperatorTokens::new(operator_tokens(&settings)?);
    for warning in service.token_file_warnings() {
        tracing::warn!(warning = %warning, "An operator token file is readable by other users.");
    }
    if !service.api_listen.ip().is_loopback() && tokens.is_empty() {
        return Err(AppError::UnsafeListen(service.api_listen));
    }
    let access =
        crate::api::Access::load(&settings).map_err(|error| AppError::Setup(error.to_string()))?;
    access.reload_on_hangup(settings.clone());
    let tls = match (&service.tls_cert_file, &service.tls_key_file) {
        (Some(cert), Some(key)) => Some(
            crate::api::tls_acceptor(cert, key)
                .map_err(|error| AppError::Setup(error.to_string()))?,
        ),
        _ => None,
    };
    let limits = crate::api::ConnLimits {
        header_read_timeout: service.header_read_timeout,
        idle_timeout: service.idle_timeout,
        max_connections: fds::connection_cap(
            service.max_connections,
            fds::raise_nofile_limit(),
            fds::reserve(&settings),
        ),
    };
    let boot = BootStatus::default();
    if let Some(origin) = &options.origin {
        boot.set_config(origin.clone());
    }
    let dr = DrEpoch::new(
        &service.state_dir,
        &dr_settings.known_epoch_path(&service.state_dir),
    );
    if let Some(legacy) = dr_settings.legacy_known_epoch_path(&service.state_dir) {
        match dr.adopt_legacy(&legacy) {
            Ok(true) => {
                tracing::info!(legacy = %legacy.display(), "Adopted the known DR epoch from its pre-upgrade location.")
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(error = %error, "Could not adopt the known DR epoch from its pre-upgrade location; the dr_epoch gate decides.")
            }
        }
    }
    let findings = boot_gates(&settings, &boot, &dr)?;

    let state = OperationalState::default();
    if let Some(detail) = &findings.substrate_rewind {
        state.pause("substrate");
        tracing::error!(detail = %detail, "The state dir or audit log was rewound; Warden is PAUSED until an operator verifies, bumps the epoch and resets.");
    }
    let names = Names::new();
    let dir = audit_dir(&service.state_dir);
    let (audit, queue) = AuditLog::new();
    let mut audit_args = AuditWriterArgs::new(dir.clone(), queue);
    audit_args.fsync = audit_settings.fsync;
    audit_args.batch_max = audit_settings.batch_max;
    audit_args.rotate_bytes = audit_settings.rotate_bytes.as_u64();
    let chaos = chaos_settings.enabled.then(|| {
        tracing::warn!(
            "chaos.enabled: the fault-injection surface is on; never do this in production."
        );
        let faults = Arc::new(crate::audit::AuditFaults::new());
        audit_args.faults = Some(faults.clone());
        crate::chaos::ChaosControl::new(names.clone(), faults)
    });
    let health = audit.health();
    state.watch("audit_unwritable", move || health.is_failing());
    stop_previous_groups(&service.state_dir, &audit).await;

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
    let metrics = crate::metrics::Metrics::new();
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
        metrics: metrics.clone(),
    };
    let managed_events: Arc<ractor::OutputPort<ManagedEvent>> =
        Arc::new(ractor::OutputPort::default());
    let incident_store: crate::incidents::IncidentStore = Arc::default();
    let freeze: crate::incidents::FreezeSet = Arc::default();
    let incidents_args = crate::incidents::CommanderArgs {
        settings: settings.incidents.clone(),
        state_dir: service.state_dir.clone(),
        audit: audit.clone(),
        audit_dir: dir.clone(),
        outbox: crate::notify::Outbox::new(
            wake_args.notifiers.clone(),
            audit.clone(),
            wake_args.metrics.clone(),
            "incidents",
        ),
        latest: latest.clone(),
        history: history.clone(),
        criticality: settings
            .components
            .iter()
            .map(|c| (c.name.clone(), c.criticality))
            .collect(),
        depends_on: settings
            .components
            .iter()
            .map(|c| (c.name.clone(), c.depends_on.clone()))
            .collect(),
        store: incident_store.clone(),
        issues: issues.clone(),
        freeze: freeze.clone(),
        // Secrets serialise as "***": the evidence never holds one. Rendered
        // when an incident asks for it, not kept as a JSON tree of every probe.
        effective_config: crate::incidents::EffectiveConfig::of(settings.clone()),
        tick: Duration::from_secs(5),
        debounce: store.clone(),
    };
    let escalation = Arc::new(escalation(
        &settings,
        &names,
        &audit,
        &http,
        &wake_args.notifiers,
        &state,
        &latest,
        &store,
        &metrics,
        &managed_events,
        &issues,
        (&incident_store, &freeze),
    ));
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
        metrics: metrics.clone(),
    };
    let probe_args: Vec<ProbeActorArgs> = settings
        .probes
        .iter()
        .map(|probe| ProbeActorArgs {
            probe: Arc::new(probe.clone()),
            defaults: settings.probe_defaults.clone(),
            ctx: check_ctx.clone(),
            latest: latest.clone(),
            history: history.clone(),
            history_len: wake_settings.history,
            metrics: metrics.clone(),
            queue: queue.clone(),
            debouncer: names.of("debouncer"),
        })
        .collect();
    let requested = Arc::new(Notify::new());
    let api_args = ApiServerArgs {
        listener: Arc::new(Mutex::new(Some(listener))),
        addr,
        context: ApiContext {
            state: state.clone(),
            boot: boot.clone(),
            audit: audit.clone(),
            audit_dir: dir.clone(),
            operator_tokens: tokens.clone(),
            shutdown: requested.clone(),
            dr: dr.clone(),
            tree: tree.clone(),
            call_timeout: service.call_timeout,
            started,
            probes: ProbesView {
                probes: Arc::new(settings.probes.clone()),
                defaults: settings.probe_defaults.clone(),
                latest: latest.clone(),
                store: store.clone(),
                heartbeats: heartbeats.clone(),
                history: history.clone(),
            },
            wake: wake_status.clone(),
            investigator: wake_args.investigator.clone(),
            metrics: metrics.clone(),
            incidents: crate::api::IncidentsView {
                store: incident_store.clone(),
                commander: names.of("incidents"),
                dir: crate::incidents::incidents_root(&service.state_dir),
            },
            chaos: chaos.clone(),
            access: access.clone(),
            tls: tls.is_some(),
            request_timeout: service.request_timeout,
        },
        limits,
        tls,
    };
    let shared = Shared {
        observer: Arc::new(AuditObserver::new(audit.clone()).with_metrics(metrics.clone())),
        settings: settings.clone(),
        names: names.clone(),
        audit: audit.clone(),
        audit_args,
        api_args,
        debouncer_args,
        wake_args,
        incidents_args,
        probe_args,
        escalation,
    };
    audit.append_nowait(NewRow::new(
        "service.boot",
        json!({ "version": env!("CARGO_PKG_VERSION"), "pid": std::process::id(), "api": addr.to_string(), "gates": boot.report().gates, "open_issues_restored": restored }),
    ));
    if let Some(origin) = &options.origin {
        audit.append_nowait(NewRow::new("service.config_origin", json!(origin)));
    }
    for row in findings.rows {
        audit.append_nowait(row);
    }

    let root = spawn_root(&shared, &tree, 1).await?;
    if let Some(detail) = &findings.substrate_rewind {
        // A restored state dir is an incident in itself (SEV1), opened once the commander is up.
        open_incident(
            &shared.names,
            crate::incidents::OpenTrigger::Substrate {
                detail: detail.clone(),
            },
        );
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let housekeeping = tokio::spawn(housekeeping(
        settings.clone(),
        tokens.clone(),
        audit.clone(),
        dr.clone(),
    ));
    let storage = tokio::spawn(storage(
        settings.clone(),
        metrics.clone(),
        audit.clone(),
        incident_store.clone(),
    ));
    let lifecycle = {
        let (state, tree, timeout) = (state.clone(), tree.clone(), service.shutdown_timeout);
        let (requested, dr) = (requested.clone(), dr.clone());
        tokio::spawn(async move {
            let stop = async move {
                tokio::select! {
                    _ = stopped => {}
                    () = requested.notified() => {}
                }
            };
            let result = supervise(&shared, root, &state, &tree, timeout, stop, &options).await;
            housekeeping.abort();
            storage.abort();
            tree.set(None);
            // Whatever was queued after the writer stopped (its own stop event,
            // the final rows) is written by a short-lived writer so nothing is lost.
            drain(&shared.audit, &shared.audit_args, timeout).await;
            mark_high_water(&shared.audit_args.dir, &dr);
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
        dr,
        tokens,
        substrate_rewind: findings.substrate_rewind,
        incidents: incident_store,
        chaos,
        stop: Some(stop),
        lifecycle,
    })
}

/// Asks the incident commander (found by name) to open an incident.
fn open_incident(names: &Names, trigger: crate::incidents::OpenTrigger) {
    match ractor::ActorRef::<crate::incidents::IncidentMsg>::where_is(names.of("incidents")) {
        Some(commander) => {
            if let Err(error) = commander.cast(crate::incidents::IncidentMsg::Open {
                trigger,
                reply: None,
            }) {
                tracing::error!(error = %error, "Could not ask the incident commander to open an incident.");
            }
        }
        None => {
            tracing::error!("The incident commander is not running; an incident was not opened.")
        }
    }
}

/// Raises the DR high-water marks to the log's last complete row (read from
/// disk, so it is what a restore would be compared with).
fn mark_high_water(dir: &Path, dr: &DrEpoch) {
    let last = crate::audit::AuditReader::open(dir).and_then(|reader| reader.last_seq());
    match last {
        Ok(last) => {
            if let Err(error) = dr.mark_high_water(last.unwrap_or(0)) {
                tracing::error!(error = %error, "Could not record the DR high-water mark.");
            }
        }
        Err(error) => {
            tracing::error!(error = %error, "Could not read the audit log's end for the DR high-water mark.");
        }
    }
}

/// How often the DR high-water marks follow the log while running.
const HIGH_WATER_EVERY: Duration = Duration::from_secs(60);

/// Background chores owned by the lifecycle: reloads the operator tokens on
/// SIGHUP and keeps the DR high-water marks following the log.
async fn housekeeping(
    settings: Arc<Settings>,
    tokens: OperatorTokens,
    audit: AuditLog,
    dr: DrEpoch,
) {
    #[cfg(unix)]
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(error = %error, "Cannot watch SIGHUP; secrets reload only on restart.");
            None
        }
    };
    let mut tick = tokio::time::interval(HIGH_WATER_EVERY);
    tick.tick().await;
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<()>();
        tokio::select! {
            () = hup => reload_secrets(&settings, &tokens, &audit),
            _ = tick.tick() => {
                let last = *audit.subscribe().borrow();
                if let Err(error) = dr.mark_high_water(last) {
                    tracing::error!(error = %error, "Could not record the DR high-water mark.");
                }
            }
        }
    }
}

/// How often retention runs and the state dir's disk use is measured.
const STORAGE_EVERY: Duration = Duration::from_secs(60);

/// Keeps the state dir bounded, owned by the lifecycle (aborted with the
/// tree): a retention pass and a disk-use measurement at boot and every
/// [`STORAGE_EVERY`], each on the blocking pool and bounded by
/// [`crate::storage::retention::MAX_REMOVALS`] removals.
async fn storage(
    settings: Arc<Settings>,
    metrics: crate::metrics::Metrics,
    audit: AuditLog,
    incidents: crate::incidents::IncidentStore,
) {
    let policy = crate::storage::RetentionPolicy {
        audit_retain_for: settings.audit.retain_for,
        audit_retain_bytes: settings.audit.retain_bytes.map(|size| size.as_u64()),
        incidents_retain_for: settings.incidents.retain_for,
    };
    let state_dir = settings.service.state_dir.clone();
    let mut tick = tokio::time::interval(STORAGE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let dir = state_dir.clone();
        let pass = tokio::task::spawn_blocking(move || {
            let report = (!policy.is_off()).then(|| {
                crate::storage::run_retention(&dir, &policy, std::time::SystemTime::now())
            });
            (report, crate::storage::measure(&dir))
        })
        .await;
        let (report, used) = match pass {
            Ok(pass) => pass,
            Err(error) => {
                tracing::error!(error = %error, "The retention pass failed.");
                continue;
            }
        };
        if let Some(report) = report {
            for id in &report.incidents {
                incidents.remove(id);
            }
            if !report.errors.is_empty() {
                tracing::warn!(errors = ?report.errors, "Retention skipped what it could not read or remove.");
            }
            if report.removed_anything() || !report.errors.is_empty() {
                audit.append_nowait(NewRow::new("storage.pruned", json!(report)));
            }
        }
        metrics.disk_use(&used);
    }
}

/// Re-reads every operator token (files included). On failure the tokens in
/// force stay, so a half-written file never locks the operator out.
fn reload_secrets(settings: &Settings, tokens: &OperatorTokens, audit: &AuditLog) {
    match operator_tokens(settings) {
        Ok(fresh) => {
            let count = fresh.len();
            tokens.replace(fresh);
            tracing::info!(operator_tokens = count, "Secrets reloaded.");
            audit.append_nowait(NewRow::new(
                "service.secrets_reloaded",
                json!({ "operator_tokens": count }),
            ));
        }
        Err(error) => {
            tracing::error!(error = %error, "Secrets reload failed; the previous tokens stay in force.");
            audit.append_nowait(NewRow::new(
                "service.secrets_reload_failed",
                json!({ "error": error.to_string() }),
            ));
        }
    }
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
    stopped: impl Future<Output = ()>,
    options: &BootOptions,
) -> Result<(), AppError> {
    let mut stopped = std::pin::pin!(stopped);
    let (mut root, mut handle) = first;
    let mut meltdowns = options.meltdowns;
    let state_dir = shared.settings.service.state_dir.clone();
    // Once this configuration has run stably it becomes the last-known-good one.
    let stable = tokio::time::sleep(
        shared
            .settings
            .supervision
            .stable_after
            .max(Duration::from_millis(100)),
    );
    let mut stable = std::pin::pin!(stable);
    let mut proven = options.config_text.is_none();
    loop {
        tokio::select! {
            () = &mut stable, if !proven => {
                proven = true;
                if meltdowns == options.meltdowns
                    && let Some(text) = &options.config_text
                {
                    match crate::escalation::snapshot::snapshot_config(&state_dir, text) {
                        Ok(path) => shared.audit.append_nowait(NewRow::new("service.config_known_good", json!({ "path": path.display().to_string(), "digest": crate::escalation::snapshot::config_digest(text) }))),
                        Err(error) => tracing::warn!(error = %error, "Could not keep the configuration as last-known-good."),
                    }
                }
            }
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
                // A new configuration that melts the tree down is replaced by
                // the last-known-good one (the caller boots once more on it).
                let good = crate::escalation::snapshot::restore_config(&state_dir).ok();
                if let (Some(good), Some(current)) = (good, &options.config_text)
                    && good != crate::settings::seal_config_text(current)
                {
                    // The kept copy has its inline secrets redacted; they come back from the current text.
                    let good = crate::settings::unseal_config_text(&good, current);
                    state.stop();
                    // Recorded before the rows, so whoever reads them finds
                    // the record; a restart on the same file then boots
                    // from the copy instead of melting down again.
                    if let Err(error) = crate::escalation::snapshot::record_rollback(&state_dir, current, &good) {
                        tracing::error!(error = %error, "Could not record the configuration rollback; a restart would try the rejected configuration again.");
                    }
                    shared.audit.append_nowait(NewRow::new("service.meltdown", json!({ "meltdowns": meltdowns, "action": "rollback_config" })));
                    shared.audit.append_nowait(NewRow::new("service.config_rolled_back", json!({ "from": "the configuration this boot ran on", "from_digest": crate::escalation::snapshot::config_digest(current), "to": crate::escalation::snapshot::config_snapshot_path(&state_dir).display().to_string(), "to_digest": crate::escalation::snapshot::config_digest(&good), "operator_config_written": false })));
                    tracing::error!("The supervision tree melted down on a new configuration; restoring the last-known-good one.");
                    return Err(AppError::ConfigRollback(good));
                }
                state.pause("meltdown");
                shared.audit.append_nowait(NewRow::new("service.meltdown", json!({ "meltdowns": meltdowns, "action": "restart_tree" })));
                tracing::error!(meltdowns, "The supervision tree melted down; restarting it once with automation paused.");
                (root, handle) = spawn_root(shared, tree, meltdowns + 1).await?;
                open_incident(
                    &shared.names,
                    crate::incidents::OpenTrigger::Meltdown {
                        detail: "the root supervisor exceeded its restart budget; the tree was rebuilt once and automation is paused".into(),
                    },
                );
            }
        }
    }
}
