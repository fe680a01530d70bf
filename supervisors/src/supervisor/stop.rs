//! Stopping one child per its [`Shutdown`] rule.

use std::time::Duration;

use ractor::ActorCell;

use crate::Shutdown;
use crate::exit::SHUTDOWN_REASON;

/// How long to wait for a killed actor to finish stopping.
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(5);

/// Stops one actor per `shutdown` and waits until it has fully stopped.
/// Returns whether it had to be killed.
pub(super) async fn stop_cell(cell: &ActorCell, shutdown: Shutdown) -> bool {
    match shutdown {
        Shutdown::BrutalKill => {
            cell.kill();
            let _ = cell.wait(Some(KILL_WAIT)).await;
            true
        }
        Shutdown::Timeout(timeout) => {
            cell.stop(Some(SHUTDOWN_REASON.to_string()));
            if cell.wait(Some(timeout)).await.is_ok() {
                return false;
            }
            cell.kill();
            if let Err(error) = cell.wait(Some(KILL_WAIT)).await {
                tracing::error!(actor = %cell.get_id(), error = %error, "Child did not stop after kill.");
            }
            true
        }
        Shutdown::Infinity => {
            cell.stop(Some(SHUTDOWN_REASON.to_string()));
            let _ = cell.wait(None).await;
            false
        }
    }
}
