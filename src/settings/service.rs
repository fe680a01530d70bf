//! `[service]`: where Warden keeps its state, where its API listens, and the
//! operator credential that guards mutating calls.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Secret;

/// Process-level settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSettings {
    /// Directory for the audit log, cursors and other durable state. Default `./var`.
    pub state_dir: PathBuf,
    /// Address of the HTTP API. Default `127.0.0.1:9400`; port 0 picks a free port.
    pub api_listen: SocketAddr,
    /// Operator bearer token for mutating API calls. Prefer `operator_token_file`
    /// or `WARDEN__SERVICE__OPERATOR_TOKEN`; never logged. Default: none (mutating
    /// calls are refused).
    pub operator_token: Option<Secret>,
    /// File holding the operator token (trailing newline ignored). Default: none.
    pub operator_token_file: Option<PathBuf>,
    /// More operator tokens, all accepted at once (overlap rotation). Default: empty.
    pub operator_tokens: Vec<Secret>,
    /// More files each holding one operator token; re-read on SIGHUP with
    /// `operator_token_file`. Default: empty.
    pub operator_token_files: Vec<PathBuf>,
    /// How long a graceful shutdown may take before the process exits anyway. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Timeout of request/reply calls between actors and from the API. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
}

impl ServiceSettings {
    /// Whether any operator token key is set (values are checked at boot).
    pub fn has_operator_token(&self) -> bool {
        self.operator_token.is_some()
            || self.operator_token_file.is_some()
            || !self.operator_tokens.is_empty()
            || !self.operator_token_files.is_empty()
    }

    /// Each operator token file with the key that names it.
    pub fn operator_token_file_keys(&self) -> Vec<(String, &std::path::Path)> {
        let single = self
            .operator_token_file
            .iter()
            .map(|path| ("service.operator_token_file".to_owned(), path.as_path()));
        let many = self
            .operator_token_files
            .iter()
            .enumerate()
            .map(|(i, path)| (format!("service.operator_token_files[{i}]"), path.as_path()));
        single.chain(many).collect()
    }

    /// One warning per operator token file that group or others can read.
    pub fn token_file_warnings(&self) -> Vec<String> {
        crate::files::token_file_warnings(self.operator_token_file_keys())
    }
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("./var"),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 9400)),
            operator_token: None,
            operator_token_file: None,
            operator_tokens: Vec::new(),
            operator_token_files: Vec::new(),
            shutdown_timeout: Duration::from_secs(30),
            call_timeout: Duration::from_secs(5),
        }
    }
}
