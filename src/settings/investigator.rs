//! `[investigator]`: who writes the summary an operator reads when woken.
//! `none` is the built-in, deterministic summary; `webhook` and `openai` ask
//! an outside engine, within a call and spending budget, and fall back to the
//! built-in summary whenever they cannot answer.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Secret, SecretUrl};

/// Which engine writes investigation summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvestigatorKind {
    /// The built-in summary: deterministic, no I/O (default).
    #[default]
    None,
    /// POST the request JSON to `url`; the answer carries the summary.
    Webhook,
    /// An OpenAI-compatible `/chat/completions` endpoint at `base_url`.
    Openai,
}

impl InvestigatorKind {
    /// The name used in config and in `Investigation::engine`.
    pub fn as_str(self) -> &'static str {
        match self {
            InvestigatorKind::None => "none",
            InvestigatorKind::Webhook => "webhook",
            InvestigatorKind::Openai => "openai",
        }
    }
}

/// The investigator engine and its budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvestigatorSettings {
    /// `none`, `webhook` or `openai`. Default `none`.
    pub kind: InvestigatorKind,
    /// Webhook: the http(s) URL the request is POSTed to. Required for
    /// `webhook`. Its userinfo and query are secret.
    pub url: Option<SecretUrl>,
    /// Webhook: a file holding `url` (surrounding whitespace ignored).
    pub url_file: Option<PathBuf>,
    /// OpenAI: the API base, e.g. `http://127.0.0.1:11434/v1`. Required for
    /// `openai`. Its userinfo and query are secret.
    pub base_url: Option<SecretUrl>,
    /// OpenAI: a file holding `base_url` (surrounding whitespace ignored).
    pub base_url_file: Option<PathBuf>,
    /// OpenAI: the model name. Required for `openai`.
    pub model: Option<String>,
    /// Bearer key sent to the engine. Prefer `api_key_file` or `api_key_env`. Default: none.
    pub api_key: Option<Secret>,
    /// File holding the API key (surrounding whitespace ignored). Default: none.
    pub api_key_file: Option<PathBuf>,
    /// Name of an environment variable holding the API key. Default: none.
    pub api_key_env: Option<String>,
    /// Longest one engine call may take before the built-in summary is used. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Most engine calls in any sliding hour. Default `30`.
    pub max_per_hour: u32,
    /// Most US dollars spent on engine calls per UTC day. Default `5.0`.
    pub daily_budget_usd: f64,
    /// Price of one million input tokens in US dollars, used when the engine
    /// reports no cost. Default `0`.
    pub price_in_per_mtok_usd: f64,
    /// Price of one million output tokens in US dollars, used when the engine
    /// reports no cost. Default `0`.
    pub price_out_per_mtok_usd: f64,
    /// Runbook link included in every investigation. Default: none.
    pub runbook_url: Option<String>,
    /// OpenAI: most tokens the model may answer with. Default `800`.
    pub max_tokens: u32,
}

impl Default for InvestigatorSettings {
    fn default() -> Self {
        Self {
            kind: InvestigatorKind::None,
            url: None,
            url_file: None,
            base_url: None,
            base_url_file: None,
            model: None,
            api_key: None,
            api_key_file: None,
            api_key_env: None,
            timeout: Duration::from_secs(60),
            max_per_hour: 30,
            daily_budget_usd: 5.0,
            price_in_per_mtok_usd: 0.0,
            price_out_per_mtok_usd: 0.0,
            runbook_url: None,
            max_tokens: 800,
        }
    }
}
