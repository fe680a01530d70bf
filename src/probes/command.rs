//! `command`: run an argv (no shell), judge by exit code.
//!
//! The child runs in its own process group so a timeout kills everything it
//! started (`sh -c "sleep 30"` included). stdout and stderr are read up to
//! [`MAX_OUTPUT`] each; the rest is drained and discarded so the child never
//! blocks on a full pipe. When the main process exits, whatever is left of
//! its group is killed too: a health check must not leave daemons behind, and
//! a straggler holding the pipes open would otherwise stall the check.
//! The child is always reaped.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::check::{ProbeError, timed_out};
use super::facts::{CheckOutcome, Facts};
use crate::messages::Health;
use crate::settings::ProbeSettings;

/// Most of stdout (and of stderr) kept per run.
const MAX_OUTPUT: usize = 64 * 1024;

/// A stderr line longer than this is left out of the reason.
const MAX_REASON_LINE: usize = 200;

/// How long reaping may take once the group got SIGKILL.
const REAP_GRACE: Duration = Duration::from_millis(50);

pub(crate) struct CommandCheck {
    argv: Vec<String>,
}

/// Kills the process group when dropped while armed, so a run cancelled by
/// its caller (actor stopping) does not leak the child's group.
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

/// Output read so far from one pipe.
#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

impl CommandCheck {
    pub(crate) fn build(probe: &ProbeSettings) -> Result<Self, ProbeError> {
        if probe
            .command
            .first()
            .is_none_or(|program| program.is_empty())
        {
            return Err(ProbeError::MissingField {
                probe: probe.name.clone(),
                kind: "command",
                field: "command",
            });
        }
        Ok(Self {
            argv: probe.command.clone(),
        })
    }

    pub(crate) async fn run(&self, timeout: Duration) -> CheckOutcome {
        let Some((program, args)) = self.argv.split_first() else {
            return CheckOutcome::failed(Facts::default(), "no command to run");
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
            Err(err) => return CheckOutcome::failed(Facts::default(), spawn_error(program, &err)),
        };
        let mut group = GroupGuard(
            child
                .id()
                .and_then(|pid| i32::try_from(pid).ok())
                .map(Pid::from_raw),
        );
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut out = Captured::default();
        let mut err = Captured::default();

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
        let status = tokio::time::timeout(timeout, work).await;

        let finished = match status {
            Ok(status) => Some(status),
            Err(_) => {
                group.kill();
                // SIGKILL cannot be caught: reaping is immediate in practice.
                // If not, kill_on_drop plus tokio's orphan reaping finish it.
                let _ = tokio::time::timeout(REAP_GRACE, child.wait()).await;
                None
            }
        };
        let facts = Facts {
            body: Some(out.text()),
            body_truncated: out.truncated,
            stderr: Some(err.text()),
            ..Facts::default()
        };
        match finished {
            None => {
                let reason = format!("{} (process killed)", timed_out(timeout));
                CheckOutcome::failed(facts, with_stderr(reason, &err))
            }
            Some(Err(error)) => {
                CheckOutcome::failed(facts, format!("waiting for {program} failed: {error}"))
            }
            Some(Ok(status)) => judge(facts, status, &err),
        }
    }
}

fn judge(mut facts: Facts, status: ExitStatus, stderr: &Captured) -> CheckOutcome {
    use std::os::unix::process::ExitStatusExt;

    facts.exit_code = status.code();
    match status.code() {
        Some(0) => CheckOutcome::healthy(facts),
        Some(1) => CheckOutcome::with(
            facts,
            Health::Degraded,
            with_stderr("exited with 1".into(), stderr),
        ),
        Some(code) => CheckOutcome::with(
            facts,
            Health::Unhealthy,
            with_stderr(format!("exited with {code}"), stderr),
        ),
        None => {
            let reason = match status.signal() {
                Some(signal) => format!("killed by signal {signal}"),
                None => format!("ended abnormally ({status})"),
            };
            CheckOutcome::with(facts, Health::Unhealthy, with_stderr(reason, stderr))
        }
    }
}

/// Appends stderr's last non-empty line when it is short enough to read.
fn with_stderr(reason: String, stderr: &Captured) -> String {
    let text = stderr.text();
    match text
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
    {
        Some(line) if line.chars().count() <= MAX_REASON_LINE => format!("{reason}: {line}"),
        _ => reason,
    }
}

fn spawn_error(program: &str, err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => format!("cannot run {program}: command not found"),
        io::ErrorKind::PermissionDenied => format!("cannot run {program}: permission denied"),
        _ => format!("cannot run {program}: {err}"),
    }
}

/// Reads `pipe` into `into` up to [`MAX_OUTPUT`], then drains the rest.
/// Stops at EOF or on a read error (the exit status tells the story).
async fn read_bounded(pipe: Option<impl AsyncRead + Unpin>, into: &mut Captured) {
    let Some(mut pipe) = pipe else { return };
    let mut chunk = vec![0_u8; 16 * 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                let room = MAX_OUTPUT.saturating_sub(into.bytes.len());
                let keep = read.min(room);
                into.bytes
                    .extend_from_slice(chunk.get(..keep).unwrap_or_default());
                if keep < read {
                    into.truncated = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
