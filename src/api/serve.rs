//! The accept loop behind the API, in place of `axum::serve`, so that a
//! hostile or careless client cannot exhaust the process: every connection
//! has a header deadline and an idle deadline, at most `max_connections` are
//! open at once, and TLS (when configured) is negotiated here too.
//!
//! At the cap, a new connection first evicts the connection that has been
//! idle (or stuck sending headers) the longest, as nginx drains keep-alive
//! connections when it runs out of them: otherwise a few thousand idle
//! sockets would keep `/api/health` out. Only when every connection is busy
//! with a request does the next one wait in the kernel's backlog.
//!
//! hyper's own header timer starts again whenever a connection waits for a
//! request, so it would also close idle keep-alive connections; the two
//! deadlines are kept here instead, from what the connection actually does.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, oneshot, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// The per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// From the first byte of a request (or the TLS hello) to its last header.
    pub header_read_timeout: Duration,
    /// With no request in flight and no bytes arriving.
    pub idle_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Largest read buffer of one HTTP/1 connection: headers beyond it are
/// refused (431) instead of growing the buffer, so a client cannot make each
/// of its connections hold hyper's default ~400 KiB.
const MAX_CONN_BUFFER: usize = 64 * 1024;
/// How long finished requests on a closing connection may take to be written.
const CLOSE_GRACE: Duration = Duration::from_secs(3);
/// Pause after an accept error such as EMFILE, so a full descriptor table
/// does not turn the loop into a busy spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What one connection is doing, for its deadlines and for eviction.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request, since then.
    Idle(Instant),
    /// Bytes of a request have arrived since then, but not all its headers.
    Headers(Instant),
    /// A request is in flight.
    Busy,
}

#[derive(Debug)]
struct Clock {
    phase: Phase,
    in_flight: usize,
}

/// Shared between a connection's I/O, its service and its watchdog.
#[derive(Debug)]
struct ConnState {
    clock: Mutex<Clock>,
    /// Ends the connection at once (eviction).
    evict: Notify,
    /// The deadline moved earlier (a request began): the watchdog looks again.
    sooner: Notify,
}

impl ConnState {
    fn new() -> Self {
        Self {
            clock: Mutex::new(Clock {
                phase: Phase::Idle(Instant::now()),
                in_flight: 0,
            }),
            evict: Notify::new(),
            sooner: Notify::new(),
        }
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bytes_arrived(&self) {
        let mut clock = self.clock();
        if let Phase::Idle(_) = clock.phase {
            clock.phase = Phase::Headers(Instant::now());
            drop(clock);
            self.sooner.notify_one();
        }
    }

    fn request_started(&self) {
        let mut clock = self.clock();
        clock.in_flight += 1;
        clock.phase = Phase::Busy;
    }

    fn request_ended(&self) {
        let mut clock = self.clock();
        clock.in_flight = clock.in_flight.saturating_sub(1);
        if clock.in_flight == 0 {
            clock.phase = Phase::Idle(Instant::now());
        }
    }

    /// Waiting for a request from now on (a TLS handshake just finished).
    fn idle_now(&self) {
        self.clock().phase = Phase::Idle(Instant::now());
    }

    /// When the connection is not busy, since when it has been waiting.
    fn waiting_since(&self) -> Option<Instant> {
        match self.clock().phase {
            Phase::Idle(since) | Phase::Headers(since) => Some(since),
            Phase::Busy => None,
        }
    }

    /// When the current phase's deadline passes (`None` while busy).
    fn deadline(&self, limits: &ConnLimits) -> Option<Instant> {
        match self.clock().phase {
            Phase::Idle(since) => Some(since + limits.idle_timeout),
            Phase::Headers(since) => Some(since + limits.header_read_timeout),
            Phase::Busy => None,
        }
    }
}

/// Marks a request finished when its response future completes or is dropped.
struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A stream that tells its connection when bytes arrive.
struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.bytes_arrived();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The open connections, for eviction.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
}

impl Registry {
    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, state: Arc<ConnState>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open().insert(id, state);
        id
    }

    fn remove(&self, id: u64) {
        self.open().remove(&id);
    }

    /// Ends the connection that has waited the longest; false if all are busy.
    fn evict_one(&self) -> bool {
        let open = self.open();
        let victim = open
            .values()
            .filter_map(|state| state.waiting_since().map(|since| (since, state)))
            .min_by_key(|(since, _)| *since);
        match victim {
            Some((_, state)) => {
                state.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `router` on `listener` until `stop` resolves, then lets open
/// requests finish (the caller bounds how long).
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    tls: Option<TlsAcceptor>,
    stop: oneshot::Receiver<()>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let registry = Arc::new(Registry::default());
    let (closing_tx, closing) = watch::channel(false);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(MAX_CONN_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64);
    let builder = Arc::new(builder);
    let service = TowerToHyperService::new(router);
    tokio::pin!(stop);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE, ECONNABORTED and friends concern one attempt or
                    // a passing shortage, never the listener itself.
                    tracing::debug!(error = %error, "accept failed; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Room is made only for a client that is actually there, so the
        // cap holds at most one accepted connection more while it waits.
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                registry.evict_one();
                tokio::select! {
                    permit = slots.clone().acquire_owned() => permit.map_err(io::Error::other)?,
                    _ = &mut stop => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState::new());
        let id = registry.add(state.clone());
        let connection = Connection {
            builder: builder.clone(),
            service: service.clone(),
            state,
            limits,
            closing: closing.clone(),
        };
        let registry = registry.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            connection.run(stream, tls).await;
            registry.remove(id);
            drop(permit);
        });
    }
    let _ = closing_tx.send(true);
    // Wait for every connection to finish its request and close.
    let _ = slots
        .acquire_many(u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX))
        .await;
    Ok(())
}

struct Connection {
    builder: Arc<Builder<TokioExecutor>>,
    service: TowerToHyperService<Router>,
    state: Arc<ConnState>,
    limits: ConnLimits,
    closing: watch::Receiver<bool>,
}

impl Connection {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let tracked = Tracked {
            inner: stream,
            state: self.state.clone(),
        };
        match tls {
            None => self.http(tracked).await,
            Some(acceptor) => {
                // The handshake counts as reading headers: a client that
                // opens a TLS connection and stalls is cut at the same deadline.
                self.state.bytes_arrived();
                let handshake = tokio::select! {
                    done = tokio::time::timeout(self.limits.header_read_timeout, acceptor.accept(tracked)) => done,
                    () = self.state.evict.notified() => return,
                };
                match handshake {
                    Ok(Ok(stream)) => {
                        self.state.idle_now();
                        self.http(stream).await;
                    }
                    Ok(Err(error)) => tracing::debug!(error = %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            }
        }
    }

    async fn http<S>(mut self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let state = self.state.clone();
        let inner = self.service.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            state.request_started();
            let in_flight = InFlight(state.clone());
            let response = hyper::service::Service::call(&inner, request);
            async move {
                let response = response.await;
                drop(in_flight);
                response
            }
        });
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(connection);
        loop {
            let deadline = self.state.deadline(&self.limits);
            // While busy there is no deadline; look again a little later.
            let wake = deadline.unwrap_or_else(|| {
                Instant::now()
                    + self
                        .limits
                        .idle_timeout
                        .min(self.limits.header_read_timeout)
            });
            tokio::select! {
                _ = connection.as_mut() => return,
                () = tokio::time::sleep_until(wake) => {
                    if self.state.deadline(&self.limits).is_some_and(|d| d <= Instant::now()) {
                        return;
                    }
                }
                () = self.state.evict.notified() => {
                    if self.state.waiting_since().is_some() {
                        return;
                    }
                }
                () = self.state.sooner.notified() => {}
                changed = self.closing.changed() => {
                    if changed.is_err() || *self.closing.borrow() {
                        connection.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(CLOSE_GRACE, connection.as_mut()).await;
                        return;
                    }
                }
            }
        }
    }
}

/// A TLS certificate or key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error("cannot load {key} from {path}: {reason}")]
    Pem {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the certificate and key together.
    #[error("the TLS certificate and key do not make a server config: {0}")]
    Config(String),
}

/// The TLS acceptor for `service.tls_cert_file` and `service.tls_key_file`
/// (PEM; the chain in order, leaf first), offering HTTP/2 and HTTP/1.1.
pub fn tls_acceptor(
    cert_file: &std::path::Path,
    key_file: &std::path::Path,
) -> Result<TlsAcceptor, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let pem = |key: &'static str, path: &std::path::Path, reason: String| TlsError::Pem {
        key,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| pem("service.tls_cert_file", cert_file, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem("service.tls_cert_file", cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem(
            "service.tls_cert_file",
            cert_file,
            "no CERTIFICATE block".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| pem("service.tls_key_file", key_file, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
