//! One issue is one trace: a real OTLP receiver (in-process gRPC collector)
//! gets the spans of one issue's story from four actors (debouncer, wake
//! consumer, escalation coordinator, incident commander), linked by parent
//! ids, and the loopback notifier and tier receive its `traceparent`.
//! One test per binary: it installs the process-wide subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};
use support::receiver::Receiver;
use support::targets::Switchable;
use warden::audit::AuditReader;
use warden::settings::{ConfigSource, TelemetrySettings, load_with_env};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_issue_is_one_trace_across_actors_and_http() {
    let mut collector = FakeCollectorServer::start().await.unwrap();
    let telemetry = TelemetrySettings {
        otlp_endpoint: collector.endpoint(),
        log_level: "warn".into(),
        ..TelemetrySettings::default()
    };
    let guard = warden::telemetry::init(&telemetry).unwrap();
    // The collector holds few spans at a time; keep draining it.
    let spans: Arc<Mutex<Vec<ExportedSpan>>> = Arc::default();
    let sink = spans.clone();
    let drain = tokio::spawn(async move {
        loop {
            let batch = collector
                .exported_spans(1, Duration::from_millis(200))
                .await;
            sink.lock().unwrap().extend(batch);
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let target = Switchable::start(503).await;
    let (ops, tier) = (Receiver::start().await, Receiver::start().await);
    tier.reply(serde_json::json!({ "status": "rejected" }));
    let toml = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\n\n[debounce]\nfailure_threshold = 2\n\n\
         [[probes]]\nname = \"api\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"100ms\"\ntimeout = \"80ms\"\n\n\
         [[notifiers]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{}\"\n\n\
         [[components]]\nname = \"api\"\nprobes = [\"api\"]\n[components.fix]\nverify_timeout = \"200ms\"\n\
         [[components.tiers]]\nname = \"agent\"\nkind = \"webhook\"\nurl = \"{}\"\nenabled = true\n\
         [[components.tiers]]\nname = \"final\"\nkind = \"webhook\"\nurl = \"{}\"\nenabled = true\n",
        dir.path().join("var").display(),
        target.url,
        ops.url,
        tier.url,
        tier.url
    );
    let settings = load_with_env(
        &ConfigSource::Text {
            name: "test".into(),
            toml,
        },
        Some(HashMap::new()),
    )
    .unwrap();
    let warden = warden::app::start(settings).await.unwrap();
    assert!(
        support::eventually(WAIT, || {
            let done = !ops.received_wake().is_empty() && !tier.received().is_empty();
            async move { done }
        })
        .await
    );
    warden.shutdown().await.unwrap();
    guard.shutdown().await; // flushes the batch exporter
    assert!(
        support::eventually(WAIT, || {
            let names: Vec<String> = spans
                .lock()
                .unwrap()
                .iter()
                .map(|s| s.name.clone())
                .collect();
            let all = [
                "issue",
                "wake.event",
                "notify.send",
                "escalation.cycle",
                "incident.issue",
                "supervision",
            ]
            .iter()
            .all(|n| names.iter().any(|m| m == n));
            async move { all }
        })
        .await,
        "spans: {:?}",
        spans
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
    );
    drain.abort();
    let spans = spans.lock().unwrap().clone();

    // The wake row names its trace; that trace's root is the issue span.
    let reader = AuditReader::open(&dir.path().join("var/audit")).unwrap();
    let wake = reader
        .rows_from(1, Some("probe.wake_requested"))
        .next()
        .unwrap()
        .unwrap();
    let trace = wake
        .trace_id
        .clone()
        .expect("the wake row carries its trace id");
    let in_trace = |name: &str| -> Vec<&ExportedSpan> {
        spans
            .iter()
            .filter(|s| s.name == name && s.trace_id == trace)
            .collect()
    };
    let root = in_trace("issue");
    assert_eq!(root.len(), 1, "{spans:#?}");
    let root = root[0];
    assert!(root.parent_span_id.is_empty(), "the issue span is a root");
    let wake_span = in_trace("wake.event")[0];
    assert_eq!(
        wake_span.parent_span_id, root.span_id,
        "wake consumer continues from the row"
    );
    let notify = in_trace("notify.send")[0];
    assert_eq!(notify.parent_span_id, wake_span.span_id);
    assert_eq!(
        in_trace("escalation.cycle")[0].parent_span_id,
        root.span_id,
        "coordinator"
    );
    assert_eq!(
        in_trace("incident.issue")[0].parent_span_id,
        root.span_id,
        "incident commander"
    );
    assert!(
        in_trace("audit.append")
            .iter()
            .any(|s| s.parent_span_id == root.span_id)
    );

    // Outbound HTTP carries the same trace.
    let header =
        |r: &support::receiver::Received| r.headers.get("traceparent").cloned().unwrap_or_default();
    let notice = &ops.received_wake()[0];
    assert!(
        header(notice).contains(&trace),
        "notifier traceparent {:?} not in trace {trace}",
        header(notice)
    );
    assert!(
        tier.received().iter().any(|r| header(r).contains(&trace)),
        "tier calls lack the trace"
    );
}
