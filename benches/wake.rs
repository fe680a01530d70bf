//! Wake-to-notice latency and sustained notice rate, in-process, with a
//! loopback webhook receiving the notices. Three modes, one table row each:
//!
//! - `critical`: N probes fail at once against a loopback target, each fires
//!   one critical issue, which also opens an incident (evidence files, an
//!   incident notice to the same webhook): the full pipeline.
//! - `info`: the same with `severity = "info"`, which opens no incident, so
//!   the row measures the probe → debouncer → audit → consumer → webhook path.
//! - `injected`: no probes; N wake rows shaped like the debouncer's are
//!   appended to the audit log as fast as it takes them, so the rate is the
//!   consumer's capacity (probes check every 200 ms and start one by one, so
//!   in the other two modes the rate is mostly the rate issues arrive at).
//!
//! Latency runs to the notice's arrival at the receiver, from two starts:
//! the moment the wake row became durable (seen by a dedicated thread
//! watching the log's durable seq, so the bench's own runtime cannot delay
//! it), and the row's `ts` (taken just before its write and fsync, but
//! stored with millisecond resolution, so it reads 0–1 ms early: an upper
//! bound). The rate is wake notices delivered divided by the time from the
//! first wake row durable to the last arrival.
//!
//! `cargo bench --bench wake` (optionally `-- <events> <max_concurrency>...`;
//! `WARDEN_BENCH_MODES=info,injected` picks modes).
//! With `WARDEN_BENCH_NATS=nats://…,nats://…` the log is a fresh R3
//! JetStream stream on those servers (cluster mode, docs/cluster.md).
//! With `WARDEN_BENCH_OTLP=1` every span is exported over OTLP/gRPC to an
//! in-process collector, to measure what tracing costs the pipeline.
//! Results go to docs/benchmarks.md by hand; see that file for the machine.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

// The binary's allocator, so the bench measures what runs in production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// First failing answer per probe (`/health/<probe>`): the failing
/// observation's moment, as seen by the target.
type Failed = Arc<Mutex<HashMap<String, SystemTime>>>;

async fn failing_target() -> (String, Failed) {
    let failed: Failed = Arc::default();
    let seen = failed.clone();
    let app = axum::Router::new().route(
        "/health/{probe}",
        axum::routing::get(
            move |axum::extract::Path(probe): axum::extract::Path<String>| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .entry(probe)
                        .or_insert_with(SystemTime::now);
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down")
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, failed)
}

/// When each seq became durable: `(last durable seq, instant)` per change of
/// the log's durable watch, recorded by a thread of its own.
type Durable = Arc<Mutex<Vec<(u64, SystemTime)>>>;

fn watch_durable(mut rx: tokio::sync::watch::Receiver<u64>) -> Durable {
    let marks: Durable = Arc::default();
    let out = marks.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            while rx.changed().await.is_ok() {
                let seq = *rx.borrow_and_update();
                out.lock().unwrap().push((seq, SystemTime::now()));
            }
        });
    });
    marks
}

/// The instant `seq` was first seen durable.
fn durable_at(marks: &[(u64, SystemTime)], seq: u64) -> Option<SystemTime> {
    let i = marks.partition_point(|(last, _)| *last < seq);
    marks.get(i).map(|(_, at)| *at)
}

/// A wake row as the debouncer writes it for a fired issue (its typed event).
/// Info severity: the incident commander, which also reads the log, opens
/// nothing for it, so `injected` measures the wake consumer's capacity.
fn wake_row(i: usize) -> warden::audit::NewRow {
    let probe = format!("p{i}");
    let observation: warden::messages::Observation = serde_json::from_value(serde_json::json!({
        "probe": probe, "component": probe, "status": "unhealthy", "latency_ms": 0,
        "reasons": ["status 503 (expected 2xx)"], "stage": null,
        "details": {"status": 503, "latency_ms": 0}, "at": "2026-12-01T00:00:00.000Z"
    }))
    .expect("a valid observation");
    warden::events::row(&warden::events::Wake {
        probe: probe.clone(),
        component: probe.clone(),
        severity: warden::settings::Severity::Info,
        category: "service_unhealthy".to_owned(),
        kind: warden::messages::WakeKind::Fired,
        title: format!("{probe}: service unhealthy"),
        detail: "status 503 (expected 2xx)".to_owned(),
        observation: Some(observation),
        consecutive_failures: 1,
        stage: None,
        reminder: 0,
        envelope_status: "absent".to_owned(),
        envelope_fix: None,
        open_issues: Vec::new(),
        traceparent: None,
    })
    .session(format!(
        "probe:{probe}:service_unhealthy:{}",
        warden::audit::SEQ_PLACEHOLDER
    ))
    .component(probe)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn run(
    events: usize,
    concurrency: usize,
    (target, failed): &(String, Failed),
    mode: &str,
) -> String {
    failed.lock().unwrap().clear();
    let (hook, arrivals) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let mut toml = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\n[audit]\nfsync = \"batch\"\n[debounce]\nfailure_threshold = 1\n[wake]\nmax_concurrency = {concurrency}\n\n[[notifiers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{hook}\"\n\n",
        dir.path().join("var").display()
    );
    if let Ok(urls) = std::env::var("WARDEN_BENCH_NATS") {
        // Cluster mode: the log on a fresh R3 stream of the servers at `urls`.
        let urls: Vec<String> = urls.split(',').map(|u| format!("\"{u}\"")).collect();
        let stream = format!(
            "BENCH_{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let _ = write!(
            toml,
            "[cluster]\nkind = \"nats\"\nurls = [{}]\nnode_id = \"bench\"\nstream = \"{stream}\"\n\n",
            urls.join(", ")
        );
    }
    let probes = if mode == "injected" { 0 } else { events };
    for i in 0..probes {
        let _ = write!(
            toml,
            "[[probes]]\nname = \"p{i}\"\nkind = \"http\"\nurl = \"{target}/p{i}\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nseverity = \"{mode}\"\n"
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
    let durable = watch_durable(warden.audit.subscribe());
    if mode == "injected" {
        for i in 0..events {
            warden.audit.append_nowait(wake_row(i));
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while arrivals.lock().unwrap().len() < events && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    warden.shutdown().await.unwrap();

    let reader = AuditReader::open(&dir.path().join("var").join("audit")).unwrap();
    let marks = durable.lock().unwrap().clone();
    let failed = failed.lock().unwrap().clone();
    // Per wake row: (notice key, durable instant, failing answer if any).
    let written: Vec<(String, SystemTime, Option<SystemTime>)> = reader
        .rows_from(1, Some("probe.wake_requested"))
        .filter_map(Result::ok)
        .filter_map(|row| {
            let durable = durable_at(&marks, row.seq)?;
            let probe = row.details["probe"].as_str().unwrap_or_default();
            Some((
                format!("warden-{}", row.seq),
                durable,
                failed.get(probe).copied(),
            ))
        })
        .collect();
    let arrivals = arrivals.lock().unwrap().clone();
    let ms = |from: SystemTime, to: SystemTime| {
        to.duration_since(from).unwrap_or_default().as_secs_f64() * 1000.0
    };
    let mut latencies = Vec::new();
    let mut from_failure = Vec::new();
    for (key, durable, failed) in &written {
        if let Some(arrived) = arrivals.get(key) {
            latencies.push(ms(*durable, *arrived));
            if let Some(failed) = failed {
                from_failure.push(ms(*failed, *arrived));
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    from_failure.sort_by(f64::total_cmp);
    let cell = |sorted: &[f64], p: f64| {
        if sorted.is_empty() {
            "–".to_owned()
        } else {
            format!("{:.2} ms", percentile(sorted, p))
        }
    };
    let first = written.iter().map(|(_, durable, _)| *durable).min();
    let last = arrivals.values().max().copied();
    let span = match (first, last) {
        (Some(first), Some(last)) => last.duration_since(first).unwrap_or_default().as_secs_f64(),
        _ => 0.0,
    };
    format!(
        "| {mode} | {events} | {concurrency} | {} | {} | {} | {} | {} | {} | {:.0} |",
        latencies.len(),
        cell(&from_failure, 0.5),
        cell(&from_failure, 0.99),
        cell(&from_failure, 1.0),
        cell(&latencies, 0.5),
        cell(&latencies, 0.99),
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
        let modes = std::env::var("WARDEN_BENCH_MODES")
            .unwrap_or_else(|_| "critical,info,injected".into());
        println!(
            "| mode | events | max_concurrency | delivered | p50 failure→notice | p99 | max | p50 durable→notice | p99 durable→notice | notices/s |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for mode in modes.split(',') {
            for &c in &concurrency {
                println!("{}", run(events, c, &target, mode).await);
            }
        }
        if let Some(guard) = guard {
            guard.shutdown().await;
        }
        if let Some(drain) = drain {
            drain.abort();
        }
    });
}
