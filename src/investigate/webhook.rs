//! The `webhook` engine: POST the request as JSON, read a summary back.
//!
//! The request carries `Idempotency-Key: warden-<seq>`, so a receiver that
//! sees a retried wake (after a restart) can answer from its cache.

use std::time::Duration;

use serde::Deserialize;

use super::{EngineAnswer, InvestigationRequest};

/// What a webhook answers. Only `summary` is required.
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    summary: String,
    #[serde(default)]
    actions: Vec<String>,
    model: Option<String>,
    #[serde(default)]
    tokens_in: u64,
    #[serde(default)]
    tokens_out: u64,
    cost_usd: Option<f64>,
}

/// One webhook call; `Err` is the fallback reason (never holds the key).
pub(crate) async fn call(
    http: &reqwest::Client,
    url: &str,
    api_key: Option<&str>,
    timeout: Duration,
    request: &InvestigationRequest,
) -> Result<EngineAnswer, String> {
    let mut builder = http
        .post(url)
        .timeout(timeout)
        .header("Idempotency-Key", format!("warden-{}", request.seq))
        .json(request);
    if let Some(key) = api_key {
        builder = builder.bearer_auth(key);
    }
    let body = super::http::send(builder, "webhook", timeout).await?;
    parse(&body)
}

/// A webhook's 2xx body as an answer; `Err` is the fallback reason.
pub(crate) fn parse(body: &[u8]) -> Result<EngineAnswer, String> {
    let answer: Answer = serde_json::from_slice(body).map_err(|error| {
        crate::text::remote_reason(format!("webhook answered invalid JSON: {error}"))
    })?;
    let summary = answer.summary.trim();
    if summary.is_empty() {
        return Err("webhook answered without a summary".to_owned());
    }
    Ok(EngineAnswer {
        summary: summary.to_owned(),
        actions: answer
            .actions
            .into_iter()
            .map(|action| action.trim().to_owned())
            .filter(|action| !action.is_empty())
            .collect(),
        model: answer.model,
        tokens_in: answer.tokens_in,
        tokens_out: answer.tokens_out,
        cost_usd: answer.cost_usd,
    })
}
