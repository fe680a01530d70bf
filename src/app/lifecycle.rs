//! The running instance's lifecycle: spawning the root, the response to a
//! root meltdown (rebuild once, roll a new configuration back, or stop), the
//! last-known-good snapshot of a configuration that proved stable, and the
//! graceful stop that leaves nothing unwritten.

use std::future::Future;
use std::path::Path;
use std::sync::PoisonError;
use std::time::Duration;

use ractor::Actor;
use tokio::time::Instant;
use warden_supervisors::Supervisor;

use super::chores::{housekeeping, storage};
use super::handles::Handles;
use super::spec::{Shared, root_spec};
use super::{AppError, BootOptions, Names, TreeHandle, Warden};
use crate::audit::{AuditLog, AuditWriter, AuditWriterArgs, NewRow};
use crate::control::{DrEpoch, OperationalState};
use crate::events::{self, service as ev};

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

/// Starts the chores and the task that supervises the root until `stopped`
/// (or `POST /api/shutdown`), then stops the tree and drains the log.
pub(super) fn spawn(
    shared: Shared,
    root: Root,
    h: &Handles,
    stopped: tokio::sync::oneshot::Receiver<()>,
    options: BootOptions,
    started: Instant,
    node: Option<super::node::ClusterNode>,
) -> tokio::task::JoinHandle<Result<(), AppError>> {
    let (keeper, lost) = super::node::spawn(node, &shared, h);
    let housekeeping = tokio::spawn(housekeeping(
        h.settings.clone(),
        h.tokens.clone(),
        h.audit.clone(),
        h.dr.clone(),
    ));
    let storage = tokio::spawn(storage(
        h.settings.clone(),
        h.metrics.clone(),
        h.audit.clone(),
        h.incidents.clone(),
    ));
    let (state, tree, timeout) = (
        h.state.clone(),
        h.tree.clone(),
        h.settings.service.shutdown_timeout,
    );
    let (requested, dr) = (h.requested.clone(), h.dr.clone());
    tokio::spawn(async move {
        let stop = async move {
            tokio::select! {
                _ = stopped => {}
                () = requested.notified() => {}
            }
        };
        let result = supervise(&shared, root, &state, &tree, timeout, stop, &options).await;
        // Released only after the tree stopped: nothing of this node acts
        // once a standby can take over.
        let release = keeper.map(|(task, release)| {
            let _ = release.send(());
            task
        });
        housekeeping.abort();
        storage.abort();
        tree.set(None);
        // Whatever was queued after the writer stopped (its own stop event,
        // the final rows) is written by a short-lived writer so nothing is lost.
        drain(&shared.audit, &shared.audit_args, timeout).await;
        mark_high_water(&shared.audit_args.dir, &dr);
        if let Some(task) = release {
            let _ = task.await;
        }
        tracing::info!(uptime = ?started.elapsed(), "Warden stopped.");
        let lost = lost.lock().unwrap_or_else(PoisonError::into_inner).take();
        match lost {
            Some(error) => Err(AppError::Cluster(error)),
            None => result,
        }
    })
}

/// Asks the incident commander (found by name) to open an incident.
pub(super) fn open_incident(names: &Names, trigger: crate::incidents::OpenTrigger) {
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

pub(super) type Root = (
    ractor::ActorRef<warden_supervisors::SupervisorMsg>,
    tokio::task::JoinHandle<()>,
);

pub(super) async fn spawn_root(
    shared: &Shared,
    tree: &TreeHandle,
    incarnation: u32,
) -> Result<Root, AppError> {
    let (root, handle) = Supervisor::spawn(Some(shared.names.root()), root_spec(shared))
        .await
        .map_err(|error| AppError::Spawn(error.to_string()))?;
    tree.set(Some(root.clone()));
    shared.audit.append_nowait(events::row(&ev::Started {
        incarnation,
        summary: shared.settings.summary(),
    }));
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
            .restart
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
                        Ok(path) => shared.audit.append_nowait(events::row(&ev::ConfigKnownGood { path: path.display().to_string(), digest: crate::escalation::snapshot::config_digest(text) })),
                        Err(error) => tracing::warn!(error = %error, "Could not keep the configuration as last-known-good."),
                    }
                }
            }
            _ = &mut stopped => {
                state.stop();
                shared.audit.append_nowait(events::row(&ev::Stopping { reason: "shutdown requested".to_owned() }));
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
                    shared.audit.append_nowait(meltdown(meltdowns, "stop"));
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
                    shared.audit.append_nowait(meltdown(meltdowns, "rollback_config"));
                    shared.audit.append_nowait(events::row(&ev::ConfigRolledBack { from: "the configuration this boot ran on".to_owned(), from_digest: crate::escalation::snapshot::config_digest(current), to: crate::escalation::snapshot::config_snapshot_path(&state_dir).display().to_string(), to_digest: crate::escalation::snapshot::config_digest(&good), operator_config_written: false }));
                    tracing::error!("The supervision tree melted down on a new configuration; restoring the last-known-good one.");
                    return Err(AppError::ConfigRollback(good));
                }
                state.pause("meltdown");
                shared.audit.append_nowait(meltdown(meltdowns, "restart_tree"));
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

/// The `service.meltdown` row.
fn meltdown(meltdowns: u32, action: &str) -> NewRow {
    events::row(&ev::Meltdown {
        meltdowns,
        action: action.to_owned(),
    })
}
