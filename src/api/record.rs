//! A client's change is recorded before it takes effect, and the client
//! hears back within `service.call_timeout` even while the disk fails: the
//! row goes into the bounded audit queue, and if it is not durable in time
//! it is withdrawn (nothing recorded, nothing changed: 503). Only when the
//! writer already holds the row, so it will reach the log as soon as the disk
//! allows, does the change wait for that and then take effect; the 503 says so.

use crate::audit::{AuditError, NewRow};

use super::{ApiContext, ApiError};

/// Records `row`, then runs `effect` with its seq. `what` names the change
/// in error messages ("the command", "the note").
pub(super) async fn record_then<T, F>(
    context: &ApiContext,
    row: NewRow,
    what: &'static str,
    effect: F,
) -> Result<(u64, T), ApiError>
where
    F: FnOnce(u64) -> T + Send + 'static,
    T: Send + 'static,
{
    let mut pending = context
        .audit
        .try_submit(row)
        .map_err(|error| refused(what, &error))?;
    match tokio::time::timeout(context.call_timeout, pending.durable()).await {
        Ok(Ok(seq)) => Ok((seq, effect(seq))),
        Ok(Err(error)) => Err(refused(what, &error)),
        Err(_) => match pending.withdraw() {
            Ok(()) => Err(ApiError::unavailable(format!(
                "the audit log did not record {what} within {} (service.call_timeout); it was withdrawn and nothing changed",
                humantime::format_duration(context.call_timeout)
            ))),
            Err(mut pending) => {
                tokio::spawn(async move {
                    if let Ok(seq) = pending.durable().await {
                        effect(seq);
                    }
                });
                Err(ApiError::unavailable(format!(
                    "the audit log is not writable; {what} is being written and takes effect once it is recorded"
                )))
            }
        },
    }
}

fn refused(what: &str, error: &AuditError) -> ApiError {
    ApiError::unavailable(format!(
        "{what} was not recorded, so nothing changed: {error}"
    ))
}
