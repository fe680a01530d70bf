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
    let started = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let served = hits.load(Ordering::Relaxed) - start_hits;
    let after = rss_kib();
    let unhealthy = warden
        .latest
        .iter()
        .filter(|o| o.status != warden::messages::Health::Healthy)
        .count();
    warden.shutdown().await.unwrap();
    let rate = served as f64 / elapsed;
    format!(
        "| {n} | {seconds} s | {rate:.0} | {:.0}% | {:.1} KiB | {unhealthy} |",
        100.0 * rate / n as f64,
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
        println!("| probes | measured | checks/s | of configured rate | RSS per probe | not healthy at end |");
        println!("|---|---|---|---|---|---|");
        for n in sizes {
            println!("{}", run(n, seconds, &url, &hits).await);
        }
    });
}
