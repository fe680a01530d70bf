//! Helpers shared by the integration tests (the one `mod.rs`: a file directly
//! under `tests/` would become its own test binary).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod instance;
pub mod nats;
pub mod process;
pub mod receiver;
pub mod targets;

/// A loopback port for a server a test starts itself (see [`nats::free_port`]).
#[allow(unused_imports)] // not every test binary starts a server of its own
pub use nats::free_port;

use std::future::Future;
use std::time::Duration;

/// Polls `condition` until it holds or `timeout` passes, like ractor's
/// `periodic_check`: tests wait for a state, never for a guessed duration.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `GET <base>/api/health` answers 200.
pub async fn healthy(client: &reqwest::Client, base: &str) -> bool {
    match client.get(format!("{base}/api/health")).send().await {
        Ok(response) => response.status() == 200,
        Err(_) => false,
    }
}
