//! Cluster mode (`[cluster] kind = "nats"`): the audit log on a replicated
//! NATS JetStream stream.
//!
//! What this module owns:
//! - `stream.rs`: [`StreamLog`], the connection to the servers and the
//!   stream that holds the log: idempotent appends (every row carries a
//!   `Nats-Msg-Id`, so a retried append is stored once) and an ordered
//!   reader of the stream from a seq.
//! - `lease.rs`: [`Lease`], which node is the active one: only the holder
//!   runs the consumers (notices, incidents, escalation); the holder stops
//!   when it cannot renew it, and a standby takes over once it is free.
//! - `members.rs`: [`Members`], which nodes are up and in which role.
//! - `shard.rs`: [`Ownership`], which live node checks which probe
//!   (rendezvous hashing over the membership list).
//! - `cli.rs`: `warden cluster status`'s text for `GET /api/cluster`.
//! - `state.rs`: [`StateMirror`], the consumers' cursors and state files
//!   copied into the cluster, so the next active node resumes where the
//!   last one stopped.
//!
//! The audit writer (`audit/writer/committer.rs`) is the one user: in
//! cluster mode it publishes each batch to the stream, takes every row's
//! `seq` from the stream's acknowledgement, and copies the stream, in
//! order, into the node's own JSON Lines files. Those files keep the local
//! format, so every reader (cursors, the API, `warden audit tail`) works
//! unchanged; an append is acknowledged once the stream holds the row *and*
//! the local copy has it, so nothing acts on a row the cluster could lose.
//! See `docs/cluster.md`.

mod cli;
mod lease;
mod members;
mod shard;
mod state;
mod stream;

pub use cli::status_text;
pub use lease::Lease;
pub use members::{Member, Members};
pub use shard::{Moved, Ownership, Plan, rendezvous};
pub use state::{MIRROR_EVERY, StateMirror};
pub use stream::{StreamLog, StreamReader};

/// What went wrong talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No server could be reached, or the credentials were refused.
    #[error("cannot connect to NATS at {urls}: {reason}")]
    Connect {
        /// The configured URLs.
        urls: String,
        /// The client's error.
        reason: String,
    },
    /// The credentials file could not be read.
    #[error("cannot read cluster.credentials_file {path}: {source}")]
    Credentials {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Creating, updating or reading the stream failed.
    #[error("JetStream stream {stream}: {reason}")]
    Stream {
        /// The stream's name.
        stream: String,
        /// The server's or client's error.
        reason: String,
    },
    /// An append was not acknowledged; transient ones are retried by the
    /// writer with the same message id.
    #[error("append to stream {stream} not acknowledged: {reason}")]
    Publish {
        /// The stream's name.
        stream: String,
        /// Why.
        reason: String,
    },
    /// Reading the stream failed or timed out.
    #[error("reading stream {stream} from seq {from}: {reason}")]
    Read {
        /// The stream's name.
        stream: String,
        /// The first seq asked for.
        from: u64,
        /// Why.
        reason: String,
    },
    /// Another node is the active one.
    #[error(
        "node {holder} is the active node of stream {stream}; this node can start once that \
         lease is released or expires ({ttl:?} after its last renewal)"
    )]
    LeaseHeld {
        /// The stream's name.
        stream: String,
        /// The node holding the lease.
        holder: String,
        /// The lease's TTL.
        ttl: std::time::Duration,
    },
    /// This node lost the active-node lease and stopped acting.
    #[error("lost the active-node lease of stream {stream}: {reason}; stopping")]
    LeaseLost {
        /// The stream's name.
        stream: String,
        /// Why.
        reason: String,
    },
    /// The local copy of the log has rows the stream does not: it belongs
    /// to another stream, or the stream was deleted.
    #[error(
        "the local audit log ends at seq {local} but stream {stream} ends at seq {stream_last}; \
         this state dir's log is not a copy of that stream (move its audit/ directory away to \
         join the cluster with a fresh copy)"
    )]
    LocalAhead {
        /// The stream's name.
        stream: String,
        /// The local log's last seq.
        local: u64,
        /// The stream's last seq.
        stream_last: u64,
    },
}
