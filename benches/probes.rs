//! Probe throughput and memory: N HTTP probes against one local server.
//!
//! `cargo bench --bench probes` (optionally `-- 1000 10000` and a duration in
//! seconds as the last argument). Reports checks per second served by the
//! target, the probes' achieved rate against their configured rate, and the
//! resident memory per probe (RSS growth over an idle Warden, divided by N).
//! Results go to docs/benchmarks.md by hand; see that file for the machine.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use warden::settings::{ConfigSource, load_with_env};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds this process has used (user + system), from /proc/self/stat.
/// Clock ticks are 100 per second on Linux x86_64 and aarch64.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ')'.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

async fn target() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                "{\"status\":\"ok\"}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

async fn run(n: usize, seconds: u64, url: &str, hits: &AtomicUsize) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut toml = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\n[audit]\nfsync = \"batch\"\n",
        dir.path().join("var").display()
    );
    for i in 0..n {
        let _ = write!(
            toml,
            "[[probes]]\nname = \"p{i}\"\nkind = \"http\"\nurl = \"{url}\"\ninterval = \"1s\"\ntimeout = \"900ms\"\nunhealthy_if = [\"status != 200\", \"body.status != \\\"ok\\\"\"]\ndegraded_if = [\"latency > 300ms\"]\n"
        );
    }
    let settings = load_with_env(
        &ConfigSource::Text {
            name: "bench".into(),
            toml,
        },
        Some(HashMap::new()),
    )
    .unwrap();
    let before = rss_kib();
    let warden = warden::app::start(settings).await.unwrap();
    // Warm-up: one full interval so every probe has started and pools are filled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start_hits = hits.load(Ordering::Relaxed);
    let cpu_before = cpu_seconds();
    let started = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let served = hits.load(Ordering::Relaxed) - start_hits;
    let cpu = cpu_seconds() - cpu_before;
    let after = rss_kib();
    let unhealthy = warden
        .latest
        .iter()
        .filter(|o| o.status != warden::messages::Health::Healthy)
        .count();
    warden.shutdown().await.unwrap();
    let rate = served as f64 / elapsed;
    format!(
        "| {n} | {seconds} s | {rate:.0} | {:.0}% | {:.2} | {:.0} µs | {:.1} KiB | {unhealthy} |",
        100.0 * rate / n as f64,
        cpu / elapsed,
        1e6 * cpu / served.max(1) as f64,
        after.saturating_sub(before) as f64 / n as f64
    )
}

fn main() {
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = if sizes.len() > 1 && sizes.last().is_some_and(|s| *s < 1000) {
        sizes.pop().map(|s| s as u64).unwrap_or(10)
    } else {
        10
    };
    if sizes.is_empty() {
        sizes = vec![1_000, 10_000];
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (url, hits) = target().await;
        println!("| probes | measured | checks/s | of configured rate | cores used | CPU per check | RSS per probe | not healthy at end |");
        println!("|---|---|---|---|---|---|---|---|");
        for n in sizes {
            println!("{}", run(n, seconds, &url, &hits).await);
        }
    });
}
