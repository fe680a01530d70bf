//! One run of the managed process: spawn in its own process group, watch for
//! its exit without polling, signal and kill the whole group.

use std::io;
use std::process::Stdio;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use ractor::ActorRef;
use tokio::sync::watch;

use super::actor::{ChildExit, ManagedMsg};
use super::output::{OutputTx, Stream, pump};
use crate::settings::ComponentSettings;
use crate::tasks::AbortOnDrop;

/// Signals the process group; SIGKILLs it when dropped while armed, so a
/// killed actor (its state dropped without `post_stop`) leaves no orphan.
#[derive(Debug)]
pub(crate) struct GroupGuard(Option<Pid>);

impl GroupGuard {
    /// Sends `signal` to the group. ESRCH (already gone) is fine.
    pub(crate) fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.0 {
            let _ = killpg(pgid, signal);
        }
    }

    /// SIGKILLs the group and disarms the guard.
    pub(crate) fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExitInfo {
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
}

/// A running child. Dropping it kills the group and aborts the waiter (whose
/// `Child` is `kill_on_drop`).
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) generation: u64,
    pub(crate) pid: u32,
    pub(crate) started: tokio::time::Instant,
    pub(crate) group: GroupGuard,
    /// The waiter also publishes the exit here, for `post_stop`, which can
    /// no longer receive messages.
    pub(crate) exit: watch::Receiver<Option<ExitInfo>>,
    _waiter: AbortOnDrop,
}

/// Parses `TERM`, `SIGTERM`, `term`….
pub(crate) fn parse_signal(name: &str) -> Option<Signal> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse().ok()
}

/// `run = ["warden", ...]` means this very binary, so the default config can
/// supervise `warden demo-target` on a machine where Warden is not on `PATH`
/// (e.g. under `cargo run`). Any other program is looked up as usual.
fn resolve_program(program: &str) -> std::path::PathBuf {
    if program == "warden"
        && let Ok(path) = std::env::current_exe()
        && path.file_stem().is_some_and(|stem| stem == "warden")
    {
        return path;
    }
    std::path::PathBuf::from(program)
}

/// Starts `settings.run`; the waiter casts [`ManagedMsg::Exited`] to `myself`
/// the moment the process exits.
pub(crate) fn spawn(
    settings: &ComponentSettings,
    generation: u64,
    myself: ActorRef<ManagedMsg>,
    output: &OutputTx,
) -> io::Result<Running> {
    let Some((program, args)) = settings.run.split_first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "run is empty"));
    };
    let mut command = tokio::process::Command::new(resolve_program(program));
    if settings.inherit_env {
        crate::process::scrub_env(&mut command);
    } else {
        // Only PATH survives, so `run = ["sh", ...]` and the scripts it
        // starts still find their programs; `env` can override it.
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
    }
    crate::process::kill_with_parent(&mut command);
    command
        .args(args)
        .envs(
            settings
                .env
                .iter()
                .map(|(name, value)| (name, value.expose())),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &settings.cwd {
        command.current_dir(cwd);
    }
    let mut child = command.spawn()?;
    let Some(pid) = child.id() else {
        return Err(io::Error::other("the process exited before it was watched"));
    };
    let group = GroupGuard(i32::try_from(pid).ok().map(Pid::from_raw));
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(pump(stdout, Stream::Stdout, output.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(pump(stderr, Stream::Stderr, output.clone()));
    }
    let (exit_tx, exit_rx) = watch::channel(None);
    let waiter = tokio::spawn(async move {
        let info = match child.wait().await {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                ExitInfo {
                    code: status.code(),
                    signal: status.signal(),
                }
            }
            Err(_) => ExitInfo {
                code: None,
                signal: None,
            },
        };
        exit_tx.send_replace(Some(info));
        let _ = myself.cast(ManagedMsg::Exited(ChildExit {
            generation,
            pid,
            info,
        }));
    });
    Ok(Running {
        generation,
        pid,
        started: tokio::time::Instant::now(),
        group,
        exit: exit_rx,
        _waiter: AbortOnDrop::new(&waiter),
    })
}
