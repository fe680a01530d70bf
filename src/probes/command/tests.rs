#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::process::MAX_OUTPUT;
use crate::settings::ProbeKind;
use nix::unistd::Pid;

fn check(argv: &[&str]) -> CommandCheck {
    CommandCheck::build(&ProbeSettings {
        name: "cmd".into(),
        kind: Some(ProbeKind::Command),
        command: argv.iter().map(|arg| (*arg).to_owned()).collect(),
        ..ProbeSettings::default()
    })
    .unwrap()
}

const LONG: Duration = Duration::from_secs(20);

#[tokio::test]
async fn exit_0_is_healthy_and_captures_output() {
    let outcome = check(&["sh", "-c", "echo out; echo err >&2"])
        .run(LONG)
        .await;
    assert_eq!(outcome.verdict, Health::Healthy);
    assert_eq!(outcome.facts.exit_code, Some(0));
    assert_eq!(outcome.facts.body.as_deref(), Some("out\n"));
    assert_eq!(outcome.facts.stderr.as_deref(), Some("err\n"));
    assert!(outcome.reasons.is_empty());
}

#[tokio::test]
async fn exit_1_is_degraded() {
    let outcome = check(&["false"]).run(LONG).await;
    assert_eq!(outcome.verdict, Health::Degraded);
    assert_eq!(outcome.facts.exit_code, Some(1));
    assert_eq!(outcome.reasons, vec!["exited with 1"]);
}

#[tokio::test]
async fn other_codes_are_unhealthy_with_the_last_stderr_line() {
    let outcome = check(&["sh", "-c", "echo first >&2; echo 'disk full' >&2; exit 3"])
        .run(LONG)
        .await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(outcome.facts.exit_code, Some(3));
    assert_eq!(outcome.reasons, vec!["exited with 3: disk full"]);
}

#[tokio::test]
async fn a_signal_is_unhealthy() {
    let outcome = check(&["sh", "-c", "kill -9 $$"]).run(LONG).await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(outcome.facts.exit_code, None);
    assert_eq!(outcome.reasons, vec!["killed by signal 9"]);
}

#[tokio::test]
async fn a_missing_program_is_unhealthy() {
    let outcome = check(&["/no/such/program"]).run(LONG).await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(
        outcome.reasons,
        vec!["cannot run /no/such/program: command not found"]
    );
    assert_eq!(
        outcome.facts.error.as_deref(),
        Some(outcome.reasons[0].as_str())
    );
}

#[tokio::test]
async fn a_non_executable_file_is_permission_denied() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap().to_owned();
    let outcome = check(&[&path]).run(LONG).await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert!(
        outcome.reasons[0].ends_with("permission denied"),
        "{:?}",
        outcome.reasons
    );
}

#[tokio::test]
async fn timeout_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let started = Instant::now();
    let outcome = check(&["sh", "-c", &script])
        .run(Duration::from_millis(500))
        .await;
    let took = started.elapsed();
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(
        outcome.reasons,
        vec!["timed out after 500ms (process killed)"]
    );
    assert_eq!(outcome.facts.exit_code, None);
    assert!(took < Duration::from_secs(2), "took {took:?}");

    // The grandchild `sleep 30` is gone too (killed; reaped by init).
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gone = || nix::sys::signal::kill(Pid::from_raw(pid), None).is_err() || is_zombie(pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone() {
        assert!(
            Instant::now() < deadline,
            "sleep {pid} survived the timeout"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

#[tokio::test]
async fn a_plain_sleep_times_out_promptly() {
    let started = Instant::now();
    let outcome = check(&["sleep", "5"]).run(Duration::from_millis(90)).await;
    assert_eq!(
        outcome.reasons,
        vec!["timed out after 90ms (process killed)"]
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn large_output_is_bounded_and_the_child_is_not_blocked() {
    let started = Instant::now();
    let outcome = check(&[
        "sh",
        "-c",
        "head -c 10000000 /dev/zero | tr '\\0' x; echo done >&2",
    ])
    .run(LONG)
    .await;
    assert_eq!(outcome.verdict, Health::Healthy, "{:?}", outcome.reasons);
    assert_eq!(outcome.facts.body.as_ref().unwrap().len(), MAX_OUTPUT);
    assert!(outcome.facts.body_truncated);
    assert_eq!(outcome.facts.stderr.as_deref(), Some("done\n"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_background_straggler_does_not_stall_the_check() {
    let started = Instant::now();
    let outcome = check(&["sh", "-c", "sleep 30 & echo ok"]).run(LONG).await;
    assert_eq!(outcome.verdict, Health::Healthy, "{:?}", outcome.reasons);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
