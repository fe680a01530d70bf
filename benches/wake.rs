//! Wake-to-notice latency and sustained notice rate, in-process: N probes
//! fail at once against a loopback target, each fires one issue, and a
//! loopback webhook receives the notices. Latency is measured from the wake
//! row's timestamp (the moment it was written) to the notice's arrival.
//! Probes check every 200 ms, so all issues fire within about 200 ms and the
//! notice rate measures the consumer, not the rate issues arrive at.
//!
//! `cargo bench --bench wake` (optionally `-- <events> <max_concurrency>...`).
//! With `WARDEN_BENCH_OTLP=1` every span is exported over OTLP/gRPC to an
//! in-process collector, to measure what tracing costs the pipeline.
//! Results go to docs/benchmarks.md by hand; see that file for the machine.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use warden::audit::AuditReader;
use warden::settings::{ConfigSource, load_with_env};

type Arrivals = Arc<Mutex<HashMap<String, SystemTime>>>;

async fn receiver() -> (String, Arrivals) {
    let arrivals: Arrivals = Arc::default();
    let seen = arrivals.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                // Wake notices only (`warden-<seq>`); incident updates share the webhook.
                if let Some(key) = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .filter(|k| {
                        k.strip_prefix("warden-")
                            .is_some_and(|seq| seq.bytes().all(|b| b.is_ascii_digit()))
                    })
                {
                    seen.lock()
                        .unwrap()
                        .entry(key.to_owned())
                        .or_insert_with(SystemTime::now);
                }
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, arrivals)
}

async fn failing_target() -> String {
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn run(events: usize, concurrency: usize, target: &str) -> String {
    let (hook, arrivals) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let mut toml = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\n[audit]\nfsync = \"batch\"\n[debounce]\nfailure_threshold = 1\n[wake]\nmax_concurrency = {concurrency}\n\n[[notifiers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{hook}\"\n\n",
        dir.path().join("var").display()
    );
    for i in 0..events {
        let _ = write!(
            toml,
            "[[probes]]\nname = \"p{i}\"\nkind = \"http\"\nurl = \"{target}\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\n"
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
    let warden = warden::app::start(settings).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while arrivals.lock().unwrap().len() < events && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    warden.shutdown().await.unwrap();

    let reader = AuditReader::open(&dir.path().join("var").join("audit")).unwrap();
    let written: HashMap<String, SystemTime> = reader
        .rows_from(1, Some("probe.wake_requested"))
        .filter_map(Result::ok)
        .filter_map(|row| {
            let at = humantime::parse_rfc3339(&row.ts).ok()?;
            Some((format!("warden-{}", row.seq), at))
        })
        .collect();
    let arrivals = arrivals.lock().unwrap().clone();
    let mut latencies: Vec<f64> = written
        .iter()
        .filter_map(|(key, at)| {
            let arrived = arrivals.get(key)?;
            Some(
                arrived
                    .duration_since(*at)
                    .unwrap_or_default()
                    .as_secs_f64()
                    * 1000.0,
            )
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let first = written.values().min().copied();
    let last = arrivals.values().max().copied();
    let span = match (first, last) {
        (Some(first), Some(last)) => last.duration_since(first).unwrap_or_default().as_secs_f64(),
        _ => 0.0,
    };
    format!(
        "| {events} | {concurrency} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} |",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0),
        latencies.len() as f64 / span.max(0.001),
    )
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let events = args.first().copied().unwrap_or(1000);
    let concurrency: Vec<usize> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        vec![4, 16]
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let otlp = std::env::var("WARDEN_BENCH_OTLP").is_ok_and(|v| v == "1");
        let mut guard = None;
        let mut drain = None;
        if otlp {
            let mut collector = fake_opentelemetry_collector::FakeCollectorServer::start()
                .await
                .unwrap();
            let settings = warden::settings::TelemetrySettings {
                otlp_endpoint: collector.endpoint(),
                log_level: "error".into(),
                ..Default::default()
            };
            guard = Some(warden::telemetry::init(&settings).unwrap());
            // The collector's buffer is small and blocks the exporter when full.
            drain = Some(tokio::spawn(async move {
                loop {
                    let _ = collector
                        .exported_spans(64, Duration::from_millis(50))
                        .await;
                }
            }));
        }
        println!("OTLP export: {}", if otlp { "on" } else { "off" });
        let target = failing_target().await;
        println!(
            "| events | max_concurrency | delivered | p50 wake→notice | p99 | max | notices/s |"
        );
        println!("|---|---|---|---|---|---|---|");
        for c in concurrency {
            println!("{}", run(events, c, &target).await);
        }
        if let Some(guard) = guard {
            guard.shutdown().await;
        }
        if let Some(drain) = drain {
            drain.abort();
        }
    });
}
