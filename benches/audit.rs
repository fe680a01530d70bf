//! Audit log throughput: appends per second with many concurrent appenders,
//! for each fsync policy. An append returns once its row is durable under
//! the policy, so this is the rate at which the debouncer and the other
//! writers can record decisions.
//!
//! `cargo bench --bench audit` (optionally `-- <appenders> <rows per appender>`).
//! Results go to docs/benchmarks.md by hand; see that file for the machine.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

// The binary's allocator, so the bench measures what runs in production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ractor::Actor;
use warden::audit::{AuditLog, AuditWriter, AuditWriterArgs, FsyncPolicy, NewRow};

async fn run(fsync: FsyncPolicy, appenders: u64, per_appender: u64) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (log, queue) = AuditLog::new();
    let mut args = AuditWriterArgs::new(dir.path(), queue);
    args.fsync = fsync;
    let (writer, handle) = Actor::spawn(None, AuditWriter, args).await.unwrap();
    let started = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|task| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..per_appender {
                    let row = NewRow::new("bench.row", serde_json::json!({ "task": task, "i": i }));
                    log.append(row).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rows = appenders * per_appender;
    let fsyncs = log.health().snapshot().fsyncs.max(1);
    writer.stop(None);
    let _ = handle.await;
    format!(
        "| `{fsync:?}` | {appenders} | {rows} | {:.0} | {fsyncs} | {:.1} |",
        rows as f64 / elapsed,
        rows as f64 / fsyncs as f64
    )
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let appenders = args.first().copied().unwrap_or(64);
    let per_appender = args.get(1).copied().unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("| fsync | appenders | rows | appends/s | fsyncs | rows per fsync |");
    println!("|---|---|---|---|---|---|");
    for (fsync, per) in [
        (FsyncPolicy::Batch, per_appender),
        (FsyncPolicy::Always, (per_appender / 20).max(1)),
        (FsyncPolicy::Never, per_appender),
    ] {
        println!("{}", runtime.block_on(run(fsync, appenders, per)));
    }
}
