//! [`Members`]: which nodes are up, and in which role. Every node, standby
//! or active, writes its own key in the KV bucket `<stream>_NODES`, whose
//! entries expire shortly before `cluster.rebalance_within` after their last
//! write (see `app/node.rs`), so a node
//! that died drops out of the list on its own.

use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{ClusterError, StreamLog};

/// One node as the membership bucket holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// `cluster.node_id`.
    pub node: String,
    /// `active` or `standby`.
    pub role: String,
    /// When it last said so, RFC 3339 UTC.
    pub seen: String,
}

/// This node's entry in the membership bucket.
pub struct Members {
    kv: kv::Store,
    node: String,
    stream: String,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members")
            .field("node", &self.node)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl StreamLog {
    /// The membership bucket of this log's stream; entries live `ttl`.
    pub async fn members(&self, ttl: Duration) -> Result<Members, ClusterError> {
        let kv = self
            .context()
            .create_or_update_key_value(kv::Config {
                bucket: format!("{}_NODES", self.name()),
                history: 1,
                max_age: ttl,
                num_replicas: self.replicas(),
                ..Default::default()
            })
            .await
            .map_err(|e| self.bucket_error("membership", e))?;
        Ok(Members {
            kv,
            node: self.node().to_owned(),
            stream: self.name().to_owned(),
        })
    }

    /// Every node whose entry has not expired, by name.
    pub async fn member_list(&self) -> Result<Vec<Member>, ClusterError> {
        let kv = self
            .context()
            .get_key_value(format!("{}_NODES", self.name()))
            .await
            .map_err(|e| self.bucket_error("membership", e))?;
        let mut keys = kv
            .keys()
            .await
            .map_err(|e| self.bucket_error("membership", e))?;
        let mut names = Vec::new();
        while let Some(key) = keys.next().await {
            names.push(key.map_err(|e| self.bucket_error("membership", e))?);
        }
        let mut members = Vec::new();
        for name in names {
            let value = kv
                .get(&name)
                .await
                .map_err(|e| self.bucket_error("membership", e))?;
            if let Some(member) = value.and_then(|v| serde_json::from_slice::<Member>(&v).ok()) {
                members.push(member);
            }
        }
        members.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(members)
    }

    pub(super) fn bucket_error(&self, bucket: &str, error: impl std::fmt::Display) -> ClusterError {
        ClusterError::Stream {
            stream: self.name().to_owned(),
            reason: format!("{bucket} bucket: {error}"),
        }
    }
}

impl Members {
    /// Says this node is up in `role`; a failure is logged (the entry then
    /// expires, which is the truth about a node that cannot reach the
    /// servers).
    pub async fn beat(&self, role: &str) {
        let member = Member {
            node: self.node.clone(),
            role: role.to_owned(),
            seen: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        };
        let Ok(value) = serde_json::to_vec(&member) else {
            return;
        };
        if let Err(error) = self.kv.put(&self.node, Bytes::from(value)).await {
            tracing::debug!(error = %error, stream = %self.stream, "Could not write this node's membership entry.");
        }
    }

    /// Takes this node off the list (a graceful stop).
    pub async fn leave(&self) {
        if let Err(error) = self.kv.delete(&self.node).await {
            tracing::debug!(error = %error, stream = %self.stream, "Could not remove this node's membership entry.");
        }
    }
}
