//! `ApiServer`: the actor that owns the HTTP server task.
//!
//! In: [`ApiServerMsg::ServerExited`] from its own serve task (the server died
//! underneath it, so the actor fails and its supervisor restarts it).
//! Out: nothing; it serves [`super::router`] through the accept loop in
//! `serve.rs`. On stop it lets in-flight requests finish, bounded by a grace
//! period, then aborts the task.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::ApiContext;
use crate::tasks::AbortOnDrop;

/// The listener `app/api.rs` binds once; the first server instance takes it, and
/// a restarted instance binds the same address again (the port stays stable
/// even when the configured port was 0).
pub type SharedListener = Arc<Mutex<Option<std::net::TcpListener>>>;

/// How long in-flight requests get to finish when the server stops.
const GRACE: Duration = Duration::from_secs(3);
/// How long a restarted server keeps trying to rebind while the old
/// instance's socket is being released.
const REBIND_FOR: Duration = Duration::from_secs(2);
const REBIND_EVERY: Duration = Duration::from_millis(20);

async fn rebind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let deadline = tokio::time::Instant::now() + REBIND_FOR;
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Err(error)
                if error.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(REBIND_EVERY).await;
            }
            result => return result,
        }
    }
}

/// Arguments, cloneable so a supervisor can respawn the server from its spec.
#[derive(Clone)]
pub struct ApiServerArgs {
    /// The pre-bound listener, taken by the first instance.
    pub listener: SharedListener,
    /// The address actually bound, for rebinding after a restart.
    pub addr: SocketAddr,
    /// Handler state.
    pub context: ApiContext,
    /// Header/idle deadlines and the connection cap.
    pub limits: super::ConnLimits,
    /// The TLS acceptor when the API serves HTTPS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Messages to the server actor.
#[derive(Debug)]
pub enum ApiServerMsg {
    /// The serve task ended without being asked to.
    ServerExited(String),
}

/// The running server.
pub struct ApiServerState {
    /// Taken by `post_stop` to give in-flight requests their grace period.
    task: Option<JoinHandle<()>>,
    /// A killed actor skips `post_stop` but still drops its state, so this
    /// is what frees the port after a kill.
    _serve: AbortOnDrop,
    stop: Option<oneshot::Sender<()>>,
}

/// The HTTP server actor.
pub struct ApiServer;

impl Actor for ApiServer {
    type Msg = ApiServerMsg;
    type State = ApiServerState;
    type Arguments = ApiServerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ApiServerArgs,
    ) -> Result<ApiServerState, ActorProcessingErr> {
        let taken = args
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let listener = match taken {
            Some(std_listener) => {
                std_listener.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(std_listener)?
            }
            None => rebind(args.addr).await?,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let router = super::router(args.context);
        let (limits, tls) = (args.limits, args.tls.clone());
        let task = tokio::spawn(async move {
            let served = super::serve::serve(listener, router, limits, tls, stopped).await;
            let reason = match served {
                Ok(()) => "the server stopped".to_owned(),
                Err(error) => format!("the server failed: {error}"),
            };
            // Only reaches a live actor when the stop was not requested.
            let _ = myself.send_message(ApiServerMsg::ServerExited(reason));
        });
        tracing::info!(addr = %args.addr, tls = args.tls.is_some(), max_connections = args.limits.max_connections, "API listening.");
        Ok(ApiServerState {
            _serve: AbortOnDrop::new(&task),
            task: Some(task),
            stop: Some(stop),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: ApiServerMsg,
        _state: &mut ApiServerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ApiServerMsg::ServerExited(reason) => Err(reason.into()),
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut ApiServerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(stop) = state.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = state.task.take()
            && tokio::time::timeout(GRACE, &mut task).await.is_err()
        {
            tracing::warn!(grace = ?GRACE, "API requests still running after the grace period; aborting them.");
            task.abort();
        }
        Ok(())
    }
}
