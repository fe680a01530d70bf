//! Boots the real tree in-process (temp state dir, loopback API), applies
//! load and the seeded fault schedule, stops Warden gracefully and hands the
//! audit log to the invariant checks.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use warden::app::{self, Warden};
use warden::audit::{AuditReader, AuditRow, NewRow};
use warden::settings::{ConfigSource, load_with_env};

use crate::{ChaosError, Scenario, invariants};

/// How long the tree may take to be whole again after a fault.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one append may take before the load task counts it as failed.
const APPEND_TIMEOUT: Duration = Duration::from_secs(15);

/// What a run produced, for the invariant checks and for reporting.
#[derive(Debug)]
pub struct Outcome {
    /// Appends acknowledged during the run: seq → the load's payload.
    pub acked: BTreeMap<u64, String>,
    /// Faults actually injected (not skipped).
    pub injected: usize,
    /// The operational state just before shutdown.
    pub final_state: String,
    /// Whether a fresh append succeeded after the faults stopped.
    pub live_after_faults: bool,
    /// Every row of the audit log after shutdown.
    pub rows: Vec<AuditRow>,
}

fn settings_for(
    scenario: &Scenario,
    dir: &std::path::Path,
) -> Result<warden::settings::Settings, ChaosError> {
    let mut table = scenario.warden.clone();
    let service = table
        .entry("service")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(service) = service {
        service.insert(
            "state_dir".into(),
            dir.join("var").display().to_string().into(),
        );
        service.insert("api_listen".into(), "127.0.0.1:0".into());
    }
    let toml = toml::to_string(&table).map_err(|error| ChaosError::Scenario {
        name: scenario.name.clone(),
        reason: error.to_string(),
    })?;
    load_with_env(
        &ConfigSource::Text {
            name: scenario.name.clone(),
            toml,
        },
        Some(HashMap::new()),
    )
    .map_err(|error| ChaosError::Scenario {
        name: scenario.name.clone(),
        reason: error.lines().join("; "),
    })
}

async fn tree_whole(warden: &Warden) -> bool {
    match warden.tree.children(Duration::from_secs(1)).await {
        Some(children) => children.iter().all(|child| child.running),
        None => false,
    }
}

async fn wait_whole(warden: &Warden) -> bool {
    let deadline = tokio::time::Instant::now() + RECOVERY_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if tree_whole(warden).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Runs one scenario end to end and checks every invariant.
pub async fn run_scenario(scenario: &Scenario) -> Result<Outcome, ChaosError> {
    let dir = tempfile::tempdir().map_err(|error| ChaosError::Start(error.to_string()))?;
    let settings = settings_for(scenario, dir.path())?;
    let warden = app::start(settings)
        .await
        .map_err(|error| ChaosError::Start(error.to_string()))?;

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();
    let mut load = Vec::new();
    for worker in 0..scenario.appenders {
        let (audit, stop, acked) = (warden.audit.clone(), stop.clone(), acked.clone());
        load.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let payload = format!("{worker}:{i}");
                let row = NewRow::new("chaos.append", json!({ "payload": payload }));
                if let Ok(Ok(seq)) = tokio::time::timeout(APPEND_TIMEOUT, audit.append(row)).await {
                    acked
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(seq, payload);
                }
                i += 1;
            }
        }));
    }

    let mut rng = StdRng::seed_from_u64(scenario.seed);
    let mut injected = 0;
    // `steps` counts faults that landed: a fault aimed at an actor that is
    // between instances finds nothing to hit and is drawn again, so a loaded
    // machine does not quietly weaken a scenario. Bounded: at most ten draws
    // per step.
    let target = usize::try_from(scenario.steps).unwrap_or(usize::MAX);
    let mut draws = 0usize;
    let mut hit = std::collections::HashSet::new();
    while injected < target && draws < target.saturating_mul(10) {
        draws += 1;
        if scenario.wait_for_recovery && !wait_whole(&warden).await {
            break; // the tree gave up (meltdown); the invariants judge whether that was expected
        }
        let fault = &scenario.faults[rng.random_range(0..scenario.faults.len())];
        if fault.inject(&warden, &mut hit)? {
            injected += 1;
            tracing::info!(%fault, "Injected a fault.");
        }
        let gap = rng.random_range(0..=scenario.max_gap_ms);
        tokio::time::sleep(Duration::from_millis(gap)).await;
    }

    // Liveness: once faults stop, the tree heals and a fresh append is acknowledged.
    let whole = wait_whole(&warden).await;
    let fresh = tokio::time::timeout(
        APPEND_TIMEOUT,
        warden
            .audit
            .append(NewRow::new("chaos.liveness", json!({}))),
    )
    .await;
    let live_after_faults = whole && matches!(fresh, Ok(Ok(_)));
    stop.store(true, Ordering::Relaxed);
    for task in load {
        let _ = task.await;
    }
    let final_state = format!("{:?}", warden.state.state()).to_uppercase();
    warden
        .shutdown()
        .await
        .map_err(|error| ChaosError::Start(error.to_string()))?;

    let rows = AuditReader::open(&dir.path().join("var/audit"))
        .and_then(|reader| reader.rows_from(1, None).collect::<Result<Vec<_>, _>>())
        .map_err(|error| {
            ChaosError::Violated(vec![format!("the audit log does not parse: {error}")])
        })?;
    let acked = std::mem::take(&mut *acked.lock().unwrap_or_else(PoisonError::into_inner));
    let outcome = Outcome {
        acked,
        injected,
        final_state,
        live_after_faults,
        rows,
    };
    invariants::check(scenario, &outcome)?;
    Ok(outcome)
}
