//! Running a short-lived argv under a time limit, as probes (`command`) and
//! fix envelopes (`command` action) both do.
//!
//! The child runs in its own process group so a timeout kills everything it
//! started (`sh -c "sleep 30"` included). stdout and stderr are read up to
//! [`MAX_OUTPUT`] each; the rest is drained and discarded so the child never
//! blocks on a full pipe. When the main process exits, whatever is left of
//! its group is killed too: a straggler holding the pipes open would
//! otherwise stall the caller. The child is always reaped, and a run
//! cancelled by its caller kills the group on drop.
//!
//! No child Warden starts (probe, fix command, managed process) sees
//! Warden's own configuration variables: [`scrub_env`] removes every
//! `WARDEN__*` variable (the config layer, where operator tokens and other
//! secrets may sit) and the CLI's token variable, so a child cannot read a
//! secret from its environment or print it into probe output.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};

mod parent_death;

pub(crate) use parent_death::kill_with_parent;

/// Prefix of the variables the config layer reads (`WARDEN__SERVICE__...`).
const CONFIG_ENV_PREFIX: &str = "WARDEN__";

/// Removes Warden's configuration variables from what `command`'s child
/// inherits: every `WARDEN__*` plus the CLI's operator token variable.
pub(crate) fn scrub_env(command: &mut tokio::process::Command) {
    for (key, _) in std::env::vars_os() {
        let secret = key.to_str().is_some_and(|key| {
            key.starts_with(CONFIG_ENV_PREFIX) || key == crate::incidents::client::TOKEN_ENV
        });
        if secret {
            command.env_remove(&key);
        }
    }
}

/// Most of stdout (and of stderr) kept per run.
pub(crate) const MAX_OUTPUT: usize = 64 * 1024;

/// How long reaping may take once the group got SIGKILL.
const REAP_GRACE: Duration = Duration::from_millis(50);

/// Output read from one pipe.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub(crate) bytes: Vec<u8>,
    pub(crate) truncated: bool,
}

impl Captured {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// How a run ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The program could not be started.
    SpawnFailed(io::Error),
    /// The time limit passed; the group was killed.
    TimedOut,
    /// Waiting for the child failed.
    WaitFailed(io::Error),
    /// The child exited (or was killed by a signal).
    Exited(ExitStatus),
}

/// One run's outcome and output.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) ended: Ended,
    pub(crate) stdout: Captured,
    pub(crate) stderr: Captured,
}

/// Kills the process group when dropped while armed.
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

/// Runs `program` with `args` (no shell), bounded by `timeout`.
pub(crate) async fn run(program: &str, args: &[String], timeout: Duration) -> Run {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    scrub_env(&mut command);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return Run {
                ended: Ended::SpawnFailed(error),
                stdout: Captured::default(),
                stderr: Captured::default(),
            };
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
    let ended = match tokio::time::timeout(timeout, work).await {
        Ok(Ok(status)) => Ended::Exited(status),
        Ok(Err(error)) => Ended::WaitFailed(error),
        Err(_) => {
            group.kill();
            // SIGKILL cannot be caught: reaping is immediate in practice. If
            // not, kill_on_drop plus tokio's orphan reaping finish it.
            let _ = tokio::time::timeout(REAP_GRACE, child.wait()).await;
            Ended::TimedOut
        }
    };
    Run {
        ended,
        stdout: out,
        stderr: err,
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
                let keep = read.min(MAX_OUTPUT.saturating_sub(into.bytes.len()));
                into.bytes
                    .extend_from_slice(chunk.get(..keep).unwrap_or_default());
                if keep < read {
                    into.truncated = true;
                }
            }
        }
    }
}
