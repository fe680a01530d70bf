//! `warden demo-target`: a small HTTP service that tests, benchmarks and the
//! default config can supervise, with routes that make it fail on demand.
//!
//! | route | effect |
//! | --- | --- |
//! | `GET /health` | 200 `{"status":"ok"}`; 503 `{"status":"failing"}` when failing; never answers when hanging |
//! | `POST /control/fail` | `/health` answers 503 from now on |
//! | `POST /control/recover` | back to 200 (also releases hanging requests) |
//! | `POST /control/hang` | `/health` never answers until recovered |
//! | `POST /control/exit?code=N` | answers, then the process exits with `N` (default 1) |
//! | `GET /control/state` | `{"mode": .., "pid": .., "requests": ..}` |
//!
//! With a state file the mode (`ok`, `failing`, `hang` or `exit`, one word) is
//! read at startup and written on every change, so a *restarted* process comes
//! up in the mode its predecessor was put in. `exit` in the file makes the
//! process exit with [`STARTUP_EXIT_CODE`] at once: a crash loop on demand.
//! `POST /control/exit` is one-shot and is not written to the file.
//!
//! One line per request goes to stdout (`<method> <path> <status>`), plus a
//! `demo-target listening on <addr>` line at startup, so a supervisor's
//! output capture can learn the port.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Exit code of a process that starts with `exit` in its state file.
pub const STARTUP_EXIT_CODE: i32 = 3;

/// What can stop the demo target.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The state file could not be read or written.
    #[error("state file {path}: {source}")]
    StateFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The state file holds something other than a mode.
    #[error("state file {path}: unknown mode {mode:?} (ok, failing, hang or exit)")]
    BadMode {
        /// The file.
        path: PathBuf,
        /// What it held.
        mode: String,
    },
    /// Serving failed.
    #[error("serving failed: {0}")]
    Serve(std::io::Error),
    /// The process was asked to exit with this code (`/control/exit`, or
    /// `exit` in the state file at startup); `main` exits with it.
    #[error("exit requested with code {code}")]
    Exit {
        /// The exit code asked for.
        code: i32,
    },
}

/// How `/health` behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// 200.
    Ok,
    /// 503.
    Failing,
    /// No answer.
    Hang,
    /// Exit at startup (state file only).
    Exit,
}

impl Mode {
    /// The word used in the state file and in `/control/state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failing => "failing",
            Self::Hang => "hang",
            Self::Exit => "exit",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        match word.trim() {
            "" | "ok" => Some(Self::Ok),
            "failing" => Some(Self::Failing),
            "hang" => Some(Self::Hang),
            "exit" => Some(Self::Exit),
            _ => None,
        }
    }
}

/// Shared by the handlers.
struct Shared {
    mode: watch::Sender<Mode>,
    /// Set once when the server stops, so hanging requests end and the
    /// graceful shutdown does not wait for them forever.
    stopping: watch::Sender<bool>,
    /// Set by `/control/exit`.
    exit_code: watch::Sender<Option<i32>>,
    state_file: Option<PathBuf>,
    requests: AtomicU64,
}

impl Shared {
    fn set_mode(&self, mode: Mode) -> Result<(), DemoError> {
        self.mode.send_replace(mode);
        match &self.state_file {
            Some(path) => write_mode(path, mode),
            None => Ok(()),
        }
    }
}

/// Reads the mode from `path`; a missing file means `ok`.
pub fn read_mode(path: &Path) -> Result<Mode, DemoError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Mode::parse(&text).ok_or_else(|| DemoError::BadMode {
            path: path.to_owned(),
            mode: text.trim().to_owned(),
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Mode::Ok),
        Err(source) => Err(DemoError::StateFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `mode` to `path` (one word and a newline).
pub fn write_mode(path: &Path, mode: Mode) -> Result<(), DemoError> {
    std::fs::write(path, format!("{}\n", mode.as_str())).map_err(|source| DemoError::StateFile {
        path: path.to_owned(),
        source,
    })
}

/// Binds `listen` and serves until `shutdown` resolves (`Ok`) or an exit is
/// requested ([`DemoError::Exit`]).
pub async fn serve(
    listen: SocketAddr,
    state_file: Option<PathBuf>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    // An `exit` state file must exit before binding: that is the crash loop.
    initial_mode(state_file.as_deref())?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| DemoError::Bind {
            addr: listen,
            source,
        })?;
    serve_listener(listener, state_file, shutdown).await
}

/// Like [`serve`] on a listener the caller bound (tests bind `127.0.0.1:0`).
pub async fn serve_listener(
    listener: TcpListener,
    state_file: Option<PathBuf>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    let mode = initial_mode(state_file.as_deref())?;
    let shared = Arc::new(Shared {
        mode: watch::Sender::new(mode),
        stopping: watch::Sender::new(false),
        exit_code: watch::Sender::new(None),
        state_file,
        requests: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/health", get(health))
        .route("/control/fail", post(fail))
        .route("/control/recover", post(recover))
        .route("/control/hang", post(hang))
        .route("/control/exit", post(exit))
        .route("/control/state", get(state))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            log_request,
        ))
        .with_state(shared.clone());
    if let Ok(addr) = listener.local_addr() {
        println!("demo-target listening on {addr}");
    }
    let stop = {
        let shared = shared.clone();
        let mut exit_rx = shared.exit_code.subscribe();
        async move {
            tokio::select! {
                () = shutdown => {}
                _ = exit_rx.wait_for(Option::is_some) => {}
            }
            shared.stopping.send_replace(true);
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .map_err(DemoError::Serve)?;
    match *shared.exit_code.borrow() {
        Some(code) => Err(DemoError::Exit { code }),
        None => Ok(()),
    }
}

fn initial_mode(state_file: Option<&Path>) -> Result<Mode, DemoError> {
    let mode = match state_file {
        Some(path) => read_mode(path)?,
        None => Mode::Ok,
    };
    if mode == Mode::Exit {
        println!("demo-target state file says exit; exiting with {STARTUP_EXIT_CODE}");
        return Err(DemoError::Exit {
            code: STARTUP_EXIT_CODE,
        });
    }
    Ok(mode)
}

async fn log_request(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    println!("{method} {path} {}", response.status().as_u16());
    response
}

fn status_body(mode: Mode) -> Response {
    match mode {
        Mode::Ok => Json(serde_json::json!({ "status": "ok" })).into_response(),
        Mode::Failing | Mode::Hang | Mode::Exit => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "failing" })),
        )
            .into_response(),
    }
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let mut mode_rx = shared.mode.subscribe();
    let mode = *mode_rx.borrow_and_update();
    if mode != Mode::Hang {
        return status_body(mode);
    }
    let mut stopping = shared.stopping.subscribe();
    tokio::select! {
        changed = mode_rx.wait_for(|mode| *mode != Mode::Hang) => match changed {
            Ok(mode) => status_body(*mode),
            Err(_) => status_body(Mode::Failing),
        },
        _ = stopping.wait_for(|stopping| *stopping) => status_body(Mode::Failing),
    }
}

fn control(shared: &Shared, mode: Mode) -> Response {
    match shared.set_mode(mode) {
        Ok(()) => Json(serde_json::json!({ "mode": mode.as_str() })).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn fail(State(shared): State<Arc<Shared>>) -> Response {
    control(&shared, Mode::Failing)
}

async fn recover(State(shared): State<Arc<Shared>>) -> Response {
    control(&shared, Mode::Ok)
}

async fn hang(State(shared): State<Arc<Shared>>) -> Response {
    control(&shared, Mode::Hang)
}

#[derive(Debug, Deserialize)]
struct ExitQuery {
    code: Option<i32>,
}

async fn exit(State(shared): State<Arc<Shared>>, Query(query): Query<ExitQuery>) -> Response {
    let code = query.code.unwrap_or(1);
    // The graceful shutdown lets this response finish before serve returns.
    shared.exit_code.send_replace(Some(code));
    Json(serde_json::json!({ "exiting": code })).into_response()
}

async fn state(State(shared): State<Arc<Shared>>) -> Response {
    let mode = *shared.mode.borrow();
    Json(serde_json::json!({
        "mode": mode.as_str(),
        "pid": std::process::id(),
        "requests": shared.requests.load(Ordering::Relaxed),
    }))
    .into_response()
}

#[cfg(test)]
mod tests;
