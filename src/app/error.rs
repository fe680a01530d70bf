//! Why Warden could not start, or had to stop: the one error every boot and
//! lifecycle path returns, and what `main` turns into an exit code.

/// Why Warden could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// An operator token file cannot be read, is empty or is shorter than
    /// 16 characters.
    #[error("{key}: {source}")]
    Secret {
        /// The config key naming the file.
        key: &'static str,
        /// What is wrong, with the file.
        #[source]
        source: crate::settings::SecretFileError,
    },
    /// The API would listen beyond loopback with no operator token.
    #[error(
        "refusing to listen on {0}: it is not a loopback address and no operator token is configured (set service.operator_token_file or listen on 127.0.0.1)"
    )]
    UnsafeListen(std::net::SocketAddr),
    /// One or more boot gates failed.
    #[error("boot gates failed: {0}")]
    Boot(String),
    /// The API address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The root supervisor could not be started.
    #[error("cannot start the supervision tree: {0}")]
    Spawn(String),
    /// A configured part (investigator, notifier) could not be set up, e.g.
    /// its secret file is unreadable.
    #[error("{0}")]
    Setup(String),
    /// Cluster mode: the NATS servers or the stream could not be reached.
    #[error("cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    /// The root supervisor melted down twice; Warden stopped itself.
    #[error(
        "the supervision tree melted down twice; Warden stopped to avoid acting in a broken state"
    )]
    Meltdown,
    /// The tree melted down on a configuration that differs from the
    /// last-known-good one: [`run_source`](super::run_source) restarts on the carried text.
    #[error(
        "the supervision tree melted down on a new configuration; rolling back to the last-known-good one"
    )]
    ConfigRollback(String),
}
