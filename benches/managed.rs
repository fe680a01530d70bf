//! Crash-to-restart latency of a managed process: SIGKILL a managed
//! `sleep 3600` N times and measure from the kill to the `Started` event of
//! the new pid. The ladder is permissive (`stable_after = 0`, so every crash
//! is a first, immediate restart), so this measures Warden's own path: exit
//! noticed by the waiter, audit row queued, ladder step, spawn.
//!
//! `cargo bench --bench managed` (optionally `-- <kills>`).
//! Results go to docs/benchmarks.md by hand; see that file for the machine.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

// The binary's allocator, so the bench measures what runs in production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use ractor::{Actor, ActorProcessingErr, ActorRef, OutputPort};
use tokio::sync::mpsc;
use tokio::time::Instant;
use warden::audit::{AuditLog, AuditWriter, AuditWriterArgs};
use warden::managed::{ManagedArgs, ManagedEvent, ManagedProcess, ManagedStatus};
use warden::settings::{ComponentSettings, RestartSettings};

struct Collector;

impl Actor for Collector {
    type Msg = ManagedEvent;
    type State = mpsc::UnboundedSender<(Instant, ManagedEvent)>;
    type Arguments = mpsc::UnboundedSender<(Instant, ManagedEvent)>;

    async fn pre_start(
        &self,
        _: ActorRef<ManagedEvent>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle(
        &self,
        _: ActorRef<ManagedEvent>,
        event: ManagedEvent,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let _ = tx.send((Instant::now(), event));
        Ok(())
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn next_start(rx: &mut mpsc::UnboundedReceiver<(Instant, ManagedEvent)>) -> (Instant, u32) {
    loop {
        let (at, event) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("restarted within 10 s")
            .expect("events open");
        if let ManagedEvent::Started { pid, .. } = event {
            return (at, pid);
        }
    }
}

#[tokio::main]
async fn main() {
    let kills: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let (audit, queue) = AuditLog::new();
    Actor::spawn(
        None,
        AuditWriter,
        AuditWriterArgs::new(dir.path().join("audit"), queue),
    )
    .await
    .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (collector, _) = Actor::spawn(None, Collector, tx).await.unwrap();
    let port = Arc::new(OutputPort::default());
    port.subscribe(collector, Some);
    let settings = ComponentSettings {
        name: "bench".into(),
        run: vec!["sleep".into(), "3600".into()],
        restart: RestartSettings {
            max_restarts: 100_000,
            period: Duration::from_secs(1),
            backoff_min: Duration::from_millis(1),
            backoff_max: Duration::from_millis(1),
            backoff_jitter: 0.0,
            stable_after: Duration::ZERO,
        },
        ..ComponentSettings::default()
    };
    let args = ManagedArgs {
        component: "bench".into(),
        log_dir: dir.path().join("logs/bench"),
        records_dir: dir.path().join("managed"),
        settings,
        audit: audit.clone(),
        events: port,
        status: ManagedStatus::default(),
        hold: Default::default(),
    };
    let (actor, handle) = Actor::spawn(None, ManagedProcess, args).await.unwrap();
    let (_, mut pid) = next_start(&mut rx).await;
    let mut latencies = Vec::with_capacity(kills);
    let began = Instant::now();
    for _ in 0..kills {
        let killed_at = Instant::now();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        let (started_at, next) = next_start(&mut rx).await;
        assert_ne!(next, pid);
        latencies.push(started_at.duration_since(killed_at).as_secs_f64() * 1000.0);
        pid = next;
    }
    let total = began.elapsed();
    actor.stop(None);
    handle.await.unwrap();
    audit.flush().await.unwrap();
    latencies.sort_by(f64::total_cmp);
    println!("| kills | median (ms) | p99 (ms) | max (ms) | restarts/s |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {kills} | {:.2} | {:.2} | {:.2} | {:.0} |",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
        kills as f64 / total.as_secs_f64()
    );
}
