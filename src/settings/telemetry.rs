//! `[telemetry]`: how Warden reports on itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// OTLP/gRPC (default port 4317).
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf (default port 4318, path `/v1/traces`).
    Http,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (default).
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Telemetry settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// `human` (default) or `json`.
    pub log_format: LogFormat,
    /// A tracing filter directive, e.g. `info` or `warden=debug,info`. `RUST_LOG`
    /// wins when set. Default `info`.
    pub log_level: String,
    /// Where to send traces, e.g. `http://127.0.0.1:4317` (gRPC) or
    /// `http://127.0.0.1:4318/v1/traces` (HTTP). Empty: no export. Default empty.
    pub otlp_endpoint: String,
    /// `grpc` (default) or `http`.
    pub otlp_protocol: OtlpProtocol,
    /// `service.name` of exported spans. Default `warden`.
    pub service_name: String,
    /// Fraction of issue traces sampled, 0.0–1.0. Default 1.0.
    pub sample_ratio: f64,
    /// Extra resource attributes on every span, e.g. `{ "deployment.environment" = "prod" }`.
    pub resource_attributes: BTreeMap<String, String>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Human,
            log_level: "info".to_owned(),
            otlp_endpoint: String::new(),
            otlp_protocol: OtlpProtocol::Grpc,
            service_name: "warden".to_owned(),
            sample_ratio: 1.0,
            resource_attributes: BTreeMap::new(),
        }
    }
}
