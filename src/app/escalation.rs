//! The escalation subtree's arguments, built from the `components`
//! section: one managed process per component with `run` (in dependency
//! order) and one coordinator per component. Building them also takes the
//! boot snapshots a rollback restores, and clears what a previous run left.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::handles::Handles;
use crate::audit::AuditLog;
use crate::debounce::LatestObservations;
use crate::escalation::{CoordinatorArgs, CycleContext, CycleStore, IntakeArgs, Route, SavedFile};
use crate::events::{self, service as ev};
use crate::managed::{ManagedArgs, ManagedStatus};
use crate::notify::Notifiers;

/// What the escalation subtree is built from, made once per boot.
pub(super) struct Escalation {
    pub(super) managed: Vec<(ManagedArgs, Vec<String>)>,
    pub(super) coordinators: Vec<CoordinatorArgs>,
    pub(super) intake: IntakeArgs,
    pub(super) latest: LatestObservations,
}

/// Builds the escalation subtree's arguments and takes the boot snapshots.
pub(super) fn build(h: &Handles, notifiers: &Notifiers) -> Escalation {
    let settings = &*h.settings;
    let (audit, names, state, latest) = (&h.audit, &h.names, &h.state, &h.latest);
    let events = &h.managed_events;
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
                        (state.clone(), h.freeze.clone(), component.name.clone());
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
            Ok(report) => {
                let paths = |list: &[std::path::PathBuf]| -> Vec<String> {
                    list.iter().map(|p| p.display().to_string()).collect()
                };
                events::row(&ev::SnapshotTaken {
                    copied: paths(&report.copied),
                    missing: paths(&report.missing),
                    refused: paths(&report.refused),
                    already_taken: report.already_taken,
                })
            }
            Err(error) => {
                tracing::error!(component = %component.name, error = %error, "Could not snapshot the last-known-good files; rollback will not be possible.");
                events::row(&ev::SnapshotFailed {
                    error: error.to_string(),
                })
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
                http: h.http.clone(),
                notifiers: notifiers.clone(),
                state: state.clone(),
                latest: latest.clone(),
                saved: SavedFile::new(state_dir, &component.name, ".cycle.json"),
                state_dir: state_dir.clone(),
                managed: component
                    .is_managed()
                    .then(|| names.of(&format!("managed.{}", component.name))),
                metrics: h.metrics.clone(),
                incidents: h.incidents.clone(),
                freeze: h.freeze.clone(),
                commander: names.of("incidents"),
            }),
            store: cycles.clone(),
            managed: events.clone(),
        })
        .collect();
    let intake = IntakeArgs {
        audit: audit.clone(),
        audit_dir: h.audit_dir.clone(),
        cursor_dir: state_dir.join("cursors"),
        routes: settings
            .components
            .iter()
            .map(|component| Route {
                component: component.name.clone(),
                coordinator: names.of(&format!("coordinator.{}", component.name)),
                probes: component.probes.iter().cloned().collect(),
            })
            .collect(),
        tick: Duration::from_millis(250),
    };
    Escalation {
        managed,
        coordinators,
        intake,
        latest: latest.clone(),
    }
}

/// Waits (bounded by `timeout`) until every probe in `probes` has a healthy
/// latest observation; a dependency that stays down delays the start, it
/// does not prevent it.
pub(super) async fn wait_for_dependencies(
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
pub(super) async fn stop_previous_groups(state_dir: &Path, audit: &AuditLog) {
    let dir = state_dir.join(crate::managed::RECORDS_DIR);
    for group in crate::managed::stop_previous(&dir).await {
        if group.outcome != "gone" {
            tracing::warn!(component = %group.component, pgid = group.pgid, outcome = group.outcome, "A managed process group of the previous run was still there at boot.");
        }
        audit.append_nowait(
            events::row(&ev::PreviousStopped {
                pgid: group.pgid,
                outcome: group.outcome.to_owned(),
            })
            .component(group.component),
        );
    }
}
