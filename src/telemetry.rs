//! Telemetry: how Warden reports on itself. Structured logging through
//! `tracing` (human or JSON lines) and, when `telemetry.otlp_endpoint` is set,
//! trace export over OTLP through the same subscriber.
//!
//! One issue is one trace: the debouncer opens a root span when an issue's
//! first row is written, its W3C `traceparent` is stored in every row of the
//! issue's story, and whoever consumes such a row (wake consumer, escalation,
//! incidents) continues the trace from it, also after a restart. Outbound HTTP
//! calls carry `traceparent` (see [`trace`]).

pub mod trace;

use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::settings::{LogFormat, OtlpProtocol, TelemetrySettings};

/// Spans the exporter failed to deliver, process-wide (there is one exporter
/// per process). `/metrics` reports it as `warden_otlp_spans_dropped_total`.
static SPANS_DROPPED: AtomicU64 = AtomicU64::new(0);

/// Spans the OTLP exporter could not deliver since the process started.
pub fn spans_dropped() -> u64 {
    SPANS_DROPPED.load(Ordering::Relaxed)
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The filter from `telemetry.log_level` or `RUST_LOG` does not parse.
    #[error("invalid log filter {filter:?}: {reason}")]
    Filter {
        /// The filter text.
        filter: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A global subscriber was already installed (tests call this twice).
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
    /// The OTLP exporter could not be built (bad endpoint).
    #[error("cannot set up OTLP export to {endpoint}: {reason}")]
    Exporter {
        /// `telemetry.otlp_endpoint`.
        endpoint: String,
        /// Why.
        reason: String,
    },
}

/// Keeps the trace pipeline alive; [`TelemetryGuard::shutdown`] flushes it.
#[must_use = "dropping the guard without shutdown loses the last spans"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes and stops the exporter. `shutdown` blocks its thread (and the
    /// gRPC channel needs a runtime thread), so it runs on the blocking pool.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            match tokio::task::spawn_blocking(move || provider.shutdown()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, "Trace export did not shut down cleanly.")
                }
                Err(error) => tracing::warn!(error = %error, "Trace export shutdown task failed."),
            }
        }
    }
}

/// Wraps the OTLP exporter to count the spans of failed exports.
#[derive(Debug)]
struct CountingExporter(SpanExporter);

impl opentelemetry_sdk::trace::SpanExporter for CountingExporter {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        let count = batch.len() as u64;
        let result = self.0.export(batch).await;
        if result.is_err() {
            SPANS_DROPPED.fetch_add(count, Ordering::Relaxed);
        }
        result
    }

    fn shutdown_with_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// Builds the tracer provider for `settings`, or `None` when export is off.
/// Must run inside the tokio runtime (the gRPC exporter needs a reactor).
pub fn tracer_provider(
    settings: &TelemetrySettings,
) -> Result<Option<SdkTracerProvider>, TelemetryError> {
    if settings.otlp_endpoint.is_empty() {
        return Ok(None);
    }
    let exporter_error = |reason: String| TelemetryError::Exporter {
        endpoint: settings.otlp_endpoint.clone(),
        reason,
    };
    let exporter = match settings.otlp_protocol {
        OtlpProtocol::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(settings.otlp_endpoint.clone())
            .build(),
        OtlpProtocol::Http => SpanExporter::builder()
            .with_http()
            .with_endpoint(settings.otlp_endpoint.clone())
            .build(),
    }
    .map_err(|error| exporter_error(error.to_string()))?;
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let mut attributes = vec![
        KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        KeyValue::new("host.name", host),
        KeyValue::new(
            "service.instance.id",
            format!(
                "{}-{}",
                std::process::id(),
                jiff::Timestamp::now().as_second()
            ),
        ),
    ];
    attributes.extend(
        settings
            .resource_attributes
            .iter()
            .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
    );
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attributes(attributes)
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(CountingExporter(exporter))
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(resource)
        .build();
    Ok(Some(provider))
}

/// The filter for the OTel layer: Warden's spans, never the exporter's own
/// transport (its spans would feed back into the export).
fn otel_filter() -> EnvFilter {
    EnvFilter::new(
        "info,h2=off,hyper=off,hyper_util=off,tonic=off,tower=off,reqwest=off,opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off",
    )
}

/// Installs the global subscriber (and the trace exporter when configured).
/// `RUST_LOG`, when set, wins over `telemetry.log_level` so an operator can
/// raise verbosity for one run. Call inside the tokio runtime.
pub fn init(settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    let filter_text = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| settings.log_level.clone());
    let filter = EnvFilter::try_new(&filter_text).map_err(|error| TelemetryError::Filter {
        filter: filter_text.clone(),
        reason: error.to_string(),
    })?;
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let provider = tracer_provider(settings)?;
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("warden"))
            .with_filter(otel_filter())
    });
    let fmt = match settings.log_format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_target(false)
            // Colour codes only help a person at a terminal; in a file or
            // journal they are noise.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_filter(filter)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(otel)
        .with(fmt)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard { provider })
}
