//! Prometheus metrics (`GET /metrics`, OpenMetrics text). One [`Metrics`]
//! handle per Warden instance, made in `app.rs` and passed to the actors that
//! count things, so two instances in one process never mix their numbers.
//!
//! Label values are bounded by configuration (probe, component and notifier
//! names, child ids) or by fixed vocabularies (status, outcome, kind); no
//! label ever carries a user-supplied string from a request or a target.
//! Gauges of live state (audit queue depth, wake backlog, open issues) are set
//! at scrape time from the shared handles instead of being kept in step.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `probe`, `status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeStatus {
    /// Probe name.
    pub probe: String,
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: String,
}

/// `probe`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabel {
    /// Probe name.
    pub probe: String,
}

/// `event`, `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssueLabels {
    /// `fired`, `reminder`, `escalated`, `resumed`, `flapping`, `suppressed`, `resolved`, `flapping_settled`.
    pub event: String,
    /// Suppression reason (`window`, `dependency`, `maintenance`, `flapping`) or empty.
    pub reason: String,
}

/// `engine`, `outcome`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InvestigationLabels {
    /// `none`, `webhook`, `openai`.
    pub engine: String,
    /// `ok` or `fallback`.
    pub outcome: String,
}

/// `notifier`, `outcome`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    /// Notifier name.
    pub notifier: String,
    /// `sent` or `failed`.
    pub outcome: String,
}

/// `component`, `rung`, `outcome`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EscalationLabels {
    /// Component name.
    pub component: String,
    /// `fix`, a tier name, or `rollback`.
    pub rung: String,
    /// e.g. `succeeded`, `failed`, `skipped`, `fixed`, `rejected`.
    pub outcome: String,
}

/// `severity`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabel {
    /// `SEV0`..`SEV4`.
    pub severity: String,
}

/// `actor`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActorLabel {
    /// The child id in its supervisor (`debouncer`, `probe:api`, ...).
    pub actor: String,
}

/// `area`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AreaLabel {
    /// `audit`, `incidents`, `snapshots`, `config` or `total`.
    pub area: String,
}

/// `node`: the cluster node reporting.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabel {
    /// `cluster.node_id`.
    pub node: String,
}

/// Every metric Warden exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Probe checks by probe and status.
    pub probe_checks: Family<ProbeStatus, Counter>,
    /// Probe check latency by probe, seconds.
    pub probe_latency: Family<ProbeLabel, Histogram>,
    /// Issue rows by event and suppression reason.
    pub issues: Family<IssueLabels, Counter>,
    /// Open issues (set at scrape).
    pub issues_open: Gauge,
    /// Investigations by engine and outcome.
    pub investigations: Family<InvestigationLabels, Counter>,
    /// Investigation spend in US dollars.
    pub investigation_cost: Counter<f64, AtomicU64>,
    /// Notices by notifier and outcome.
    pub notifications: Family<NotificationLabels, Counter>,
    /// Escalation steps by component, rung and outcome.
    pub escalations: Family<EscalationLabels, Counter>,
    /// Open incidents by severity (set at scrape).
    pub incidents_open: Family<SeverityLabel, Gauge>,
    /// Actor restarts by child id.
    pub restarts: Family<ActorLabel, Counter>,
    /// Supervisor meltdowns by supervisor.
    pub meltdowns: Family<ActorLabel, Counter>,
    /// Rows durably appended to the audit log (set at scrape from its health).
    pub audit_appends: Gauge,
    /// fsync calls of the audit log (set at scrape).
    pub audit_fsyncs: Gauge,
    /// Append requests waiting for the audit writer (set at scrape).
    pub audit_queue: Gauge,
    /// Wake rows read and not finished (set at scrape).
    pub wake_backlog: Gauge,
    /// Spans the OTLP exporter dropped (a process-wide count, mirrored at scrape).
    pub otlp_spans_dropped: Counter,
    /// Bytes the state dir uses, by area (set by the storage task).
    pub state_dir_bytes: Family<AreaLabel, Gauge>,
    /// Cluster mode: the active-node lease's revision, by node (set at scrape).
    pub cluster_lease_revision: Family<NodeLabel, Gauge>,
    /// Cluster mode: stream rows not yet in the node's copy, by node (set at scrape).
    pub cluster_log_lag: Family<NodeLabel, Gauge>,
    /// Cluster mode: probes each live node checks, as this node computes the split (set at scrape).
    pub cluster_probes_owned: Family<NodeLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~32 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    /// A fresh registry with every family registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("warden");
        let metrics = Self {
            registry: Arc::new(Registry::default()),
            probe_checks: Family::default(),
            probe_latency: Family::new_with_constructor(latency_histogram),
            issues: Family::default(),
            issues_open: Gauge::default(),
            investigations: Family::default(),
            investigation_cost: Counter::default(),
            notifications: Family::default(),
            escalations: Family::default(),
            incidents_open: Family::default(),
            restarts: Family::default(),
            meltdowns: Family::default(),
            audit_appends: Gauge::default(),
            audit_fsyncs: Gauge::default(),
            audit_queue: Gauge::default(),
            wake_backlog: Gauge::default(),
            otlp_spans_dropped: Counter::default(),
            state_dir_bytes: Family::default(),
            cluster_lease_revision: Family::default(),
            cluster_log_lag: Family::default(),
            cluster_probes_owned: Family::default(),
        };
        registry.register(
            "cluster_probes_owned",
            "Cluster mode: probes each live node checks, as this node computes the split",
            metrics.cluster_probes_owned.clone(),
        );
        registry.register(
            "cluster_lease_revision",
            "Cluster mode: revision of the active-node lease held by this node",
            metrics.cluster_lease_revision.clone(),
        );
        registry.register(
            "cluster_log_lag_rows",
            "Cluster mode: rows of the stream not yet in this node's copy of the log",
            metrics.cluster_log_lag.clone(),
        );
        registry.register(
            "probe_checks",
            "Probe checks by probe and status",
            metrics.probe_checks.clone(),
        );
        registry.register(
            "probe_latency_seconds",
            "Probe check latency",
            metrics.probe_latency.clone(),
        );
        registry.register(
            "issues",
            "Issue rows written, by event and suppression reason",
            metrics.issues.clone(),
        );
        registry.register("issues_open", "Open issues", metrics.issues_open.clone());
        registry.register(
            "investigations",
            "Investigations by engine and outcome",
            metrics.investigations.clone(),
        );
        registry.register(
            "investigation_cost_usd",
            "Investigation spend in US dollars",
            metrics.investigation_cost.clone(),
        );
        registry.register(
            "notifications",
            "Notices by notifier and outcome",
            metrics.notifications.clone(),
        );
        registry.register(
            "escalation_steps",
            "Escalation steps by component, rung and outcome",
            metrics.escalations.clone(),
        );
        registry.register(
            "incidents_open",
            "Open incidents by severity",
            metrics.incidents_open.clone(),
        );
        registry.register(
            "actor_restarts",
            "Actor restarts by child id",
            metrics.restarts.clone(),
        );
        registry.register(
            "supervisor_meltdowns",
            "Supervisor meltdowns",
            metrics.meltdowns.clone(),
        );
        registry.register(
            "audit_appended_rows",
            "Rows durably appended to the audit log",
            metrics.audit_appends.clone(),
        );
        registry.register(
            "audit_fsyncs",
            "fsync calls of the audit log",
            metrics.audit_fsyncs.clone(),
        );
        registry.register(
            "audit_queue_depth",
            "Append requests waiting for the audit writer",
            metrics.audit_queue.clone(),
        );
        registry.register(
            "wake_backlog",
            "Wake rows read and not finished",
            metrics.wake_backlog.clone(),
        );
        registry.register(
            "otlp_spans_dropped",
            "Spans the OTLP exporter dropped",
            metrics.otlp_spans_dropped.clone(),
        );
        registry.register(
            "state_dir_bytes",
            "Bytes the state dir uses, by area",
            metrics.state_dir_bytes.clone(),
        );
        Self {
            registry: Arc::new(registry),
            ..metrics
        }
    }

    /// The metrics in OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %error, "Could not encode the metrics.");
        }
        text
    }

    /// Counts one probe check.
    pub fn probe_checked(
        &self,
        probe: &str,
        status: crate::messages::Health,
        latency: std::time::Duration,
    ) {
        let status = status.as_str();
        self.probe_checks
            .get_or_create(&ProbeStatus {
                probe: probe.to_owned(),
                status: status.to_owned(),
            })
            .inc();
        self.probe_latency
            .get_or_create(&ProbeLabel {
                probe: probe.to_owned(),
            })
            .observe(latency.as_secs_f64());
    }

    /// Mirrors the exporter's process-wide dropped-span count into the counter.
    pub fn otlp_spans_dropped_set(&self, total: u64) {
        let seen = self.otlp_spans_dropped.get();
        if total > seen {
            self.otlp_spans_dropped.inc_by(total - seen);
        }
    }

    /// Counts one issue row.
    pub fn issue(&self, event: &str, reason: &str) {
        self.issues
            .get_or_create(&IssueLabels {
                event: event.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Sets the state dir's disk-use gauges.
    pub fn disk_use(&self, used: &crate::storage::DiskUse) {
        for (area, bytes) in [
            ("audit", used.audit),
            ("incidents", used.incidents),
            ("snapshots", used.snapshots),
            ("config", used.config),
            ("total", used.total),
        ] {
            self.state_dir_bytes
                .get_or_create(&AreaLabel {
                    area: area.to_owned(),
                })
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    /// Counts one escalation step.
    pub fn escalation(&self, component: &str, rung: &str, outcome: &str) {
        self.escalations
            .get_or_create(&EscalationLabels {
                component: component.to_owned(),
                rung: rung.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests;
