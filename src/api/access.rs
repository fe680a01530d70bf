//! Who may talk to the API, checked before any route runs: the `Host`
//! allow-list (a DNS-rebinding page reaches a loopback listener under a name
//! of its own, which is not on the list), the `Origin` check on every POST
//! (a page on another site cannot forge a call, even one the browser would
//! send without reading the answer), and the read token that guards
//! operations data. Heartbeat tokens are kept here too, per probe.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::auth::{OperatorTokens, bearer};
use super::{ApiContext, ApiError};
use crate::settings::{ProbeKind, Secret, SecretFileError, Settings, read_secret};

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {source}")]
pub struct TokenFileError {
    /// The config key naming the file.
    pub key: String,
    /// Unreadable, empty or too short, with the file.
    #[source]
    pub source: SecretFileError,
}

/// Shortest token accepted from a file, as for operator tokens.
const MIN_TOKEN_CHARS: usize = 16;

fn read_token(key: String, path: &Path) -> Result<Secret, TokenFileError> {
    read_secret(path, MIN_TOKEN_CHARS).map_err(|source| TokenFileError { key, source })
}

/// The API's access rules, built once at boot; the tokens are re-read on SIGHUP.
#[derive(Clone)]
pub struct Access {
    /// Lowercase host names; `"*"` accepts any.
    allowed_hosts: Arc<Vec<String>>,
    /// Tokens granting reads of operations data.
    read_tokens: OperatorTokens,
    /// Reads need no token: no read token is configured and the listener
    /// is on loopback, where only local users reach it.
    reads_open: bool,
    /// Heartbeat probe name → the token its heartbeats must carry.
    heartbeat_tokens: Arc<RwLock<HashMap<String, Secret>>>,
}

impl Access {
    /// Builds the rules from `settings`, reading every token file.
    pub fn load(settings: &Settings) -> Result<Self, TokenFileError> {
        let service = &settings.service;
        let access = Self {
            allowed_hosts: Arc::new(service.effective_allowed_hosts()),
            read_tokens: OperatorTokens::default(),
            reads_open: service.read_token_files.is_empty()
                && service.api_listen.ip().is_loopback(),
            heartbeat_tokens: Arc::default(),
        };
        access.reload(settings)?;
        Ok(access)
    }

    /// Re-reads every token file; on failure the tokens in force stay.
    pub fn reload(&self, settings: &Settings) -> Result<(), TokenFileError> {
        let reads = settings
            .service
            .read_token_files
            .iter()
            .enumerate()
            .map(|(i, path)| read_token(format!("service.read_token_files[{i}]"), path))
            .collect::<Result<Vec<_>, _>>()?;
        let mut beats = HashMap::new();
        for (i, probe) in settings.probes.iter().enumerate() {
            if let Some(path) = &probe.token_file
                && probe.kind == Some(ProbeKind::Heartbeat)
            {
                beats.insert(
                    probe.name.clone(),
                    read_token(format!("probes[{i}].token_file"), path)?,
                );
            }
        }
        self.read_tokens.replace(reads);
        *self
            .heartbeat_tokens
            .write()
            .unwrap_or_else(PoisonError::into_inner) = beats;
        Ok(())
    }

    /// Re-reads the token files on every SIGHUP, alongside the operator
    /// tokens' own reload, until the runtime ends.
    pub fn reload_on_hangup(&self, settings: Arc<Settings>) {
        #[cfg(unix)]
        {
            let access = self.clone();
            let Ok(mut hangup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                tracing::warn!(
                    "Cannot watch SIGHUP; read and heartbeat tokens reload only on restart."
                );
                return;
            };
            tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    match access.reload(&settings) {
                        Ok(()) => tracing::info!("Read and heartbeat tokens reloaded."),
                        Err(error) => {
                            tracing::error!(error = %error, "Token reload failed; the previous read and heartbeat tokens stay in force.")
                        }
                    }
                }
            });
        }
    }

    /// Checks a heartbeat for `probe`: accepted when the probe has no token,
    /// or the request carries it as a bearer token.
    pub(super) fn check_heartbeat(&self, probe: &str, headers: &HeaderMap) -> Result<(), ApiError> {
        let tokens = self
            .heartbeat_tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(expected) = tokens.get(probe) else {
            return Ok(());
        };
        let Some(presented) = bearer(headers) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this heartbeat probe needs its token as `Authorization: Bearer <token>`",
            ));
        };
        if bool::from(expected.expose().as_bytes().ct_eq(presented.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the heartbeat token is wrong",
            ))
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts
            .iter()
            .any(|allowed| allowed == "*" || allowed == host)
    }
}

/// Routes whose answers expose operations data (audit rows, incidents and
/// their evidence, the dashboard's stories and timelines).
fn is_operations_read(path: &str) -> bool {
    path == "/api/audit"
        || path == "/api/incidents"
        || path.starts_with("/api/incidents/")
        || path == "/api/dashboard"
}

/// `host[:port]` → lowercase host without brackets, and the port if given.
fn split_authority(authority: &str) -> (String, Option<&str>) {
    let authority = authority.trim();
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (rest, None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            _ => (authority, None),
        }
    };
    (host.trim_end_matches('.').to_ascii_lowercase(), port)
}

/// The authority the client addressed: the URI's (HTTP/2, absolute form),
/// else the `Host` header.
fn authority(request: &Request) -> Option<String> {
    if let Some(authority) = request.uri().authority() {
        return Some(authority.as_str().to_owned());
    }
    request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// `host:port` with the scheme's default port made explicit, for comparing
/// an `Origin` with the authority of the request.
fn normalized(host: &str, port: Option<&str>, default_port: &str) -> String {
    format!(
        "{host}:{}",
        port.filter(|p| !p.is_empty()).unwrap_or(default_port)
    )
}

/// Whether `origin` names the same host and port the request was sent to.
fn same_origin(origin: &str, host: &str, port: Option<&str>, tls: bool) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let origin_default = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    if rest.contains(['/', '@', '?', '#']) {
        return false;
    }
    let (origin_host, origin_port) = split_authority(rest);
    let own_default = if tls { "443" } else { "80" };
    normalized(&origin_host, origin_port, origin_default) == normalized(host, port, own_default)
}

/// The middleware: host allow-list, then the POST origin check, then the
/// read token for operations data.
pub(super) async fn guard(
    State(context): State<ApiContext>,
    request: Request,
    next: Next,
) -> Response {
    match check(&context, &request) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

fn check(context: &ApiContext, request: &Request) -> Result<(), ApiError> {
    let access = &context.access;
    let Some(authority) = authority(request) else {
        return Err(ApiError::bad_request(
            "the request has no Host header; name the host the API is served as",
        ));
    };
    let (host, port) = split_authority(&authority);
    if !access.host_allowed(&host) {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected_request",
            format!("this API does not answer for host {host:?} (service.allowed_hosts)"),
        ));
    }
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !same_origin(origin, &host, port, context.tls) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_origin",
                "cross-origin requests are refused; call the API from the dashboard it serves or from a client that sends no Origin",
            ));
        }
    }
    if is_operations_read(request.uri().path()) && !access.reads_open {
        let Some(presented) = bearer(request.headers()) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "reading operations data needs a read or operator token as `Authorization: Bearer <token>`",
            ));
        };
        if !access.read_tokens.matches(presented) && !context.operator_tokens.matches(presented) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the token grants no reads",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(
            split_authority("LocalHost:9400"),
            ("localhost".into(), Some("9400"))
        );
        assert_eq!(split_authority("[::1]:80"), ("::1".into(), Some("80")));
        assert_eq!(split_authority("::1"), ("::1".into(), None));
        assert_eq!(
            split_authority("example.com."),
            ("example.com".into(), None)
        );
    }

    #[test]
    fn origins_match_only_the_same_host_and_port() {
        assert!(same_origin(
            "http://127.0.0.1:9400",
            "127.0.0.1",
            Some("9400"),
            false
        ));
        assert!(same_origin("http://localhost", "localhost", None, false));
        assert!(same_origin("https://warden:443", "warden", None, true));
        assert!(!same_origin(
            "http://evil.example",
            "127.0.0.1",
            Some("9400"),
            false
        ));
        assert!(!same_origin(
            "http://127.0.0.1:9401",
            "127.0.0.1",
            Some("9400"),
            false
        ));
        assert!(!same_origin("null", "127.0.0.1", Some("9400"), false));
        assert!(!same_origin("file://x", "x", None, false));
    }
}
