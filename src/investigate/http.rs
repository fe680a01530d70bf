//! The HTTP exchange both outside engines share: send, map failures to
//! fallback reasons, read a bounded 2xx body.

use std::time::Duration;

/// The largest answer read; a summary is a few sentences.
pub(crate) const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Sends an engine request and reads a 2xx body of at most
/// [`MAX_ANSWER_BYTES`]; `Err` is the fallback reason. Errors are shown
/// without their URL, so a key put in a query string cannot reach the logs.
pub(crate) async fn send(
    builder: reqwest::RequestBuilder,
    engine: &str,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let failed = |error: reqwest::Error| {
        if error.is_timeout() {
            format!(
                "{engine} timed out after {}",
                humantime::format_duration(timeout)
            )
        } else {
            format!("{engine} unreachable: {}", error.without_url())
        }
    };
    let mut response = crate::telemetry::trace::inject(builder)
        .send()
        .await
        .map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{engine} returned {}", status.as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!(
                "{engine} answered more than {} bytes",
                MAX_ANSWER_BYTES
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
