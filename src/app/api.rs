//! The API's side of the `service` section: operator tokens, access rules,
//! TLS and connection limits (checked before any boot gate runs, so a bad
//! token file or certificate refuses the boot before anything is touched),
//! the listener, and the server's arguments.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::handles::Handles;
use super::{AppError, fds};
use crate::api::{
    Access, ApiContext, ApiServerArgs, ConnLimits, IncidentsView, OperatorTokens, ProbesView,
};
use crate::chaos::ChaosControl;
use crate::investigate::Investigator;
use crate::settings::{Secret, ServiceSettings, Settings};

/// Shortest operator token accepted from a file: a token is a password for
/// every mutating route.
const MIN_OPERATOR_TOKEN_CHARS: usize = 16;

/// Every accepted operator token: the inline ones and each `*_file` read now.
/// Called at boot and again on SIGHUP, so a rotated file takes effect
/// without a restart.
pub(super) fn operator_tokens(settings: &Settings) -> Result<Vec<Secret>, AppError> {
    let service = &settings.service;
    let mut tokens: Vec<Secret> = service.operator_token.iter().cloned().collect();
    tokens.extend(service.operator_tokens.iter().cloned());
    let files = service
        .operator_token_file
        .iter()
        .map(|path| ("service.operator_token_file", path))
        .chain(
            service
                .operator_token_files
                .iter()
                .map(|path| ("service.operator_token_files", path)),
        );
    for (key, path) in files {
        tokens.push(
            crate::settings::read_secret(path, MIN_OPERATOR_TOKEN_CHARS)
                .map_err(|source| AppError::Secret { key, source })?,
        );
    }
    Ok(tokens)
}

/// What the API needs from the settings, read and checked up front.
pub(super) struct ApiFront {
    pub(super) tokens: OperatorTokens,
    access: Access,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnLimits,
}

impl ApiFront {
    /// Reads the operator tokens, refuses an unprotected listener beyond
    /// loopback, and loads the access rules and the TLS certificate.
    pub(super) fn load(settings: &Arc<Settings>) -> Result<Self, AppError> {
        let service = &settings.service;
        let tokens = OperatorTokens::new(operator_tokens(settings)?);
        for warning in service.token_file_warnings() {
            tracing::warn!(warning = %warning, "An operator token file is readable by other users.");
        }
        if !service.api_listen.ip().is_loopback() && tokens.is_empty() {
            return Err(AppError::UnsafeListen(service.api_listen));
        }
        let access = Access::load(settings).map_err(|error| AppError::Setup(error.to_string()))?;
        access.reload_on_hangup(settings.clone());
        let tls = match (&service.tls_cert_file, &service.tls_key_file) {
            (Some(cert), Some(key)) => Some(
                crate::api::tls_acceptor(cert, key)
                    .map_err(|error| AppError::Setup(error.to_string()))?,
            ),
            _ => None,
        };
        let limits = ConnLimits {
            header_read_timeout: service.header_read_timeout,
            idle_timeout: service.idle_timeout,
            max_connections: fds::connection_cap(
                service.max_connections,
                fds::raise_nofile_limit(),
                fds::reserve(settings),
            ),
        };
        Ok(Self {
            tokens,
            access,
            tls,
            limits,
        })
    }

    /// The API server's arguments around the listener bound by [`bind`].
    pub(super) fn build(
        self,
        h: &Handles,
        listener: TcpListener,
        addr: SocketAddr,
        investigator: Investigator,
        chaos: Option<ChaosControl>,
        started: Instant,
    ) -> ApiServerArgs {
        let (settings, service) = (&h.settings, &h.settings.service);
        ApiServerArgs {
            listener: Arc::new(Mutex::new(Some(listener))),
            addr,
            context: ApiContext {
                // Set by boot once the log's stream is known.
                cluster: None,
                ownership: h.ownership.clone(),
                state: h.state.clone(),
                boot: h.boot.clone(),
                audit: h.audit.clone(),
                audit_dir: h.audit_dir.clone(),
                operator_tokens: h.tokens.clone(),
                shutdown: h.requested.clone(),
                dr: h.dr.clone(),
                tree: h.tree.clone(),
                call_timeout: service.call_timeout,
                started,
                probes: ProbesView {
                    settings: settings.clone(),
                    defaults: settings.probe_defaults.clone(),
                    latest: h.latest.clone(),
                    store: h.store.clone(),
                    heartbeats: h.heartbeats.clone(),
                    history: h.history.clone(),
                    debouncer: h.names.of("debouncer"),
                },
                wake: h.wake.clone(),
                investigator,
                metrics: h.metrics.clone(),
                incidents: IncidentsView {
                    store: h.incidents.clone(),
                    commander: h.names.of("incidents"),
                    dir: crate::incidents::incidents_root(&service.state_dir),
                },
                chaos,
                access: self.access,
                tls: self.tls.is_some(),
                request_timeout: service.request_timeout,
            },
            limits: self.limits,
            tls: self.tls,
        }
    }
}

/// Binds the API's address once per boot; a restarted server rebinds the
/// address this returns, so the port stays stable even for port 0.
pub(super) fn bind(service: &ServiceSettings) -> Result<(TcpListener, SocketAddr), AppError> {
    let listener = TcpListener::bind(service.api_listen).map_err(|source| AppError::Bind {
        addr: service.api_listen,
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| AppError::Bind {
        addr: service.api_listen,
        source,
    })?;
    Ok((listener, addr))
}
