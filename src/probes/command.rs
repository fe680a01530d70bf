//! `command`: run an argv (no shell), judge by exit code. Running it, with
//! the time limit, process-group kill and bounded output, is
//! [`crate::process::run`].

use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use super::check::{CheckContext, ProbeError, timed_out};
use super::facts::{CheckOutcome, Facts};
use super::kind::{OwnKey, ProbeKindSpec, RunFuture, Runner};
use crate::messages::Health;
use crate::process::{Captured, Ended};
use crate::settings::{ProbeKind, ProbeSettings, Problems};

/// A stderr line longer than this is left out of the reason.
const MAX_REASON_LINE: usize = 200;

/// The `command` kind.
pub(crate) struct Command;

impl ProbeKindSpec for Command {
    fn keys(&self) -> &'static [OwnKey] {
        &[("command", |p| !p.command.is_empty())]
    }

    fn validate(&self, probe: &ProbeSettings, at: &str, problems: &mut Problems) {
        if probe
            .command
            .first()
            .is_none_or(|program| program.is_empty())
        {
            problems.push(
                format!("{at}.command"),
                "is required for kind command (an argv list)",
            );
        }
    }

    fn build(
        &self,
        probe: &ProbeSettings,
        _timeout: Duration,
        _ctx: &CheckContext,
    ) -> Result<Box<dyn Runner>, ProbeError> {
        Ok(Box::new(CommandCheck::build(probe)?))
    }
}

pub(crate) struct CommandCheck {
    argv: Vec<String>,
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
                kind: ProbeKind::Command.as_str(),
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
        let run = crate::process::run(program, args, timeout).await;
        if let Ended::SpawnFailed(err) = &run.ended {
            return CheckOutcome::failed(Facts::default(), spawn_error(program, err));
        }
        let facts = Facts {
            body: Some(run.stdout.text()),
            body_truncated: run.stdout.truncated,
            stderr: Some(run.stderr.text()),
            ..Facts::default()
        };
        match run.ended {
            Ended::SpawnFailed(_) => CheckOutcome::failed(facts, "no command to run"),
            Ended::TimedOut => {
                let reason = format!("{} (process killed)", timed_out(timeout));
                CheckOutcome::failed(facts, with_stderr(reason, &run.stderr))
            }
            Ended::WaitFailed(error) => {
                CheckOutcome::failed(facts, format!("waiting for {program} failed: {error}"))
            }
            Ended::Exited(status) => judge(facts, status, &run.stderr),
        }
    }
}

impl Runner for CommandCheck {
    fn run(&self, timeout: Duration) -> RunFuture<'_> {
        Box::pin(CommandCheck::run(self, timeout))
    }

    // Cutting the run off from outside would leave the process running: it
    // must be killed and reaped, which `crate::process::run` does.
    fn bounds_itself(&self) -> bool {
        true
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

#[cfg(test)]
mod tests;
