//! Calls a `webhook` tier and turns its answer into data.
//!
//! The request is a POST of the escalation context (JSON) with an
//! `Idempotency-Key` header, so a tier that sees the same call twice (Warden
//! redelivers after a restart) can answer without acting twice. The answer
//! is `{"status": "fixed" | "rejected" | "in_progress", "notes"?: string,
//! "patch"?: object}`. Anything else (an unknown status, invalid JSON, a
//! non-2xx status, a transport error, a timeout, a body over 1 MiB) is
//! [`TierStatus::Failed`] with the reason in `error`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{excerpt, millis};
use crate::notify::IDEMPOTENCY_KEY_HEADER;
use crate::settings::{SecretMap, SecretUrl, scrub};

/// The largest answer read; a longer one is a failed call.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// One call to a tier, as the coordinator records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierCall {
    /// The tier's name.
    pub tier: String,
    /// The tier's attempt number in this cycle (1-based).
    pub attempt: u32,
    /// What the call carries: [`EscalationHistory::to_context`](super::EscalationHistory::to_context).
    pub context: serde_json::Value,
}

/// What the tier said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierStatus {
    /// The tier says it fixed the problem; the coordinator verifies.
    Fixed,
    /// The tier declines; the ladder moves on.
    Rejected,
    /// The tier is working on it; the coordinator waits and verifies.
    InProgress,
    /// No usable answer: transport error, timeout, non-2xx, bad JSON.
    Failed,
}

/// A tier's answer, or why there was none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierAnswer {
    /// What the tier said.
    pub status: TierStatus,
    /// The tier's notes, for the history and the operator.
    pub notes: Option<String>,
    /// A file patch the tier proposes (see [`patches`](super::patches)).
    pub patch: Option<serde_json::Value>,
    /// The HTTP status, when a response arrived.
    pub http_status: Option<u16>,
    /// Why the call failed, when it did.
    pub error: Option<String>,
    /// How long the call took.
    pub duration_ms: u64,
}

/// The body a tier answers with.
#[derive(Deserialize)]
struct Reply {
    status: String,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    patch: Option<serde_json::Value>,
}

/// How much of a bad body goes into the error.
const ERROR_EXCERPT: usize = 200;

/// POSTs `context` to `url` with the tier's `headers` and parses the
/// answer, within `timeout`. The error and notes never carry the URL's
/// secret parts or a header value, even when the tier echoes them back.
pub async fn call_webhook(
    url: &SecretUrl,
    headers: &SecretMap,
    timeout: Duration,
    http: &reqwest::Client,
    idempotency_key: &str,
    context: &serde_json::Value,
) -> TierAnswer {
    let mut answer = exchange(url, headers, timeout, http, idempotency_key, context).await;
    let parts = url.secret_parts();
    let secrets: Vec<&str> = parts
        .iter()
        .map(String::as_str)
        .chain(headers.values().map(|value| value.expose()))
        .collect();
    for text in [&mut answer.error, &mut answer.notes].into_iter().flatten() {
        *text = scrub(text, secrets.iter().copied());
    }
    answer
}

async fn exchange(
    url: &SecretUrl,
    headers: &SecretMap,
    timeout: Duration,
    http: &reqwest::Client,
    idempotency_key: &str,
    context: &serde_json::Value,
) -> TierAnswer {
    let started = Instant::now();
    let mut configured = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let parsed = (
            reqwest::header::HeaderName::from_bytes(name.as_bytes()),
            reqwest::header::HeaderValue::from_str(value.expose()),
        );
        let (Ok(name), Ok(mut value)) = parsed else {
            return TierAnswer {
                status: TierStatus::Failed,
                notes: None,
                patch: None,
                http_status: None,
                error: Some(format!(
                    "header {name} is not a valid HTTP header (value not shown)"
                )),
                duration_ms: 0,
            };
        };
        value.set_sensitive(true);
        configured.insert(name, value);
    }
    let call = async {
        let builder = http
            .post(url.expose())
            .headers(configured)
            .header(IDEMPOTENCY_KEY_HEADER, idempotency_key)
            .json(context)
            .timeout(timeout);
        let mut response = crate::telemetry::trace::inject(builder)
            .send()
            .await
            .map_err(|error| (None, describe(error, timeout)))?;
        let status = response.status().as_u16();
        if response
            .content_length()
            .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
        {
            return Err((Some(status), "answer larger than 1 MiB".to_owned()));
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(None) => break,
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return Err((Some(status), "answer larger than 1 MiB".to_owned()));
                    }
                    body.extend_from_slice(&chunk);
                }
                Err(error) => return Err((Some(status), describe(error, timeout))),
            }
        }
        Ok((status, body))
    };
    let result = match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err((
            None,
            format!("timed out after {}", humantime::format_duration(timeout)),
        )),
    };
    let duration_ms = millis(started.elapsed());
    match result {
        Ok((status, body)) => parse_answer(status, &body, duration_ms),
        Err((http_status, error)) => failed(http_status, error, duration_ms),
    }
}

/// Turns a tier's HTTP status and body into its answer: anything but a 2xx
/// with `{"status": "fixed" | "rejected" | "in_progress", ...}` is
/// [`TierStatus::Failed`] with the reason. Public so the fuzz targets reach it.
pub fn parse_answer(status: u16, body: &[u8], duration_ms: u64) -> TierAnswer {
    if !(200..300).contains(&status) {
        let text = String::from_utf8_lossy(body);
        let text = excerpt(text.trim(), ERROR_EXCERPT);
        let error = if text.is_empty() {
            format!("status {status}")
        } else {
            format!("status {status}: {text}")
        };
        return failed(Some(status), error, duration_ms);
    }
    let reply: Reply = match serde_json::from_slice(body) {
        Ok(reply) => reply,
        Err(error) => {
            return failed(
                Some(status),
                format!("answer is not valid JSON: {error}"),
                duration_ms,
            );
        }
    };
    let parsed = match reply.status.as_str() {
        "fixed" => TierStatus::Fixed,
        "rejected" => TierStatus::Rejected,
        "in_progress" => TierStatus::InProgress,
        other => {
            return failed(
                Some(status),
                format!(
                    "unknown status \"{}\" (expected fixed, rejected or in_progress)",
                    excerpt(other, ERROR_EXCERPT)
                ),
                duration_ms,
            );
        }
    };
    TierAnswer {
        status: parsed,
        notes: reply.notes,
        patch: reply.patch,
        http_status: Some(status),
        error: None,
        duration_ms,
    }
}

fn failed(http_status: Option<u16>, error: String, duration_ms: u64) -> TierAnswer {
    TierAnswer {
        status: TierStatus::Failed,
        notes: None,
        patch: None,
        http_status,
        // Whatever the tier sent, the reason kept is short.
        error: Some(crate::text::remote_reason(error)),
        duration_ms,
    }
}

/// A transport error without its URL (the URL may hold a credential).
fn describe(error: reqwest::Error, timeout: Duration) -> String {
    let error = error.without_url();
    if error.is_timeout() {
        format!("timed out after {}", humantime::format_duration(timeout))
    } else if error.is_connect() {
        format!("connection failed: {error}")
    } else {
        format!("request failed: {error}")
    }
}

#[cfg(test)]
mod tests;
