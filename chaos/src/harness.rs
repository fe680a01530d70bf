//! Runs one scenario: starts the world (if any) and Warden (in-process or as
//! the binary), applies load and the seeded fault schedule, heals the world,
//! waits for Warden to catch up, stops it gracefully and hands everything
//! that happened to the invariant checks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use warden::audit::{AuditReader, AuditRow, ReadPosition};
use warden::settings::{ConfigSource, load_with_env};

use crate::faults::{Context, Landed};
use crate::scenario::{Mode, WorldSpec};
use crate::subject::{Subject, TOKEN};
use crate::world::{Episode, World};
use crate::{ChaosError, Scenario, invariants};

/// How long the tree may take to be whole again after a fault.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one append may take before the load task counts it as failed.
/// Long enough for the audit writer's retry backoff (up to 5 s per failed
/// write) to work through every injected failure.
const APPEND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long Warden may take, once the world is healed, to resolve every
/// issue and deliver every notice.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// What the simulated world saw.
#[derive(Debug)]
pub struct WorldReport {
    /// The world's shape.
    pub spec: WorldSpec,
    /// Every episode of every target (index = target).
    pub episodes: Vec<Vec<Episode>>,
    /// Notices the receiver accepted, by idempotency key.
    pub received: BTreeMap<String, usize>,
    /// When each fix call arrived.
    pub fixes: Vec<SystemTime>,
    /// Investigations the world's investigator answered.
    pub investigations: usize,
    /// When each escalation tier call arrived.
    pub tier_calls: Vec<SystemTime>,
}

/// What a run produced, for the invariant checks and for reporting.
#[derive(Debug)]
pub struct Outcome {
    /// Appends acknowledged during the run: seq → the load's payload.
    pub acked: BTreeMap<u64, String>,
    /// Faults that landed.
    pub injected: usize,
    /// What each landed fault hit.
    pub landed: Vec<Landed>,
    /// The operational state just before shutdown.
    pub final_state: String,
    /// Whether a fresh append succeeded after the faults stopped.
    pub live_after_faults: bool,
    /// Whether Warden caught up (every issue resolved, every notice out)
    /// within the drain timeout after the world healed.
    pub drained: bool,
    /// Highest resident memory seen, KiB.
    pub max_rss_kib: u64,
    /// Highest audit queue depth or wake backlog seen.
    pub max_backlog: u64,
    /// Why the graceful stop failed, if it did.
    pub shutdown_error: Option<String>,
    /// The world, when the scenario has one.
    pub world: Option<WorldReport>,
    /// Every row of the audit log after shutdown.
    pub rows: Vec<AuditRow>,
}

impl Outcome {
    /// One line for the round's report.
    pub fn summary(&self) -> String {
        let count = |seam: &str| self.rows.iter().filter(|row| row.seam == seam).count();
        let process_kills = self
            .landed
            .iter()
            .filter(|l| matches!(l, Landed::Process))
            .count();
        let mut line = format!(
            "{} faults ({process_kills} kill -9), {} acknowledged rows, {} restarts, final state {}, peak RSS {} MiB, peak backlog {}",
            self.injected,
            self.acked.len(),
            count("supervision.restarted"),
            self.final_state,
            self.max_rss_kib / 1024,
            self.max_backlog,
        );
        if let Some(world) = &self.world {
            let repeats: usize = world.received.values().map(|n| n.saturating_sub(1)).sum();
            line.push_str(&format!(
                "; world: {} issues woken, {} notices received ({} repeats of a key), {} investigations answered, {} fix calls, {} tier calls",
                count("probe.wake_requested"),
                world.received.len(),
                repeats,
                world.investigations,
                world.fixes.len(),
                world.tier_calls.len()
            ));
        }
        line
    }
}

fn world_toml(spec: &WorldSpec, base: &str) -> String {
    let names: Vec<String> = (0..spec.targets).map(|i| format!("\"t{i}\"")).collect();
    let mut toml = format!(
        "[debounce]\nfailure_threshold = {}\nrecovery_threshold = 1\nwindow = \"0s\"\n\n[wake]\nredeliver_every = \"500ms\"\n\n",
        spec.failure_threshold
    );
    for i in 0..spec.targets {
        toml.push_str(&format!(
            "[[probes]]\nname = \"t{i}\"\nkind = \"http\"\nurl = \"{base}/t/{i}\"\ninterval = \"{}ms\"\ntimeout = \"{}ms\"\nseverity = \"warning\"\n\n",
            spec.interval_ms, spec.timeout_ms
        ));
    }
    if spec.investigator {
        toml.push_str(&format!(
            "[investigator]\nkind = \"webhook\"\nurl = \"{base}/investigate\"\ntimeout = \"300ms\"\n\n"
        ));
    }
    toml.push_str(&format!(
        "[[notifiers]]\nname = \"chaos\"\nkind = \"webhook\"\nurl = \"{base}/hook\"\ntimeout = \"500ms\"\nretries = 2\nbackoff_min = \"20ms\"\nbackoff_max = \"100ms\"\n\n"
    ));
    toml.push_str(&format!(
        "[[components]]\nname = \"world\"\nprobes = [{}]\nfinal_tier_threshold = 1\n\n[components.fix]\nenabled = {}\naction = {{ kind = \"http\", url = \"{base}/fix\" }}\nattempts = 1\ncooldown = \"1s\"\nverify_timeout = \"1s\"\n",
        names.join(", "),
        spec.fix
    ));
    if spec.tier {
        toml.push_str(&format!(
            "\n[[components.tiers]]\nname = \"oncall\"\nkind = \"webhook\"\nurl = \"{base}/tier\"\ntimeout = \"300ms\"\nenabled = true\n"
        ));
    }
    toml
}

/// Merges `extra` into `base`: tables recursively, arrays appended, and a
/// value the scenario set itself wins over the world's.
fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (key, value) in extra {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(into)), toml::Value::Table(from)) => merge(into, from),
            (Some(toml::Value::Array(into)), toml::Value::Array(from)) => into.extend(from),
            (Some(_), _) => {}
            (None, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn config_text(
    scenario: &Scenario,
    dir: &Path,
    listen: &str,
    world: Option<&World>,
) -> Result<String, ChaosError> {
    let bad = |reason: String| ChaosError::Scenario {
        name: scenario.name.clone(),
        reason,
    };
    let mut table = scenario.warden.clone();
    if let (Some(spec), Some(world)) = (&scenario.world, world) {
        let extra: toml::Table =
            toml::from_str(&world_toml(spec, &world.base())).map_err(|e| bad(e.to_string()))?;
        merge(&mut table, extra);
    }
    let fixed: toml::Table = toml::from_str(&format!(
        "[service]\nstate_dir = {:?}\napi_listen = {listen:?}\noperator_token = {TOKEN:?}\n\n[chaos]\nenabled = true\n\n[telemetry]\nlog_format = \"json\"\n",
        dir.join("var").display().to_string()
    ))
    .map_err(|e| bad(e.to_string()))?;
    for (section, values) in fixed {
        let entry = table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let (toml::Value::Table(entry), toml::Value::Table(values)) = (entry, values) {
            entry.extend(values);
        }
    }
    toml::to_string(&table).map_err(|e| bad(e.to_string()))
}

async fn start(
    scenario: &Scenario,
    dir: &Path,
    world: Option<&World>,
) -> Result<Subject, ChaosError> {
    match scenario.mode {
        Mode::InProcess => {
            let toml = config_text(scenario, dir, "127.0.0.1:0", world)?;
            let settings = load_with_env(
                &ConfigSource::Text {
                    name: scenario.name.clone(),
                    toml,
                },
                Some(HashMap::new()),
            )
            .map_err(|error| ChaosError::Scenario {
                name: scenario.name.clone(),
                reason: error.lines().join("; "),
            })?;
            Subject::in_process(settings)
                .await
                .map_err(ChaosError::Start)
        }
        Mode::Process => {
            // A fixed port, so the API is at the same address after every
            // kill -9 (std sets SO_REUSEADDR, so the rebind succeeds).
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| ChaosError::Start(e.to_string()))?
                .port();
            let listen = format!("127.0.0.1:{port}");
            let toml = config_text(scenario, dir, &listen, world)?;
            let process = crate::subject::Process::start(dir, toml, format!("http://{listen}"))
                .await
                .map_err(ChaosError::Start)?;
            Ok(Subject::Process(Box::new(process)))
        }
    }
}

async fn wait_whole(subject: &Subject) -> bool {
    let deadline = tokio::time::Instant::now() + RECOVERY_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if subject.whole().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Follows the log under `dir` while Warden runs: each poll reads only what
/// was appended since the last one (a row being written is left for the
/// next poll) and keeps the rows the settle check needs.
#[derive(Default)]
struct Follower {
    at: Option<ReadPosition>,
    rows: Vec<AuditRow>,
}

impl Follower {
    fn poll(&mut self, dir: &Path) -> &[AuditRow] {
        if let Ok(reader) = AuditReader::open(&dir.join("var/audit")) {
            let mut rows = reader.rows_resume(1, None, self.at.clone());
            for row in rows.by_ref().flatten() {
                if row.seam.starts_with("probe.") || row.seam.starts_with("notification.") {
                    self.rows.push(row);
                }
            }
            if let Some(at) = rows.position() {
                self.at = Some(at);
            }
        }
        &self.rows
    }
}

#[derive(Default)]
struct Peaks {
    rss_kib: u64,
    backlog: u64,
}

impl Peaks {
    async fn sample(&mut self, subject: &Subject) {
        if let Some(rss) = subject.rss_kib() {
            self.rss_kib = self.rss_kib.max(rss);
        }
        if let Some(queued) = subject.audit_queued().await {
            self.backlog = self.backlog.max(queued);
        }
        if let Some((in_flight, undelivered, _)) = subject.wake().await {
            self.backlog = self.backlog.max(in_flight.max(undelivered));
        }
    }
}

/// Waits until the wake consumer is idle and every world probe's issue is
/// resolved and every notice is out, checked against the log itself.
async fn drain(subject: &Subject, dir: &Path, world: &World, peaks: &mut Peaks) -> bool {
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    let mut log = Follower::default();
    while tokio::time::Instant::now() < deadline {
        peaks.sample(subject).await;
        let idle = subject
            .wake()
            .await
            .is_some_and(|(in_flight, undelivered, _)| in_flight == 0 && undelivered == 0);
        if idle && invariants::world_settled(log.poll(dir), world.targets()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Runs one scenario end to end and checks every invariant.
pub async fn run_scenario(scenario: &Scenario) -> Result<Outcome, ChaosError> {
    let dir = tempfile::tempdir().map_err(|error| ChaosError::Start(error.to_string()))?;
    let world = match &scenario.world {
        Some(spec) => Some(
            World::start(spec.targets, spec.start_down)
                .await
                .map_err(|e| ChaosError::Start(format!("the world did not start: {e}")))?,
        ),
        None => None,
    };
    let mut subject = start(scenario, dir.path(), world.as_ref()).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();
    let mut load = tokio::task::JoinSet::new();
    for worker in 0..scenario.appenders {
        let (appender, stop, acked) = (subject.appender(), stop.clone(), acked.clone());
        load.spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let payload = format!("{worker}:{i}");
                match tokio::time::timeout(APPEND_TIMEOUT, appender.append(&payload)).await {
                    Ok(Some(seq)) => {
                        acked
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(seq, payload);
                    }
                    // Refused while the process restarts: back off a little
                    // instead of spinning on connection errors.
                    _ => tokio::time::sleep(Duration::from_millis(5)).await,
                }
                i += 1;
            }
        });
    }

    let mut rng = StdRng::seed_from_u64(scenario.seed);
    let mut peaks = Peaks::default();
    let mut landed = Vec::new();
    // `steps` counts faults that landed: a fault aimed at an actor that is
    // between instances finds nothing to hit and is drawn again, so a loaded
    // machine does not quietly weaken a scenario. Bounded: at most ten draws
    // per step.
    let target = usize::try_from(scenario.steps).unwrap_or(usize::MAX);
    let mut draws = 0usize;
    let mut hit = HashSet::new();
    while landed.len() < target && draws < target.saturating_mul(10) {
        draws += 1;
        peaks.sample(&subject).await;
        if scenario.wait_for_recovery && !wait_whole(&subject).await {
            break; // the tree gave up (meltdown); the invariants judge whether that was expected
        }
        let fault = &scenario.faults[rng.random_range(0..scenario.faults.len())];
        let ctx = Context {
            subject: &mut subject,
            world: world.as_ref(),
            rng: &mut rng,
            hit: &mut hit,
        };
        if let Some(what) = fault.inject(ctx).await? {
            tracing::info!(%fault, "Injected a fault.");
            landed.push(what);
        }
        let gap = rng.random_range(0..=scenario.max_gap_ms);
        tokio::time::sleep(Duration::from_millis(gap)).await;
    }

    let hold = tokio::time::Instant::now() + Duration::from_millis(scenario.hold_ms);
    while tokio::time::Instant::now() < hold {
        peaks.sample(&subject).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Liveness: once faults stop, the tree heals and a fresh append is acknowledged.
    if let Some(world) = &world {
        world.heal();
    }
    let whole = wait_whole(&subject).await;
    let fresh = tokio::time::timeout(APPEND_TIMEOUT, subject.appender().append("liveness")).await;
    let live_after_faults = whole && matches!(fresh, Ok(Some(_)));
    stop.store(true, Ordering::Relaxed);
    while load.join_next().await.is_some() {}
    if let Ok(Some(seq)) = fresh {
        acked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(seq, "liveness".to_owned());
    }
    let drained = match &world {
        Some(world) => drain(&subject, dir.path(), world, &mut peaks).await,
        None => true,
    };
    peaks.sample(&subject).await;
    let final_state = subject.state().await;
    let shutdown_error = subject.shutdown().await.err();

    let rows = AuditReader::open(&dir.path().join("var/audit"))
        .and_then(|reader| reader.rows_from(1, None).collect::<Result<Vec<_>, _>>())
        .map_err(|error| {
            ChaosError::Violated(vec![format!("the audit log does not parse: {error}")])
        })?;
    let acked = std::mem::take(&mut *acked.lock().unwrap_or_else(PoisonError::into_inner));
    let world = match (world, &scenario.world) {
        (Some(world), Some(spec)) => Some(WorldReport {
            spec: spec.clone(),
            episodes: (0..world.targets()).map(|i| world.episodes(i)).collect(),
            received: world.received(),
            fixes: world.fixes(),
            investigations: world.investigations(),
            tier_calls: world.tier_calls(),
        }),
        _ => None,
    };
    let outcome = Outcome {
        acked,
        injected: landed.len(),
        landed,
        final_state,
        live_after_faults,
        drained,
        max_rss_kib: peaks.rss_kib,
        max_backlog: peaks.backlog,
        shutdown_error,
        world,
        rows,
    };
    if let Err(ChaosError::Violated(mut violations)) = invariants::check(scenario, &outcome) {
        // WARDEN_CHAOS_KEEP=1 keeps the state dir (audit log, process log)
        // of a failing round for a post-mortem.
        if std::env::var_os("WARDEN_CHAOS_KEEP").is_some() {
            let kept = dir.keep();
            violations.push(format!("state kept in {}", kept.display()));
        }
        return Err(ChaosError::Violated(violations));
    }
    Ok(outcome)
}
