//! The `openai` engine: an OpenAI-compatible `/chat/completions` endpoint
//! (OpenAI, Ollama, vLLM, llama.cpp). The model gets a short instruction and
//! the request as JSON; lines of its answer that start with `- ` become the
//! actions, the rest the summary.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::{EngineAnswer, InvestigationRequest};

/// What the model is asked to do.
pub(crate) const INSTRUCTION: &str = "You are an SRE assistant. Warden, a supervision service, \
detected the issue described in the JSON below. Summarise it for the operator on call in at most \
5 plain sentences: what is failing, since when, what is known about the cause, and what is \
already being done about it. Then list the next actions, one per line, each line starting with \
\"- \". Do not invent facts that are not in the JSON.";

/// How much of the request JSON the model is shown.
pub(crate) const MAX_PROMPT_BYTES: usize = 16 * 1024;

/// Where and how to call.
pub(crate) struct Call<'a> {
    pub(crate) endpoint: &'a str,
    pub(crate) model: &'a str,
    pub(crate) api_key: Option<&'a str>,
    pub(crate) timeout: Duration,
    pub(crate) max_tokens: u32,
}

#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
    model: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Debug, Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// One chat completion; `Err` is the fallback reason (never holds the key).
pub(crate) async fn call(
    http: &reqwest::Client,
    call: &Call<'_>,
    request: &InvestigationRequest,
) -> Result<EngineAnswer, String> {
    let body = json!({
        "model": call.model,
        "messages": [
            {"role": "system", "content": INSTRUCTION},
            {"role": "user", "content": prompt(request)?},
        ],
        "max_tokens": call.max_tokens,
        "temperature": 0.2,
    });
    let mut builder = http
        .post(call.endpoint)
        .timeout(call.timeout)
        .header("Idempotency-Key", format!("warden-{}", request.seq))
        .json(&body);
    if let Some(key) = call.api_key {
        builder = builder.bearer_auth(key);
    }
    let bytes = super::http::send(builder, "openai", call.timeout).await?;
    parse(&bytes, call.model)
}

/// A chat completion's 2xx body as an answer; `model` stands in when the
/// endpoint does not say which model answered. `Err` is the fallback reason.
pub(crate) fn parse(bytes: &[u8], model: &str) -> Result<EngineAnswer, String> {
    let completion: Completion = serde_json::from_slice(bytes).map_err(|error| {
        crate::text::remote_reason(format!("openai answered invalid JSON: {error}"))
    })?;
    let content = completion
        .choices
        .into_iter()
        .next()
        .and_then(|choice| choice.message.content)
        .unwrap_or_default();
    let (summary, actions) = split(&content);
    if summary.is_empty() {
        return Err("openai answered without a summary".to_owned());
    }
    let usage = completion.usage.unwrap_or_default();
    Ok(EngineAnswer {
        summary,
        actions,
        model: completion.model.or_else(|| Some(model.to_owned())),
        tokens_in: usage.prompt_tokens,
        tokens_out: usage.completion_tokens,
        cost_usd: None,
    })
}

/// The request as pretty JSON, cut to [`MAX_PROMPT_BYTES`] on a char boundary.
pub(crate) fn prompt(request: &InvestigationRequest) -> Result<String, String> {
    let mut text = serde_json::to_string_pretty(request)
        .map_err(|error| format!("cannot encode the request: {error}"))?;
    if text.len() > MAX_PROMPT_BYTES {
        let mut cut = MAX_PROMPT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n... (truncated)");
    }
    Ok(text)
}

/// Splits a model's answer into the summary and the `- ` action lines.
/// A short line ending in `:` (a heading such as `Next actions:`) is dropped.
pub(crate) fn split(content: &str) -> (String, Vec<String>) {
    let mut summary = Vec::new();
    let mut actions = Vec::new();
    for line in content.lines().map(str::trim) {
        if let Some(action) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
            let action = action.trim();
            if !action.is_empty() {
                actions.push(action.to_owned());
            }
        } else if line.is_empty() || (line.ends_with(':') && line.len() <= 40) {
            continue;
        } else {
            summary.push(line);
        }
    }
    (summary.join(" "), actions)
}
