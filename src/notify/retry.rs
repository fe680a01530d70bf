//! One delivery: a POST per attempt, each bounded by the notifier's
//! `timeout`, retried on 5xx, timeouts and connection errors with jittered
//! exponential backoff, and on 429 after the receiver's `Retry-After`.
//! Any other answer outside 2xx is final: sending the same body again would
//! be refused again.
//!
//! Sleeps are `tokio::time::sleep`, so a paused-clock test can skip them.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use rand::Rng as _;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use tokio::time::Instant;

use super::{Delivery, DeliveryOutcome};
use crate::settings::{NotifierSettings, Secret};

/// Spread applied to each backoff delay (0.2 = ±20%), so notifiers that
/// failed together do not retry in lockstep.
const JITTER: f64 = 0.2;

/// A `Retry-After` is honoured up to this many times `backoff_max`, so a
/// receiver cannot park a delivery for a day.
const RETRY_AFTER_CAP_FACTOR: u32 = 4;

/// Bytes of an error answer's body read for `Delivery::error`.
const ERROR_BODY_BYTES: usize = 512;

/// Characters of that body kept.
const ERROR_BODY_CHARS: usize = 200;

/// How hard a notifier tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RetryPolicy {
    /// Bound on one attempt, answer body included.
    pub(super) timeout: Duration,
    /// Attempts after the first.
    pub(super) retries: u32,
    /// Delay before the first retry.
    pub(super) backoff_min: Duration,
    /// Upper bound of the (unjittered) delay.
    pub(super) backoff_max: Duration,
}

impl RetryPolicy {
    pub(super) fn from_settings(settings: &NotifierSettings) -> Self {
        Self {
            timeout: settings.timeout,
            retries: settings.retries,
            backoff_min: settings.backoff_min,
            backoff_max: settings.backoff_max,
        }
    }

    /// The delay before retry `retry` (1-based), before jitter:
    /// `backoff_min` doubled per retry, capped at `backoff_max`.
    pub(super) fn backoff(&self, retry: u32) -> Duration {
        let factor = 2_u32.saturating_pow(retry.saturating_sub(1));
        self.backoff_min
            .saturating_mul(factor)
            .min(self.backoff_max)
    }

    fn jittered(&self, retry: u32) -> Duration {
        let spread = rand::rng().random_range((1.0 - JITTER)..=(1.0 + JITTER));
        self.backoff(retry).mul_f64(spread)
    }

    fn retry_after_cap(&self) -> Duration {
        self.backoff_max.saturating_mul(RETRY_AFTER_CAP_FACTOR)
    }
}

/// One request, ready to be sent as often as needed.
pub(super) struct Request {
    pub(super) url: Url,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
    /// Values to blank out of error text (a receiver may echo them back).
    pub(super) redact: Vec<Secret>,
    /// `webhook`: the HMAC key; each attempt is timestamped and signed
    /// when it is sent, so a late retry is not refused as a replay.
    pub(super) signing_key: Option<Secret>,
}

/// What one attempt tells the loop.
#[derive(Debug, PartialEq)]
enum Verdict {
    Sent,
    /// Try again after the given delay, or after the backoff when `None`.
    Retry(Option<Duration>),
    Refused,
}

struct Attempt {
    status: Option<u16>,
    verdict: Verdict,
    error: Option<String>,
}

/// Sends `request` until it is accepted, refused, or the retries run out.
pub(super) async fn deliver(
    client: &reqwest::Client,
    notifier: &str,
    policy: RetryPolicy,
    request: Request,
) -> Delivery {
    let started = Instant::now();
    let mut attempts = 0_u32;
    loop {
        attempts += 1;
        let attempt = attempt(client, policy.timeout, &request).await;
        let delay = match attempt.verdict {
            Verdict::Sent | Verdict::Refused => None,
            Verdict::Retry(_) if attempts > policy.retries => None,
            Verdict::Retry(Some(after)) => Some(after.min(policy.retry_after_cap())),
            Verdict::Retry(None) => Some(policy.jittered(attempts)),
        };
        let error = attempt.error.map(|text| redact(text, &request.redact));
        let Some(delay) = delay else {
            let outcome = if attempt.verdict == Verdict::Sent {
                DeliveryOutcome::Sent
            } else {
                DeliveryOutcome::Failed
            };
            return Delivery {
                notifier: notifier.to_owned(),
                outcome,
                attempts,
                last_status: attempt.status,
                error,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            };
        };
        tracing::debug!(
            notifier,
            attempt = attempts,
            status = attempt.status,
            error = error.as_deref().unwrap_or(""),
            delay = %humantime::format_duration(delay),
            "Notice delivery failed; retrying."
        );
        tokio::time::sleep(delay).await;
    }
}

async fn attempt(client: &reqwest::Client, timeout: Duration, request: &Request) -> Attempt {
    let exchange = async {
        let mut headers = request.headers.clone();
        if request.signing_key.is_some() {
            super::webhook::stamp(&mut headers, request.signing_key.as_ref(), &request.body);
        }
        let builder = client
            .post(request.url.clone())
            .headers(headers)
            .body(request.body.clone());
        let response = crate::telemetry::trace::inject(builder).send().await?;
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(retry_after);
        let body = if status.is_success() {
            String::new()
        } else {
            snippet(response).await
        };
        Ok::<_, reqwest::Error>((status, retry_after, body))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_elapsed) => Attempt {
            status: None,
            verdict: Verdict::Retry(None),
            error: Some(format!(
                "timed out after {}",
                humantime::format_duration(timeout)
            )),
        },
        Ok(Err(error)) => Attempt {
            status: None,
            verdict: Verdict::Retry(None),
            error: Some(describe(error)),
        },
        Ok(Ok((status, retry_after, body))) => judge(status, retry_after, &body),
    }
}

fn judge(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Attempt {
    let verdict = if status.is_success() {
        Verdict::Sent
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        Verdict::Retry(retry_after)
    } else if status.is_server_error() {
        Verdict::Retry(None)
    } else {
        Verdict::Refused
    };
    let error = (verdict != Verdict::Sent).then(|| {
        if body.is_empty() {
            format!("status {status}")
        } else {
            format!("status {status}: {body}")
        }
    });
    Attempt {
        status: Some(status.as_u16()),
        verdict,
        error,
    }
}

/// The start of an error answer's body, for the operator reading `Delivery::error`.
async fn snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&bytes)
        .chars()
        .take(ERROR_BODY_CHARS)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// `Retry-After` as delta-seconds or an HTTP date; `None` when it is neither.
pub fn retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(text).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A transport error with its causes, without the URL (a Slack webhook URL
/// is a credential).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn redact(text: String, secrets: &[Secret]) -> String {
    crate::settings::scrub(&text, secrets.iter().map(Secret::expose))
}
