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
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use super::{excerpt, millis};
use crate::settings::{FixActionSettings, FixKind};

/// Default for `fix.action.timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Most of `output_excerpt`, in bytes.
pub const MAX_EXCERPT: usize = 2 * 1024;

/// Most of each pipe (or HTTP body) read before the rest is discarded.
const MAX_READ: usize = 64 * 1024;

/// How long reaping may take once the group got SIGKILL.
const REAP_GRACE: Duration = Duration::from_millis(50);

/// Restarts a managed component's process; the coordinator implements it.
///
/// Returns a short description of what was done, or why it failed.
pub trait RestartHook: Send + Sync {
    /// Restart the process now.
    fn restart(&self) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + '_>>;
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
            Ok(Err(error)) => (false, String::new(), Some(error)),
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

/// Kills the process group when dropped while armed, so a fix cancelled by
/// its caller does not leak the child's group.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // ESRCH (the group is already gone) is the common, fine case.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn run_command(argv: &[String], timeout: Duration) -> (bool, String, Option<String>) {
    let Some((program, args)) = argv.split_first().filter(|(p, _)| !p.is_empty()) else {
        return (false, String::new(), Some("no command to run".to_owned()));
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return (
                false,
                String::new(),
                Some(format!("cannot run {program}: {error}")),
            );
        }
    };
    let mut group = GroupGuard(
        child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .map(Pid::from_raw),
    );
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let work = async {
        let wait = async {
            let status = child.wait().await;
            // The leader is done: end its stragglers so the pipes close.
            group.kill();
            status
        };
        let (status, (), ()) = tokio::join!(
            wait,
            read_bounded(stdout, &mut out),
            read_bounded(stderr, &mut err)
        );
        status
    };
    let finished = tokio::time::timeout(timeout, work).await;
    let finished = match finished {
        Ok(status) => Some(status),
        Err(_) => {
            group.kill();
            let _ = tokio::time::timeout(REAP_GRACE, child.wait()).await;
            None
        }
    };
    let mut output = String::from_utf8_lossy(&out).into_owned();
    output.push_str(&String::from_utf8_lossy(&err));
    match finished {
        None => (
            false,
            output,
            Some(format!(
                "timed out after {} (process group killed)",
                humantime::format_duration(timeout)
            )),
        ),
        Some(Err(error)) => (
            false,
            output,
            Some(format!("waiting for {program} failed: {error}")),
        ),
        Some(Ok(status)) if status.success() => (true, output, None),
        Some(Ok(status)) => {
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

/// Reads `pipe` into `into` up to [`MAX_READ`], then drains the rest.
async fn read_bounded(pipe: Option<impl AsyncRead + Unpin>, into: &mut Vec<u8>) {
    let Some(mut pipe) = pipe else { return };
    let mut chunk = vec![0_u8; 16 * 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                let keep = read.min(MAX_READ.saturating_sub(into.len()));
                into.extend_from_slice(chunk.get(..keep).unwrap_or_default());
            }
        }
    }
}

async fn run_http(
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
        request = request.header(name, value);
    }
    if let Some(body) = &action.body {
        request = request.body(body.clone());
    }
    let call = async {
        let mut response = crate::telemetry::trace::inject(request)
            .send()
            .await
            .map_err(|e| describe(&e, timeout))?;
        let status = response.status();
        let mut body = Vec::new();
        while body.len() < MAX_READ {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(error) => return Err(describe(&error, timeout)),
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

fn describe(error: &reqwest::Error, timeout: Duration) -> String {
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
