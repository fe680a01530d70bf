//! `warden incidents ...`: a small client of the incident API, so an
//! operator can list, read, annotate and resolve incidents from a shell.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// The environment variable holding the operator token.
pub const TOKEN_ENV: &str = "WARDEN_OPERATOR_TOKEN";

/// Why a CLI call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Bad arguments or an unusable token file (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The API could not be reached (exit 1).
    #[error("cannot reach the Warden API at {url}: {reason}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The API answered with an error (exit 1; 3 when refused with 409).
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error code from the body.
        code: String,
        /// The message from the body.
        message: String,
    },
}

impl ClientError {
    /// The process exit code: 2 usage, 3 refused (409), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) => 2,
            ClientError::Api { status: 409, .. } => 3,
            ClientError::Api { .. } | ClientError::Unreachable { .. } => 1,
        }
    }
}

/// A client of one Warden API.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// The operator token: from `token_file` if given, else [`TOKEN_ENV`]
/// (`env` is the variable's value, passed in so tests need not set it).
pub fn token(
    token_file: Option<&Path>,
    env: Option<String>,
) -> Result<Option<String>, ClientError> {
    if let Some(path) = token_file {
        let token = crate::settings::read_secret(path, 1)
            .map_err(|error| ClientError::Usage(error.to_string()))?;
        return Ok(Some(token.expose().to_owned()));
    }
    Ok(env.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()))
}

impl Client {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:9400`).
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| ClientError::Usage(format!("cannot build an HTTP client: {error}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        // Reads carry the token too when there is one: read tokens may guard them.
        match &self.token {
            Some(token) => request = request.bearer_auth(token),
            None if method != reqwest::Method::GET => {
                return Err(ClientError::Usage(format!(
                    "this command needs the operator token: --token-file FILE or {TOKEN_ENV}"
                )));
            }
            None => {}
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| ClientError::Unreachable {
                url: url.clone(),
                reason: error.to_string(),
            })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let field = |name: &str| body["error"][name].as_str().unwrap_or("").to_owned();
        Err(ClientError::Api {
            status: status.as_u16(),
            code: field("code"),
            message: field("message"),
        })
    }

    /// `GET <path>`, for the other read-only CLI commands (`warden cluster status`).
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.request(reqwest::Method::GET, path, None).await
    }

    /// `GET /api/incidents`.
    pub async fn list(&self) -> Result<Value, ClientError> {
        self.request(reqwest::Method::GET, "/api/incidents", None)
            .await
    }

    /// `GET /api/incidents/{id}`.
    pub async fn show(&self, id: &str) -> Result<Value, ClientError> {
        self.request(reqwest::Method::GET, &format!("/api/incidents/{id}"), None)
            .await
    }

    /// `POST /api/incidents/{id}/notes`.
    pub async fn note(
        &self,
        id: &str,
        text: &str,
        author: Option<&str>,
    ) -> Result<Value, ClientError> {
        let body = json!({ "text": text, "author": author });
        self.request(
            reqwest::Method::POST,
            &format!("/api/incidents/{id}/notes"),
            Some(body),
        )
        .await
    }

    /// `POST /api/incidents/{id}/resolve`.
    pub async fn resolve(&self, id: &str, note: &str, force: bool) -> Result<Value, ClientError> {
        let body = json!({ "note": note, "force": force });
        self.request(
            reqwest::Method::POST,
            &format!("/api/incidents/{id}/resolve"),
            Some(body),
        )
        .await
    }
}

/// `list` output: one line per incident.
pub fn format_list(body: &Value) -> String {
    let incidents = body["incidents"].as_array().cloned().unwrap_or_default();
    if incidents.is_empty() {
        return "no incidents\n".to_owned();
    }
    let mut out = String::new();
    for i in incidents {
        let components: Vec<&str> = i["components"]
            .as_array()
            .map(|c| c.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        out.push_str(&format!(
            "{}  {}  {:<9}  {}  {}  [{}]\n",
            i["id"].as_str().unwrap_or("?"),
            i["severity"].as_str().unwrap_or("?"),
            i["status"].as_str().unwrap_or("?"),
            i["opened_at"].as_str().unwrap_or("?"),
            i["title"].as_str().unwrap_or(""),
            components.join(", "),
        ));
    }
    out
}

/// `show` output: the record's headline fields, then the timeline.
pub fn format_show(body: &Value) -> String {
    let list = |key: &str| -> String {
        body[key]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let mut out = format!(
        "{} {} {}: {}\nopened {}  updated {}  resolved {}\ncomponents: {}\nprobes: {}\n\ntimeline (UTC):\n",
        body["id"].as_str().unwrap_or("?"),
        body["severity"].as_str().unwrap_or("?"),
        body["status"].as_str().unwrap_or("?"),
        body["title"].as_str().unwrap_or(""),
        body["opened_at"].as_str().unwrap_or("?"),
        body["updated_at"].as_str().unwrap_or("?"),
        body["resolved_at"].as_str().unwrap_or("-"),
        list("components"),
        list("probes"),
    );
    for entry in body["timeline"].as_array().cloned().unwrap_or_default() {
        out.push_str(&format!(
            "  {}  {:<14} {}\n",
            entry["at"].as_str().unwrap_or("?"),
            entry["kind"].as_str().unwrap_or("?"),
            entry["text"].as_str().unwrap_or(""),
        ));
    }
    out
}
