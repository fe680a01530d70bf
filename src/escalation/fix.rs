//! Runs one fix action and reports what happened as data.
//!
//! - `restart` asks the coordinator's [`RestartHook`] (the managed process).
//! - `command` runs an argv (no shell) in its own process group; on timeout
//!   the whole group is killed, and output is read up to a bound so the child
//!   never blocks on a full pipe. Exit 0 is success.
//! - `http` sends `method` (default `POST`) with the headers and body to the
//!   URL; a 2xx status is success.
//!
//! A failed fix is an outcome, never an `Err`: the ladder decides what next.
//! The command runner follows `probes::command` (same process-group kill and
//! bounded reads) but keeps its own copy, because a fix reports an excerpt of
//! stdout and stderr together rather than probe facts.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use super::{excerpt, millis};
use crate::process::Ended;
use crate::settings::{FixActionSettings, FixKind, SecretUrl, scrub};

/// Default for `fix.action.timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Most of `output_excerpt`, in bytes.
pub const MAX_EXCERPT: usize = 2 * 1024;

/// Most of an HTTP body read before the rest is discarded (as for a pipe).
const MAX_READ: usize = crate::process::MAX_OUTPUT;

/// Why a `restart` fix did not restart anything. Its text becomes the
/// outcome's `error`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RestartFailed {
    /// The component has no `run`, so nothing to restart.
    #[error("the component has no managed process")]
    NotManaged,
    /// The managed process actor is not registered (stopped, restarting).
    #[error("managed process {0} is not running")]
    NotRunning(String),
    /// The call to the actor failed or timed out.
    #[error("restart call failed: {0}")]
    Call(String),
    /// The actor answered that the restart failed.
    #[error(transparent)]
    Restart(#[from] crate::managed::RestartError),
}

/// Restarts a managed component's process; the coordinator implements it.
///
/// Returns a short description of what was done, or why it failed.
pub trait RestartHook: Send + Sync {
    /// Restart the process now.
    fn restart(&self) -> Pin<Box<dyn Future<Output = Result<String, RestartFailed>> + Send + '_>>;
}

/// What one fix attempt did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FixOutcome {
    /// Whether the action succeeded (exit 0, 2xx, restart done). Whether the
    /// component is healthy again is for the coordinator to verify.
    pub ok: bool,
    /// How long the action took.
    pub duration_ms: u64,
    /// At most [`MAX_EXCERPT`] bytes: stdout then stderr for `command`, the
    /// status line then the body for `http`, the hook's message for `restart`.
    pub output_excerpt: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// Runs `action` once. `http` is the client for `http` actions; `restart` is
/// called for `restart` actions.
pub async fn run_fix(
    action: &FixActionSettings,
    http: &reqwest::Client,
    restart: &dyn RestartHook,
) -> FixOutcome {
    let started = Instant::now();
    let timeout = action.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let (ok, output, error) = match action.kind {
        None => (
            false,
            String::new(),
            Some("no fix action kind set".to_owned()),
        ),
        Some(FixKind::Restart) => match tokio::time::timeout(timeout, restart.restart()).await {
            Ok(Ok(message)) => (true, message, None),
            Ok(Err(error)) => (false, String::new(), Some(error.to_string())),
            Err(_) => (
                false,
                String::new(),
                Some(format!(
                    "restart timed out after {}",
                    humantime::format_duration(timeout)
                )),
            ),
        },
        Some(FixKind::Command) => run_command(&action.command, timeout).await,
        Some(FixKind::Http) => run_http(action, http, timeout).await,
    };
    FixOutcome {
        ok,
        duration_ms: millis(started.elapsed()),
        output_excerpt: excerpt(&output, MAX_EXCERPT),
        error,
    }
}

async fn run_command(argv: &[String], timeout: Duration) -> (bool, String, Option<String>) {
    let Some((program, args)) = argv.split_first().filter(|(p, _)| !p.is_empty()) else {
        return (false, String::new(), Some("no command to run".to_owned()));
    };
    let run = crate::process::run(program, args, timeout).await;
    let mut output = run.stdout.text();
    output.push_str(&run.stderr.text());
    match run.ended {
        Ended::SpawnFailed(error) => (
            false,
            String::new(),
            Some(format!("cannot run {program}: {error}")),
        ),
        Ended::TimedOut => (
            false,
            output,
            Some(format!(
                "timed out after {} (process group killed)",
                humantime::format_duration(timeout)
            )),
        ),
        Ended::WaitFailed(error) => (
            false,
            output,
            Some(format!("waiting for {program} failed: {error}")),
        ),
        Ended::Exited(status) if status.success() => (true, output, None),
        Ended::Exited(status) => {
            use std::os::unix::process::ExitStatusExt;
            let reason = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exited with {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                (None, None) => format!("ended abnormally ({status})"),
            };
            (false, output, Some(reason))
        }
    }
}

/// [`exchange`] with every configured header value and the URL's secret
/// parts blanked out of the output and the error: the endpoint may echo
/// them, and both are recorded.
async fn run_http(
    action: &FixActionSettings,
    http: &reqwest::Client,
    timeout: Duration,
) -> (bool, String, Option<String>) {
    let (ok, output, error) = exchange(action, http, timeout).await;
    let parts = action
        .url
        .as_deref()
        .map(|url| SecretUrl::new(url).secret_parts())
        .unwrap_or_default();
    let secrets: Vec<&str> = parts
        .iter()
        .map(String::as_str)
        .chain(action.headers.values().map(|value| value.expose()))
        .collect();
    (
        ok,
        scrub(&output, secrets.iter().copied()),
        error.map(|error| scrub(&error, secrets.iter().copied())),
    )
}

async fn exchange(
    action: &FixActionSettings,
    http: &reqwest::Client,
    timeout: Duration,
) -> (bool, String, Option<String>) {
    let Some(url) = action.url.as_deref() else {
        return (false, String::new(), Some("no url to call".to_owned()));
    };
    let method = action.method.as_deref().unwrap_or("POST");
    let method = match reqwest::Method::from_bytes(method.as_bytes()) {
        Ok(method) => method,
        Err(_) => {
            return (
                false,
                String::new(),
                Some(format!("\"{method}\" is not an HTTP method")),
            );
        }
    };
    let mut request = http.request(method, url).timeout(timeout);
    for (name, value) in &action.headers {
        request = request.header(name, value.expose());
    }
    if let Some(body) = &action.body {
        request = request.body(body.clone());
    }
    let call = async {
        let mut response = crate::telemetry::trace::inject(request)
            .send()
            .await
            .map_err(|e| describe(e, timeout))?;
        let status = response.status();
        let mut body = Vec::new();
        while body.len() < MAX_READ {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(error) => return Err(describe(error, timeout)),
            }
        }
        Ok((status, body))
    };
    match tokio::time::timeout(timeout, call).await {
        Err(_) => (
            false,
            String::new(),
            Some(format!(
                "timed out after {}",
                humantime::format_duration(timeout)
            )),
        ),
        Ok(Err(error)) => (false, String::new(), Some(error)),
        Ok(Ok((status, body))) => {
            let output = format!("{status}\n{}", String::from_utf8_lossy(&body));
            if status.is_success() {
                (true, output, None)
            } else {
                (false, output, Some(format!("status {}", status.as_u16())))
            }
        }
    }
}

/// A transport error without its URL (the URL may hold a credential).
fn describe(error: reqwest::Error, timeout: Duration) -> String {
    let error = error.without_url();
    if error.is_timeout() {
        format!("timed out after {}", humantime::format_duration(timeout))
    } else if error.is_connect() {
        format!("connection failed: {error}")
    } else {
        format!("request failed: {error}")
    }
}

#[cfg(test)]
mod tests;
