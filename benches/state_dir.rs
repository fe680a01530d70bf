//! State-dir growth under a flapping fleet: how many MB a minute a running
//! Warden adds to its state directory.
//!
//! `cargo bench --bench state_dir -- <warden binary> [minutes] [probes]`
//! (defaults: 3 minutes, 300 probes). The bench serves N loopback targets
//! that flap (each fails for 8 s, then answers for 8 s, phases staggered),
//! writes a config with N critical HTTP probes at a 200 ms interval, runs
//! the given binary (`target/release/warden`, or an older build to compare)
//! on it as a child process, and samples the state dir's size by area every
//! 15 s. Growth is measured from the end of a 30 s warm-up. Results go to
//! docs/benchmarks.md by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

const FLAP: u64 = 8;

fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| size_of(&e.path())).sum())
        .unwrap_or(0)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

#[derive(Clone, Copy, Default)]
struct Sample {
    audit: u64,
    incidents: u64,
    config: u64,
    total: u64,
}

fn sample(state: &Path) -> Sample {
    Sample {
        audit: size_of(&state.join("audit")),
        incidents: size_of(&state.join("incidents")),
        config: size_of(&state.join("config")),
        total: size_of(state),
    }
}

fn config(state: &Path, api: &str, base: &str, probes: usize) -> String {
    let mut text = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"{api}\"\n\n[telemetry]\nlog_level = \"warn\"\n\n",
        state.display()
    );
    for i in 0..probes {
        text.push_str(&format!(
            "[[probes]]\nname = \"svc-{i}\"\nkind = \"http\"\nurl = \"{base}/health/{i}\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nseverity = \"critical\"\n\n"
        ));
    }
    text
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(binary) = args.first().map(PathBuf::from) else {
        eprintln!("usage: cargo bench --bench state_dir -- <warden binary> [minutes] [probes]");
        std::process::exit(2);
    };
    let minutes: f64 = args.get(1).and_then(|m| m.parse().ok()).unwrap_or(3.0);
    let probes: usize = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(300);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(binary, minutes, probes));
}

async fn run(binary: PathBuf, minutes: f64, probes: usize) {
    let started = Instant::now();
    let app = axum::Router::new().route(
        "/health/{i}",
        axum::routing::get(
            move |axum::extract::Path(i): axum::extract::Path<u64>| async move {
                let phase = (started.elapsed().as_secs() + i) / FLAP;
                if phase % 2 == 1 {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "failing")
                } else {
                    (axum::http::StatusCode::OK, "ok")
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("var");
    let api = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let path = dir.path().join("warden.toml");
    std::fs::write(&path, config(&state, &api, &base, probes)).unwrap();
    let mut child = tokio::process::Command::new(&binary)
        .arg("--config")
        .arg(&path)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .get(format!("http://{api}/api/health"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "warden did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("binary: {}", binary.display());
    println!(
        "{probes} probes at 200 ms, targets flapping every {FLAP} s, {minutes} min measured after a 30 s warm-up"
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    let first = sample(&state);
    let measured = Instant::now();
    let end = measured + Duration::from_secs_f64(minutes * 60.0);
    println!("| t (s) | audit MB | incidents MB | config MB | total MB |");
    let mut last = first;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(15).min(end - Instant::now())).await;
        last = sample(&state);
        println!(
            "| {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            measured.elapsed().as_secs_f64(),
            mb(last.audit),
            mb(last.incidents),
            mb(last.config),
            mb(last.total)
        );
    }
    let span = measured.elapsed().as_secs_f64() / 60.0;
    let incidents = std::fs::read_dir(state.join("incidents")).map_or(0, |d| d.count());
    let rate = |a: u64, b: u64| mb(b.saturating_sub(a)) / span;
    println!(
        "growth: total {:.2} MB/min (audit {:.2}, incidents {:.2}, config {:.3}); {incidents} incident folders",
        rate(first.total, last.total),
        rate(first.audit, last.audit),
        rate(first.incidents, last.incidents),
        rate(first.config, last.config),
    );
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
}
