//! Probe throughput and memory: N HTTP probes against one local server.
//!
//! `cargo bench --bench probes` (optionally `-- 1000 10000` and a duration in
//! seconds as the last argument). Reports checks per second served by the
//! target, the probes' achieved rate against their configured rate, the CPU
//! Warden used per check, and the resident memory per probe (RSS growth over
//! an idle Warden, divided by N).
//!
//! The target server runs in a child process (this binary started again with
//! `--target-server`), so Warden's CPU and memory are measured without it;
//! its own CPU is reported beside Warden's, since both share the host's cores.
//! Results go to docs/benchmarks.md by hand; see that file for the machine.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

// The binary's allocator, so the bench measures what runs in production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    stat_cpu_seconds("/proc/self/stat")
}

/// CPU seconds process `pid` has used (user + system).
fn cpu_seconds_of(pid: u32) -> f64 {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// User + system CPU seconds from a `/proc/<pid>/stat` file.
fn stat_cpu_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
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

/// The child process's side: serve `/health` and `/hits` (checks served so
/// far) on loopback, print the base URL, run until stdin closes.
fn serve_target() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new()
            .route(
                "/health",
                axum::routing::get(move || {
                    let counter = counter.clone();
                    async move {
                        counter.fetch_add(1, Ordering::Relaxed);
                        "{\"status\":\"ok\"}"
                    }
                }),
            )
            .route(
                "/hits",
                axum::routing::get(move || {
                    let hits = hits.clone();
                    async move { hits.load(Ordering::Relaxed).to_string() }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        // The parent holds our stdin; its end (or death) ends the server.
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        })
        .await
        .unwrap();
    });
}

/// The target server in a child process: (its base URL, the child).
fn start_target() -> (String, std::process::Child) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--target-server")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (line.trim().to_owned(), child)
}

async fn hits(client: &reqwest::Client, base: &str) -> usize {
    client
        .get(format!("{base}/hits"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap()
}

async fn run(n: usize, seconds: u64, base: &str, target_pid: u32) -> String {
    let url = format!("{base}/health");
    let client = reqwest::Client::new();
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
    let start_hits = hits(&client, base).await;
    let cpu_before = cpu_seconds();
    let target_before = cpu_seconds_of(target_pid);
    let started = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let served = hits(&client, base).await - start_hits;
    let cpu = cpu_seconds() - cpu_before;
    let target_cpu = cpu_seconds_of(target_pid) - target_before;
    let after = rss_kib();
    let unhealthy = warden
        .latest
        .iter()
        .filter(|o| o.status != warden::messages::Health::Healthy)
        .count();
    warden.shutdown().await.unwrap();
    let rate = served as f64 / elapsed;
    format!(
        "| {n} | {seconds} s | {rate:.0} | {:.0}% | {:.2} | {:.0} µs | {:.0} µs | {:.1} KiB | {unhealthy} |",
        100.0 * rate / n as f64,
        cpu / elapsed,
        1e6 * cpu / served.max(1) as f64,
        1e6 * target_cpu / served.max(1) as f64,
        after.saturating_sub(before) as f64 / n as f64
    )
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--target-server") {
        serve_target();
        return;
    }
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
    let (base, mut target) = start_target();
    runtime.block_on(async {
        println!("| probes | measured | checks/s | of configured rate | Warden cores | Warden CPU per check | target CPU per check | RSS per probe | not healthy at end |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for n in sizes {
            println!("{}", run(n, seconds, &base, target.id()).await);
        }
    });
    drop(target.stdin.take());
    let _ = target.wait();
}
