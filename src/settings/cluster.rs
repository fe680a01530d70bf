//! `[cluster]`: whether the audit log is this node's own files (`local`, the
//! default) or a replicated JetStream stream shared by every node (`nats`),
//! and how to reach it. Its rules live here too, so the section is one file.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::validate::Problems;

/// Where the log lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterKind {
    /// One node: the audit log is JSON Lines files in the state dir.
    #[default]
    Local,
    /// The audit log is a JetStream stream; each node keeps a local copy.
    Nats,
}

/// Cluster settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// `local` (default) or `nats`.
    pub kind: ClusterKind,
    /// NATS server URLs (`nats://host:4222`, `tls://host:4222`); required with `kind = "nats"`.
    pub urls: Vec<String>,
    /// This node's name, unique in the cluster (`WARDEN__CLUSTER__NODE_ID`
    /// lets one config file serve every node). Required with `kind = "nats"`.
    pub node_id: Option<String>,
    /// A NATS `.creds` file (JWT and nkey seed), if the servers ask for one.
    pub credentials_file: Option<PathBuf>,
    /// The JetStream stream that holds the audit log. Default `WARDEN_AUDIT`.
    pub stream: String,
    /// Copies of the stream the servers keep (1 to 5, at most the number
    /// of servers). Default 3.
    pub replicas: usize,
    /// How long the stream remembers a message id, so that an append retried
    /// within it is stored once. Default `5m`.
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
    /// How long one publish waits for the stream's acknowledgement before it
    /// is retried (with the same id). Default `5s`.
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// How long the active node's lease lasts without a renewal (whole
    /// seconds, at least 3). It renews every third of it and stops acting
    /// after two thirds without one; a standby can start once it expired.
    /// Default `10s`.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How soon the probes of a node that died or left are checked by the
    /// others (and a joining node takes its share), at least 2s. A node's
    /// membership entry expires a second before this, and every node reads
    /// the list twice a second. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub rebalance_within: Duration,
    /// Rows a node holds in memory while the stream cannot take them (a
    /// lost quorum or connection), at least 1,024. A standby keeps checking
    /// its probes meanwhile; its rows reach the stream, in order, once the
    /// servers answer again. Beyond this, Warden's own rows are dropped and
    /// counted (`audit.rows_dropped`). Default 65,536.
    pub buffer_rows: usize,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            kind: ClusterKind::Local,
            urls: Vec::new(),
            node_id: None,
            credentials_file: None,
            stream: "WARDEN_AUDIT".to_owned(),
            replicas: 3,
            dedup_window: Duration::from_secs(300),
            publish_timeout: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(10),
            rebalance_within: Duration::from_secs(10),
            buffer_rows: crate::audit::QUEUE_CAPACITY,
        }
    }
}

impl ClusterSettings {
    /// The node id, once validation has passed (empty for `local`).
    pub fn node(&self) -> &str {
        self.node_id.as_deref().unwrap_or_default()
    }
}

/// Stream and node names go into NATS subjects and consumer names, where
/// `.`, `*`, `>` and spaces have meanings.
fn token(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

pub(super) fn validate(cluster: &ClusterSettings, problems: &mut Problems) {
    if !token(&cluster.stream) {
        problems.push(
            "cluster.stream",
            "use 1-64 characters from a-z, A-Z, 0-9, '-' and '_'",
        );
    }
    if !(1..=5).contains(&cluster.replicas) {
        problems.push("cluster.replicas", "must be between 1 and 5");
    }
    for (key, value) in [
        ("cluster.dedup_window", cluster.dedup_window),
        ("cluster.publish_timeout", cluster.publish_timeout),
    ] {
        if value < Duration::from_millis(100) {
            problems.push(key, "must be at least 100ms");
        }
    }
    if cluster.lease_ttl < Duration::from_secs(3) || cluster.lease_ttl.subsec_nanos() != 0 {
        problems.push(
            "cluster.lease_ttl",
            "must be a whole number of seconds, at least 3s",
        );
    }
    if cluster.buffer_rows < 1024 {
        problems.push("cluster.buffer_rows", "must be at least 1024");
    }
    if cluster.rebalance_within < Duration::from_secs(2) {
        problems.push("cluster.rebalance_within", "must be at least 2s");
    }
    if cluster.dedup_window <= cluster.publish_timeout {
        problems.push(
            "cluster.dedup_window",
            "must be longer than cluster.publish_timeout, or a retried append could be stored twice",
        );
    }
    if cluster.kind == ClusterKind::Local {
        return;
    }
    if cluster.urls.is_empty() {
        problems.push("cluster.urls", "is required with kind = \"nats\"");
    }
    for (i, url) in cluster.urls.iter().enumerate() {
        if let Err(reason) = server_url(url) {
            problems.push(format!("cluster.urls[{i}]"), reason);
        }
    }
    match cluster.node_id.as_deref() {
        None | Some("") => problems.push(
            "cluster.node_id",
            "is required with kind = \"nats\" (or set WARDEN__CLUSTER__NODE_ID)",
        ),
        Some(node) if !token(node) => problems.push(
            "cluster.node_id",
            format!(
                "use 1-64 characters from a-z, A-Z, 0-9, '-' and '_' (got \"{}\")",
                node.escape_debug()
            ),
        ),
        Some(_) => {}
    }
    if let Some(path) = &cluster.credentials_file
        && let Err(error) = std::fs::metadata(path)
    {
        problems.push(
            "cluster.credentials_file",
            format!("cannot read {}: {error}", path.display()),
        );
    }
}

/// A server URL the client accepts: `nats://`, `tls://` or a bare
/// `host:port`, with a host.
fn server_url(url: &str) -> Result<(), String> {
    let rest = match url.split_once("://") {
        Some(("nats" | "tls", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "scheme {scheme:?} is not nats:// or tls:// (websocket URLs are not supported)"
            ));
        }
        None => url,
    };
    if rest.contains('@') {
        // The config is shown by the API and check-config: no secrets in it.
        return Err("must not carry a user or password; use cluster.credentials_file".to_owned());
    }
    if rest.is_empty() || rest.starts_with(':') {
        return Err(format!("{url:?} names no host"));
    }
    Ok(())
}
