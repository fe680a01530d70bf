//! Background chores the lifecycle owns and aborts with the tree: reloading
//! the operator tokens on SIGHUP, keeping the DR high-water marks following
//! the log, and keeping the state dir bounded (retention, disk use).

use std::sync::Arc;
use std::time::Duration;

use crate::api::OperatorTokens;
use crate::audit::AuditLog;
use crate::control::DrEpoch;
use crate::events::service as ev;
use crate::settings::Settings;

/// How often the DR high-water marks follow the log while running.
const HIGH_WATER_EVERY: Duration = Duration::from_secs(60);

/// Background chores owned by the lifecycle: reloads the operator tokens on
/// SIGHUP and keeps the DR high-water marks following the log.
pub(super) async fn housekeeping(
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
pub(super) async fn storage(
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
                audit.append_nowait(crate::events::row(&report));
            }
        }
        metrics.disk_use(&used);
    }
}

/// Re-reads every operator token (files included). On failure the tokens in
/// force stay, so a half-written file never locks the operator out.
fn reload_secrets(settings: &Settings, tokens: &OperatorTokens, audit: &AuditLog) {
    match super::api::operator_tokens(settings) {
        Ok(fresh) => {
            let count = fresh.len();
            tokens.replace(fresh);
            tracing::info!(operator_tokens = count, "Secrets reloaded.");
            audit.append_nowait(crate::events::row(&ev::SecretsReloaded {
                operator_tokens: count,
            }));
        }
        Err(error) => {
            tracing::error!(error = %error, "Secrets reload failed; the previous tokens stay in force.");
            audit.append_nowait(crate::events::row(&ev::SecretsReloadFailed {
                error: error.to_string(),
            }));
        }
    }
}
