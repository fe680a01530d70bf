//! Investigators: who writes the summary an operator reads with a wake.
//!
//! The wake consumer builds an [`InvestigationRequest`] from the wake row and
//! its context and asks an [`Investigator`] for an [`Investigation`]. The
//! configured engine (`[investigator] kind`) is either the built-in summary
//! (`none`: deterministic, no I/O), a `webhook`, or an OpenAI-compatible
//! `openai` endpoint. An outside engine is called only within its budget
//! (calls per sliding hour, dollars per UTC day); when it is over budget, down,
//! slow or answers nonsense, the built-in summary is used instead and
//! [`Investigation::fallback`] says why. Investigating never fails: an
//! operator always gets a summary.
//!
//! # Layout
//! - `builtin`: the deterministic summary and next actions.
//! - `budget`: the pure budget core (sliding hour, UTC day).
//! - `webhook`, `openai`: the outside engines; `http`: what they share.

mod budget;
mod builtin;
mod http;
mod openai;
mod webhook;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::settings::{
    InvestigatorKind, InvestigatorSettings, Secret, SecretFileError, SecretUrl, Severity,
    read_secret, scrub,
};

pub use budget::BudgetSnapshot;

use budget::Budget;

/// Everything the investigator is told about one wake event (the wake consumer builds it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InvestigationRequest {
    /// The wake row's seq; the idempotency key of the investigation.
    pub seq: u64,
    /// The wake row's seam, e.g. `probe.wake_requested`.
    pub seam: String,
    /// What happened: `fired`, `reminder`, `escalated`, `resumed`, `flapping` or `resolved`.
    pub kind: String,
    /// Joins the rows of the issue's story: `probe:<probe>:<category>:<first seq>`.
    pub caller_session_id: Option<String>,
    /// The probe.
    pub probe: String,
    /// Its component.
    pub component: String,
    /// The issue category, e.g. `service_unhealthy`.
    pub category: String,
    /// How urgent the issue is.
    pub severity: Severity,
    /// One-line title of the issue.
    pub title: String,
    /// Longer description, usually the failing observation's reasons.
    pub detail: String,
    /// When the probe first failed in this issue, RFC 3339.
    pub first_failed_at: Option<String>,
    /// How many checks in a row have failed.
    pub consecutive_failures: Option<u64>,
    /// The observation snapshot in the wake row.
    pub observation: Option<serde_json::Value>,
    /// Recent observations of the probe, newest last.
    pub recent_observations: Vec<serde_json::Value>,
    /// When the probe was last healthy, RFC 3339.
    pub last_good_at: Option<String>,
    /// The component's other open issues.
    pub open_issues: Vec<serde_json::Value>,
    /// Recent audit rows with the same `caller_session_id`.
    pub related_rows: Vec<serde_json::Value>,
    /// The fix envelope's state: `enabled`, `disabled` or `absent` (older rows: `not_configured`).
    pub envelope_status: String,
    /// What the fix envelope would do, e.g. `restart the managed process`.
    pub envelope_action: Option<String>,
    /// Runbook link for this issue; the configured `runbook_url` when absent.
    pub runbook: Option<String>,
}

/// What an investigator found: the summary an operator reads, and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Investigation {
    /// A few sentences on what is wrong and what is known about it.
    pub summary: String,
    /// Concrete next steps, one per entry.
    pub actions: Vec<String>,
    /// The engine that produced the summary: `none`, `webhook` or `openai`.
    pub engine: String,
    /// The model that answered, when the engine says.
    pub model: Option<String>,
    /// Input tokens the engine consumed.
    pub tokens_in: u64,
    /// Output tokens the engine produced.
    pub tokens_out: u64,
    /// What the call cost in US dollars (reported, or tokens × configured prices).
    pub cost_usd: f64,
    /// How long investigating took, in milliseconds.
    pub duration_ms: u64,
    /// Why the configured engine was not used (over budget, down, timed out,
    /// bad answer); `None` when it was, or when the engine is `none`.
    pub fallback: Option<String>,
}

/// Why an investigator could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum InvestigateError {
    /// A key the engine needs is not set (validation normally catches this).
    #[error("{key} is required for investigator kind {kind}")]
    Missing {
        /// The key path, e.g. `investigator.url`.
        key: &'static str,
        /// The configured kind.
        kind: &'static str,
    },
    /// The API key file is unreadable or empty.
    #[error("investigator.api_key_file: {0}")]
    ApiKeyFile(#[source] SecretFileError),
    /// The environment variable named by `api_key_env` is not set or not UTF-8.
    #[error("environment variable {name} (investigator.api_key_env) is not set")]
    ApiKeyEnv {
        /// The variable's name.
        name: String,
    },
    /// The key source exists but holds nothing.
    #[error("{key} holds an empty key")]
    EmptyKey {
        /// Which key source was empty.
        key: &'static str,
    },
}

/// The engine an [`Investigator`] calls, with what it needs.
#[derive(Debug)]
enum Engine {
    None,
    Webhook { url: SecretUrl },
    Openai { endpoint: SecretUrl, model: String },
}

/// What every call shares; behind an `Arc` so an investigator clones cheaply.
#[derive(Debug)]
struct Inner {
    engine: Engine,
    http: reqwest::Client,
    // Never logged or put in errors: `Secret`'s Debug prints `***`.
    api_key: Option<Secret>,
    timeout: Duration,
    max_tokens: u32,
    price_in_per_mtok_usd: f64,
    price_out_per_mtok_usd: f64,
    runbook_url: Option<String>,
    // Held only for short, non-async sections; a std mutex is right here.
    budget: Mutex<Budget>,
}

/// Writes summaries for wake events with the configured engine, within budget.
/// Cheap to clone; clones share one budget.
#[derive(Debug, Clone)]
pub struct Investigator {
    inner: Arc<Inner>,
}

/// What an outside engine answered, before it becomes an [`Investigation`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EngineAnswer {
    /// The summary, trimmed; never empty.
    pub summary: String,
    /// The next actions, each trimmed and non-empty.
    pub actions: Vec<String>,
    /// The model that answered, when the engine says.
    pub model: Option<String>,
    /// Input tokens the engine reports.
    pub tokens_in: u64,
    /// Output tokens the engine reports.
    pub tokens_out: u64,
    /// What the engine says the call cost, as reported (not yet checked).
    pub cost_usd: Option<f64>,
}

/// The shape of an outside engine's answer, for [`parse_answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFormat {
    /// `kind = "webhook"`: `{"summary", "actions"?, "model"?, "tokens_in"?, ...}`.
    Webhook,
    /// `kind = "openai"`: a chat completion.
    Openai,
}

/// Parses an outside engine's 2xx body exactly as [`Investigator::investigate`]
/// does (`model` is the configured model, for `openai`); `Err` is the
/// fallback reason. Public so the fuzz targets reach the same code.
pub fn parse_answer(
    format: AnswerFormat,
    body: &[u8],
    model: &str,
) -> Result<EngineAnswer, String> {
    match format {
        AnswerFormat::Webhook => webhook::parse(body),
        AnswerFormat::Openai => openai::parse(body, model),
    }
}

impl Investigator {
    /// Builds an investigator; resolves the API key from `api_key`,
    /// `api_key_file` or `api_key_env` here, once.
    pub fn from_settings(
        settings: &InvestigatorSettings,
        http: reqwest::Client,
    ) -> Result<Investigator, InvestigateError> {
        Self::build(settings, http, |name| std::env::var(name).ok())
    }

    /// [`Investigator::from_settings`] with the environment injected, for tests.
    pub(crate) fn build(
        settings: &InvestigatorSettings,
        http: reqwest::Client,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Investigator, InvestigateError> {
        let kind = settings.kind.as_str();
        let engine = match settings.kind {
            InvestigatorKind::None => Engine::None,
            InvestigatorKind::Webhook => Engine::Webhook {
                url: settings.url.clone().ok_or(InvestigateError::Missing {
                    key: "investigator.url",
                    kind,
                })?,
            },
            InvestigatorKind::Openai => {
                let base = settings.base_url.as_ref().map(SecretUrl::expose).ok_or(
                    InvestigateError::Missing {
                        key: "investigator.base_url",
                        kind,
                    },
                )?;
                let model = settings
                    .model
                    .clone()
                    .filter(|model| !model.trim().is_empty())
                    .ok_or(InvestigateError::Missing {
                        key: "investigator.model",
                        kind,
                    })?;
                Engine::Openai {
                    endpoint: SecretUrl::new(format!(
                        "{}/chat/completions",
                        base.trim_end_matches('/')
                    )),
                    model,
                }
            }
        };
        let api_key = api_key(settings, env)?;
        Ok(Investigator {
            inner: Arc::new(Inner {
                engine,
                http,
                api_key,
                timeout: settings.timeout,
                max_tokens: settings.max_tokens,
                price_in_per_mtok_usd: settings.price_in_per_mtok_usd,
                price_out_per_mtok_usd: settings.price_out_per_mtok_usd,
                runbook_url: settings.runbook_url.clone(),
                budget: Mutex::new(Budget::new(
                    settings.max_per_hour,
                    settings.daily_budget_usd,
                )),
            }),
        })
    }

    /// Investigates one wake event. Never fails: when the configured engine
    /// cannot be used, the built-in summary is returned with the reason in
    /// [`Investigation::fallback`].
    pub async fn investigate(&self, request: &InvestigationRequest) -> Investigation {
        let started = tokio::time::Instant::now();
        let inner = &self.inner;
        let mut request = request.clone();
        if request.runbook.is_none() {
            request.runbook.clone_from(&inner.runbook_url);
        }
        let engine = match &inner.engine {
            Engine::None => return builtin_investigation(&request, None, started),
            Engine::Webhook { .. } => "webhook",
            Engine::Openai { .. } => "openai",
        };
        let reserved = match self.lock().reserve(jiff::Timestamp::now()) {
            Ok(reserved) => reserved,
            Err(reason) => return builtin_investigation(&request, Some(reason), started),
        };
        match self.ask(&request).await {
            Ok(answer) => {
                let cost_usd = answer
                    .cost_usd
                    .filter(|cost| cost.is_finite() && *cost >= 0.0)
                    .unwrap_or_else(|| {
                        (answer.tokens_in as f64 * inner.price_in_per_mtok_usd
                            + answer.tokens_out as f64 * inner.price_out_per_mtok_usd)
                            / 1_000_000.0
                    });
                self.lock().spend(jiff::Timestamp::now(), cost_usd);
                Investigation {
                    summary: answer.summary,
                    actions: answer.actions,
                    engine: engine.to_owned(),
                    model: answer.model,
                    tokens_in: answer.tokens_in,
                    tokens_out: answer.tokens_out,
                    cost_usd,
                    duration_ms: elapsed_ms(started),
                    fallback: None,
                }
            }
            Err(reason) => {
                // A fallback counts nothing: give the reserved call back.
                self.lock().release(reserved);
                tracing::warn!(
                    seq = request.seq,
                    probe = %request.probe,
                    engine,
                    reason = %reason,
                    "Investigator fell back to the built-in summary."
                );
                builtin_investigation(&request, Some(reason), started)
            }
        }
    }

    /// One call to the configured outside engine; `Err` is the fallback reason.
    async fn ask(&self, request: &InvestigationRequest) -> Result<EngineAnswer, String> {
        let inner = &self.inner;
        let api_key = inner.api_key.as_ref().map(Secret::expose);
        let (result, url) = match &inner.engine {
            Engine::None => return Err("no engine configured".to_owned()),
            Engine::Webhook { url } => (
                webhook::call(&inner.http, url.expose(), api_key, inner.timeout, request).await,
                url,
            ),
            Engine::Openai { endpoint, model } => {
                let call = openai::Call {
                    endpoint: endpoint.expose(),
                    model,
                    api_key,
                    timeout: inner.timeout,
                    max_tokens: inner.max_tokens,
                };
                (openai::call(&inner.http, &call, request).await, endpoint)
            }
        };
        // The answer or the reason may quote what the engine was sent.
        let parts = url.secret_parts();
        let secrets: Vec<&str> = parts.iter().map(String::as_str).chain(api_key).collect();
        let clean = |text: &str| scrub(text, secrets.iter().copied());
        match result {
            Ok(mut answer) => {
                answer.summary = clean(&answer.summary);
                for action in &mut answer.actions {
                    *action = clean(action);
                }
                Ok(answer)
            }
            Err(reason) => Err(clean(&reason)),
        }
    }

    /// Calls and spending so far against the limits.
    pub fn budget(&self) -> BudgetSnapshot {
        self.lock().snapshot(jiff::Timestamp::now())
    }

    /// Records a past engine call (a `probe.investigation_completed` row
    /// replayed at boot) so the budget survives restarts.
    pub fn seed_spend(&self, at: jiff::Timestamp, cost_usd: f64) {
        self.lock().seed(at, cost_usd);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Budget> {
        // The budget is plain numbers; a panic elsewhere cannot leave it torn.
        self.inner
            .budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn api_key(
    settings: &InvestigatorSettings,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, InvestigateError> {
    let (key, value) = if let Some(secret) = &settings.api_key {
        ("investigator.api_key", secret.expose().to_owned())
    } else if let Some(path) = &settings.api_key_file {
        return read_secret(path, 1)
            .map(Some)
            .map_err(InvestigateError::ApiKeyFile);
    } else if let Some(name) = &settings.api_key_env {
        let text = env(name).ok_or_else(|| InvestigateError::ApiKeyEnv { name: name.clone() })?;
        ("investigator.api_key_env", text)
    } else {
        return Ok(None);
    };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(InvestigateError::EmptyKey { key });
    }
    Ok(Some(Secret::new(trimmed)))
}

fn builtin_investigation(
    request: &InvestigationRequest,
    fallback: Option<String>,
    started: tokio::time::Instant,
) -> Investigation {
    let (summary, actions) = builtin::summarise(request);
    Investigation {
        summary,
        actions,
        engine: "none".to_owned(),
        model: None,
        tokens_in: 0,
        tokens_out: 0,
        cost_usd: 0.0,
        duration_ms: elapsed_ms(started),
        fallback,
    }
}

fn elapsed_ms(started: tokio::time::Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
