//! The operator's stop signals: the first SIGTERM or SIGINT asks for a
//! graceful stop, a second one forces the exit.

/// Resolves on the first SIGTERM or SIGINT. A second signal exits the process
/// at once (130), for an operator whose graceful stop is taking too long.
pub async fn shutdown_signal() {
    first_signal().await;
    tracing::info!(
        "Shutdown requested; stopping gracefully (send the signal again to force exit)."
    );
    tokio::spawn(async {
        first_signal().await;
        tracing::warn!("Second signal received; exiting without a graceful stop.");
        std::process::exit(130);
    });
}

async fn first_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "Cannot watch SIGTERM; only SIGINT stops Warden.");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
