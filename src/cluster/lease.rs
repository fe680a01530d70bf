//! [`Lease`]: which node is the active one. One key in a JetStream KV bucket
//! whose entries expire `cluster.lease_ttl` after their last write; the
//! holder rewrites it every third of that with compare-and-set on the
//! revision it last wrote, so no two nodes can both believe they hold it.

use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use tokio::time::Instant;

use super::{ClusterError, StreamLog};

const KEY: &str = "active";

/// The active-node lease, held by this node.
pub struct Lease {
    kv: kv::Store,
    node: String,
    stream: String,
    /// The revision this node last wrote: the fencing token.
    revision: u64,
    ttl: Duration,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("node", &self.node)
            .field("stream", &self.stream)
            .field("revision", &self.revision)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl StreamLog {
    /// Takes the active-node lease of this log's stream, or says who holds
    /// it. A lease left by an earlier process of this same node is taken
    /// over at once rather than waited out.
    pub async fn acquire_lease(&self, ttl: Duration) -> Result<Lease, ClusterError> {
        let stream = self.name().to_owned();
        let failed = |reason: String| self.bucket_error("lease", reason);
        let kv = self
            .context()
            .create_or_update_key_value(kv::Config {
                bucket: format!("{stream}_LEASE"),
                history: 1,
                max_age: ttl,
                num_replicas: self.replicas(),
                ..Default::default()
            })
            .await
            .map_err(|e| failed(e.to_string()))?;
        let node = self.node().to_owned();
        let revision = match kv.create(KEY, Bytes::from(node.clone())).await {
            Ok(revision) => revision,
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                let entry = kv
                    .entry(KEY)
                    .await
                    .map_err(|e| failed(e.to_string()))?
                    .ok_or_else(|| failed("the lease vanished while it was read".to_owned()))?;
                let holder = String::from_utf8_lossy(&entry.value).into_owned();
                if holder != node {
                    return Err(ClusterError::LeaseHeld {
                        stream,
                        holder,
                        ttl,
                    });
                }
                kv.update(KEY, Bytes::from(node.clone()), entry.revision)
                    .await
                    .map_err(|e| failed(e.to_string()))?
            }
            Err(error) => return Err(failed(error.to_string())),
        };
        Ok(Lease {
            kv,
            node,
            stream,
            revision,
            ttl,
        })
    }
}

impl StreamLog {
    /// Who holds the active-node lease, and at which revision (`None`:
    /// nobody, or it expired).
    pub async fn lease_holder(&self) -> Result<Option<(String, u64)>, ClusterError> {
        let failed = |reason: String| self.bucket_error("lease", reason);
        let kv = self
            .context()
            .get_key_value(format!("{}_LEASE", self.name()))
            .await
            .map_err(|e| failed(e.to_string()))?;
        let entry = kv.entry(KEY).await.map_err(|e| failed(e.to_string()))?;
        Ok(entry
            .filter(|entry| entry.operation == kv::Operation::Put)
            .map(|entry| {
                (
                    String::from_utf8_lossy(&entry.value).into_owned(),
                    entry.revision,
                )
            }))
    }
}

impl Lease {
    /// The revision last written: it only grows, across every holder.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The node holding it (this one).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Renews the lease every third of its TTL until it is lost, then
    /// returns why. Lost means another node wrote the key (this node's
    /// revision is stale), or no renewal succeeded for two thirds of the
    /// TTL: the caller must stop acting then, before the key can expire on
    /// the servers and another node take it.
    pub async fn keep(&mut self) -> ClusterError {
        let every = self.ttl / 3;
        let give_up = self.ttl * 2 / 3;
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(every).await;
            let attempt = tokio::time::timeout(
                every,
                self.kv
                    .update(KEY, Bytes::from(self.node.clone()), self.revision),
            )
            .await;
            match attempt {
                Ok(Ok(revision)) => {
                    self.revision = revision;
                    renewed = Instant::now();
                }
                Ok(Err(error)) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    // A renewal that timed out may have been written: the
                    // key then still names this node, at a newer revision.
                    match self.kv.entry(KEY).await {
                        Ok(Some(entry)) if entry.value == self.node.as_bytes() => {
                            self.revision = entry.revision;
                            continue;
                        }
                        _ => return self.lost(format!("another node wrote it ({error})")),
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, stream = %self.stream, "Could not renew the active-node lease.");
                }
                Err(_) => {
                    tracing::warn!(stream = %self.stream, "Renewing the active-node lease timed out.");
                }
            }
            if renewed.elapsed() >= give_up {
                return self.lost(format!("not renewed for {:?}", renewed.elapsed()));
            }
        }
    }

    /// Gives the lease up (a graceful stop), so a standby need not wait
    /// for it to expire. Only if this node still holds it at the revision
    /// it last wrote.
    pub async fn release(self) {
        let delete = self.kv.delete_expect_revision(KEY, Some(self.revision));
        match tokio::time::timeout(self.ttl / 3, delete).await {
            Ok(Ok(())) => tracing::info!(stream = %self.stream, "Released the active-node lease."),
            Ok(Err(error)) => {
                tracing::warn!(error = %error, stream = %self.stream, "Could not release the active-node lease; it expires on its own.");
            }
            Err(_) => {
                tracing::warn!(stream = %self.stream, "Releasing the active-node lease timed out; it expires on its own.");
            }
        }
    }

    fn lost(&self, reason: String) -> ClusterError {
        ClusterError::LeaseLost {
            stream: self.stream.clone(),
            reason,
        }
    }
}
