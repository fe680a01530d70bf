//! Telemetry: how Warden reports on itself. Today that is structured logging
//! through `tracing` (human or JSON lines); trace export and metrics build on
//! the same subscriber.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::{LogFormat, TelemetrySettings};

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
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over
/// `telemetry.log_level` so an operator can raise verbosity for one run.
pub fn init(settings: &TelemetrySettings) -> Result<(), TelemetryError> {
    let filter_text = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| settings.log_level.clone());
    let filter = EnvFilter::try_new(&filter_text).map_err(|error| TelemetryError::Filter {
        filter: filter_text.clone(),
        reason: error.to_string(),
    })?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match settings.log_format {
        LogFormat::Human => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    // Colour codes only help a person at a terminal; in a
                    // file or journal they are noise.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
            )
            .try_init(),
    };
    result.map_err(|_| TelemetryError::AlreadyInstalled)
}
