//! `[service]`: where Warden keeps its state, where its API listens, the
//! credentials that guard mutating calls and operations reads, and the limits
//! that keep hostile clients from exhausting the listener.

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
    /// Timeout of request/reply calls between actors and from the API; a
    /// mutating call whose audit row is not durable by then answers 503.
    /// Default `5s`.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    /// Longest a client may take to send a request's headers (slowloris
    /// guard). Default `10s`.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Longest one request may take, body and handler included; then 408.
    /// Default `30s`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests before
    /// it is closed. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most client connections open at once; more wait in the kernel's
    /// backlog. Lowered at start to fit the open-file limit minus a reserve
    /// kept for probes and the audit log. Default 512.
    pub max_connections: usize,
    /// Host names (or IP literals) the API answers for, matched against the
    /// `Host` header without its port; `"*"` accepts any. Default (empty): the
    /// listen address, `localhost`, `127.0.0.1` and `::1`.
    pub allowed_hosts: Vec<String>,
    /// Files each holding one token that grants reads of operations data
    /// (`/api/audit`, `/api/incidents*`, `/api/dashboard`); operator tokens
    /// grant them too. Default: empty (reads open on a loopback listener,
    /// operator token required otherwise).
    pub read_token_files: Vec<PathBuf>,
    /// PEM certificate chain; with `tls_key_file`, the API serves HTTPS only.
    /// Default: none (plain HTTP).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`. Default: none.
    pub tls_key_file: Option<PathBuf>,
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

impl ServiceSettings {
    /// The host names the API answers for: `allowed_hosts`, or by default the
    /// listen address and the loopback names. Lowercase, without brackets.
    pub fn effective_allowed_hosts(&self) -> Vec<String> {
        if !self.allowed_hosts.is_empty() {
            return self
                .allowed_hosts
                .iter()
                .map(|host| {
                    host.trim()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_ascii_lowercase()
                })
                .collect();
        }
        let mut hosts = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let ip = self.api_listen.ip();
        if !ip.is_unspecified() && !hosts.contains(&ip.to_string()) {
            hosts.push(ip.to_string());
        }
        hosts
    }

    /// Whether the API serves TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert_file.is_some() && self.tls_key_file.is_some()
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
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
            allowed_hosts: Vec::new(),
            read_token_files: Vec::new(),
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}
