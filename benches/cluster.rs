//! Cluster mode's audit log: appends per second and per-append latency on
//! a JetStream stream of a local 3-server cluster, against the local log in
//! the same run. An append returns once the stream holds the row and this
//! node's copy has it (`fsync = batch`).
//!
//! `cargo bench --bench cluster` (optionally `-- <appenders> <rows per appender>`).
//! Needs nats-server (`$WARDEN_NATS_SERVER` or on `PATH`; see docs/cluster.md).
//! Results go to docs/benchmarks.md by hand.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    dead_code,
    unreachable_pub
)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/support/nats.rs"]
mod nats;

use std::sync::Arc;
use std::time::Duration;

use ractor::Actor;
use warden::audit::{AuditLog, AuditWriter, AuditWriterArgs, NewRow};
use warden::cluster::StreamLog;
use warden::settings::{ClusterKind, ClusterSettings};

async fn stream(cluster: &nats::Cluster, name: &str, replicas: usize) -> StreamLog {
    let settings = ClusterSettings {
        kind: ClusterKind::Nats,
        urls: cluster.urls(),
        node_id: Some("bench".to_owned()),
        stream: name.to_owned(),
        replicas,
        ..ClusterSettings::default()
    };
    for _ in 0..100 {
        if let Ok(log) = StreamLog::connect(&settings).await {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no stream {name} within 20 s");
}

/// (appends/s with `appenders` at once, p50 and p99 of one append at a time in ms).
async fn run(log: Option<StreamLog>, appenders: u64, per_appender: u64) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let (audit, queue) = AuditLog::new();
    let mut args = AuditWriterArgs::new(dir.path(), queue);
    args.stream = log.map(Arc::new);
    let (writer, handle) = Actor::spawn(None, AuditWriter, args).await.unwrap();
    let started = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|task| {
            let audit = audit.clone();
            tokio::spawn(async move {
                for i in 0..per_appender {
                    let row = NewRow::new("bench.row", serde_json::json!({ "task": task, "i": i }));
                    audit.append(row).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let rate = (appenders * per_appender) as f64 / started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for i in 0..500 {
        let row = NewRow::new("bench.one", serde_json::json!({ "i": i }));
        let started = tokio::time::Instant::now();
        audit.append(row).await.unwrap();
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    writer.stop(None);
    let _ = handle.await;
    (rate, at(0.5), at(0.99))
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let appenders = args.first().copied().unwrap_or(64);
    let per_appender = args.get(1).copied().unwrap_or(300);
    let Some(binary) = nats::binary() else {
        eprintln!("no nats-server: set WARDEN_NATS_SERVER or put it on PATH");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let cluster = nats::Cluster::start(&binary, dir.path(), 3).await;
        println!("| log | appenders | rows | appends/s | one at a time: p50 | p99 |");
        println!("|---|---|---|---|---|---|");
        let rows = appenders * per_appender;
        let cases = [
            ("local files", None),
            ("stream R1", Some(1)),
            ("stream R3", Some(3)),
        ];
        for (i, (name, replicas)) in cases.into_iter().enumerate() {
            let log = match replicas {
                Some(r) => Some(stream(&cluster, &format!("BENCH{i}"), r).await),
                None => None,
            };
            let (rate, p50, p99) = run(log, appenders, per_appender).await;
            println!("| {name} | {appenders} | {rows} | {rate:.0} | {p50:.2} ms | {p99:.2} ms |");
        }
    });
}
