//! Managed processes against real processes: `warden demo-target` and `sh -c`
//! scripts, with a real audit writer and the events port.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use ractor::{Actor, ActorProcessingErr, ActorRef, OutputPort};
use support::eventually;
use tokio::sync::mpsc;
use warden::audit::{AuditLog, AuditReader, AuditWriter, AuditWriterArgs};
use warden::managed::{
    AutomationHold, ManagedArgs, ManagedEvent, ManagedMsg, ManagedProcess, ManagedStatus,
    OUTPUT_FILE, ProcessState,
};
use warden::settings::{ComponentSettings, RestartSettings};

struct Collector;

impl Actor for Collector {
    type Msg = ManagedEvent;
    type State = mpsc::UnboundedSender<ManagedEvent>;
    type Arguments = mpsc::UnboundedSender<ManagedEvent>;

    async fn pre_start(
        &self,
        _: ActorRef<ManagedEvent>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle(
        &self,
        _: ActorRef<ManagedEvent>,
        event: ManagedEvent,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let _ = tx.send(event);
        Ok(())
    }
}

struct Harness {
    dir: tempfile::TempDir,
    audit: AuditLog,
    actor: ActorRef<ManagedMsg>,
    handle: tokio::task::JoinHandle<()>,
    events: mpsc::UnboundedReceiver<ManagedEvent>,
    status: ManagedStatus,
}

fn settings(run: &[&str]) -> ComponentSettings {
    ComponentSettings {
        name: "svc".into(),
        run: run.iter().map(|arg| (*arg).to_owned()).collect(),
        stop_timeout: Duration::from_secs(5),
        ..ComponentSettings::default()
    }
}

fn fast_ladder() -> RestartSettings {
    RestartSettings {
        max_restarts: 3,
        period: Duration::from_secs(10),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_secs(1),
        backoff_jitter: 0.0,
        stable_after: Duration::from_secs(30),
    }
}

async fn start(settings: ComponentSettings) -> Harness {
    start_held(settings, AutomationHold::default()).await
}

async fn start_held(settings: ComponentSettings, hold: AutomationHold) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (audit, queue) = AuditLog::new();
    let writer_args = AuditWriterArgs::new(dir.path().join("audit"), queue);
    Actor::spawn(None, AuditWriter, writer_args).await.unwrap();
    let (tx, events) = mpsc::unbounded_channel();
    let (collector, _) = Actor::spawn(None, Collector, tx).await.unwrap();
    let port = Arc::new(OutputPort::default());
    port.subscribe(collector, Some);
    let status = ManagedStatus::default();
    let args = ManagedArgs {
        component: settings.name.clone(),
        log_dir: dir.path().join("logs").join(&settings.name),
        records_dir: dir.path().join("managed"),
        settings,
        audit: audit.clone(),
        events: port,
        status: status.clone(),
        hold,
    };
    let (actor, handle) = Actor::spawn(None, ManagedProcess, args).await.unwrap();
    Harness {
        dir,
        audit,
        actor,
        handle,
        events,
        status,
    }
}

impl Harness {
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("logs/svc").join(OUTPUT_FILE)
    }

    /// The next event matching `want`, skipping others; panics after `timeout`.
    async fn until(
        &mut self,
        timeout: Duration,
        want: impl Fn(&ManagedEvent) -> bool,
    ) -> ManagedEvent {
        let wait = async {
            loop {
                let event = self.events.recv().await.expect("events port open");
                if want(&event) {
                    return event;
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .expect("event within the timeout")
    }

    async fn started(&mut self) -> u32 {
        match self
            .until(Duration::from_secs(10), |e| {
                matches!(e, ManagedEvent::Started { .. })
            })
            .await
        {
            ManagedEvent::Started { pid, .. } => pid,
            _ => unreachable!(),
        }
    }

    async fn seams(&self) -> Vec<String> {
        self.audit.flush().await.unwrap();
        AuditReader::open(&self.dir.path().join("audit"))
            .unwrap()
            .rows_from(0, Some("managed.*"))
            .map(|row| {
                let row = row.unwrap();
                assert_eq!(row.component.as_deref(), Some("svc"));
                row.seam
            })
            .collect()
    }

    async fn stop(self) {
        self.actor.stop(None);
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .unwrap()
            .unwrap();
    }
}

fn pid_gone(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_err()
}

fn group_gone(pid: u32) -> bool {
    killpg(Pid::from_raw(pid as i32), None).is_err()
}

async fn listening_addr(log: &Path, pid: u32) -> String {
    let mut addr = String::new();
    let found = eventually(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        // The newest "listening" line belongs to the newest process.
        if let Some(line) = text
            .lines()
            .rev()
            .find(|line| line.contains("demo-target listening on "))
        {
            addr = line.rsplit(' ').next().unwrap_or_default().to_owned();
        }
        let _ = pid;
        std::future::ready(!addr.is_empty())
    })
    .await;
    assert!(found, "demo-target never said where it listens");
    addr
}

#[tokio::test]
async fn a_killed_demo_target_is_restarted_at_once_and_audited() {
    let bin = env!("CARGO_BIN_EXE_warden");
    let mut component = settings(&[bin, "demo-target", "--listen", "127.0.0.1:0"]);
    component.restart = fast_ladder();
    let mut h = start(component).await;
    let pid = h.started().await;
    let addr = listening_addr(&h.log_path(), pid).await;
    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(h.status.snapshot().state, ProcessState::Running);
    assert_eq!(h.status.snapshot().pid, Some(pid));

    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let exited = h
        .until(Duration::from_secs(5), |e| {
            matches!(e, ManagedEvent::Exited { .. })
        })
        .await;
    assert!(
        matches!(
            exited,
            ManagedEvent::Exited { pid: p, code: None, signal: Some(9), expected: false, .. } if p == pid
        ),
        "{exited:?}"
    );
    let scheduled = h
        .until(Duration::from_secs(1), |e| {
            matches!(e, ManagedEvent::RestartScheduled { .. })
        })
        .await;
    assert!(
        matches!(
            scheduled,
            ManagedEvent::RestartScheduled {
                attempt: 1,
                delay_ms: 0,
                ..
            }
        ),
        "{scheduled:?}"
    );
    let next = h.started().await;
    assert_ne!(next, pid);
    assert_eq!(h.status.snapshot().restarts, 1);
    // The new process serves again (its own, fresh port).
    let log = std::fs::read_to_string(h.log_path()).unwrap();
    assert!(log.contains(" stdout GET /health 200"), "{log}");
    assert_eq!(
        h.seams().await,
        vec![
            "managed.started",
            "managed.exited",
            "managed.restart_scheduled",
            "managed.started"
        ]
    );
    h.stop().await;
    assert!(
        eventually(Duration::from_secs(5), || std::future::ready(pid_gone(
            next
        )))
        .await
    );
}

#[tokio::test]
async fn a_crash_loop_backs_off_then_goes_fatal_until_restarted() {
    let mut component = settings(&["sh", "-c", "echo crashing; exit 3"]);
    component.restart = fast_ladder();
    let mut h = start(component).await;
    let mut delays = Vec::new();
    let fatal = loop {
        let event = h
            .until(Duration::from_secs(5), |e| {
                matches!(
                    e,
                    ManagedEvent::RestartScheduled { .. }
                        | ManagedEvent::Fatal { .. }
                        | ManagedEvent::Exited { .. }
                )
            })
            .await;
        match event {
            ManagedEvent::Exited { code, expected, .. } => {
                assert_eq!(code, Some(3));
                assert!(!expected);
            }
            ManagedEvent::RestartScheduled { delay_ms, .. } => delays.push(delay_ms),
            fatal => break fatal,
        }
    };
    assert_eq!(delays, vec![0, 20, 40]);
    assert!(
        matches!(
            &fatal,
            ManagedEvent::Fatal {
                restarts: 4,
                within_ms: 10_000,
                ..
            }
        ),
        "{fatal:?}"
    );
    assert_eq!(h.status.snapshot().state, ProcessState::Fatal);
    // FATAL means no more automatic starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(h.events.try_recv().is_err());
    let seams = h.seams().await;
    assert_eq!(seams.iter().filter(|s| *s == "managed.started").count(), 4);
    assert_eq!(seams.last().map(String::as_str), Some("managed.fatal"));

    // A requested restart clears FATAL and gets a fresh budget.
    let pid = ractor::call!(h.actor, |reply| ManagedMsg::Restart {
        reason: "operator".into(),
        reply: Some(reply),
    })
    .unwrap()
    .unwrap();
    assert!(pid > 0);
    let scheduled = h
        .until(Duration::from_secs(5), |e| {
            matches!(e, ManagedEvent::RestartScheduled { .. })
        })
        .await;
    assert!(matches!(
        scheduled,
        ManagedEvent::RestartScheduled {
            attempt: 1,
            delay_ms: 0,
            ..
        }
    ));
    h.stop().await;
}

#[tokio::test]
async fn start_failure_is_reported_and_counts_on_the_ladder() {
    let mut component = settings(&["/nonexistent/warden-test-binary"]);
    component.restart = fast_ladder();
    let mut h = start(component).await;
    let failed = h
        .until(Duration::from_secs(5), |e| {
            matches!(e, ManagedEvent::StartFailed { .. })
        })
        .await;
    assert!(
        matches!(failed, ManagedEvent::StartFailed { ref error, .. } if error.contains("nonexistent"))
    );
    h.until(Duration::from_secs(5), |e| {
        matches!(e, ManagedEvent::Fatal { .. })
    })
    .await;
    assert!(h.status.snapshot().last_error.is_some());
    h.stop().await;
}

#[tokio::test]
async fn output_lands_in_the_log_and_rotates() {
    let script = "i=0; while [ $i -lt 300 ]; do echo \"line $i\"; i=$((i+1)); done; sleep 0.3; echo oops >&2; exec sleep 60";
    let mut component = settings(&["sh", "-c", script]);
    component.log_max_bytes = bytesize::ByteSize::b(2_000);
    component.log_files = 2;
    component.env.insert("WARDEN_TEST_VAR".into(), "x".into());
    let mut h = start(component).await;
    h.started().await;
    let log = h.log_path();
    assert!(
        eventually(Duration::from_secs(10), || {
            // stdout and stderr are read concurrently, so `oops` may land
            // before the last stdout lines and be rotated out of the live file.
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let all = ["output.log.1", "output.log.2"]
                .iter()
                .map(|name| std::fs::read_to_string(log.with_file_name(name)).unwrap_or_default())
                .chain([text.clone()])
                .collect::<String>();
            std::future::ready(
                text.contains(" stdout line 299\n") && all.contains(" stderr oops\n"),
            )
        })
        .await
    );
    let dir = log.parent().unwrap();
    assert!(dir.join(format!("{OUTPUT_FILE}.1")).exists());
    assert!(dir.join(format!("{OUTPUT_FILE}.2")).exists());
    assert!(!dir.join(format!("{OUTPUT_FILE}.3")).exists());
    for name in [OUTPUT_FILE, "output.log.1", "output.log.2"] {
        assert!(std::fs::metadata(dir.join(name)).unwrap().len() <= 2_000);
    }
    h.stop().await;
}

#[tokio::test]
async fn env_and_cwd_are_applied() {
    let work = tempfile::tempdir().unwrap();
    let mut component = settings(&["sh", "-c", "echo \"$GREETING from $(pwd)\"; exec sleep 60"]);
    component.env.insert("GREETING".into(), "hello".into());
    component.cwd = Some(work.path().to_owned());
    let mut h = start(component).await;
    h.started().await;
    let log = h.log_path();
    let expected = format!(
        " stdout hello from {}\n",
        work.path().canonicalize().unwrap().display()
    );
    assert!(
        eventually(Duration::from_secs(5), || std::future::ready(
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains(&expected)
        ))
        .await,
        "{:?}",
        std::fs::read_to_string(&log)
    );
    h.stop().await;
}

/// The `KEY=value` lines a process printed with `env`, between markers.
async fn printed_env(log: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    assert!(
        eventually(Duration::from_secs(5), || {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let done = text.contains("stdout env-end");
            if done {
                lines = text
                    .lines()
                    .skip_while(|line| !line.ends_with("stdout env-begin"))
                    .skip(1)
                    .take_while(|line| !line.ends_with("stdout env-end"))
                    .filter_map(|line| line.split_once(" stdout ").map(|(_, l)| l.to_owned()))
                    .collect();
            }
            std::future::ready(done)
        })
        .await,
        "{:?}",
        std::fs::read_to_string(log)
    );
    lines
}

#[tokio::test]
async fn inherit_env_false_leaves_only_the_configured_env_and_path() {
    let script = "echo env-begin; env; echo env-end; exec sleep 60";
    let mut component = settings(&["sh", "-c", script]);
    component.inherit_env = false;
    component.env.insert("GREETING".into(), "hello".into());
    let mut h = start(component).await;
    h.started().await;
    let mut names: Vec<String> = printed_env(&h.log_path())
        .await
        .iter()
        .filter_map(|line| line.split_once('=').map(|(key, _)| key.to_owned()))
        // The shell itself sets these three on start.
        .filter(|key| !matches!(key.as_str(), "PWD" | "SHLVL" | "_"))
        .collect();
    names.sort();
    assert_eq!(names, ["GREETING", "PATH"]);
    h.stop().await;
}

#[tokio::test]
async fn inherited_env_is_kept_by_default() {
    // CARGO_MANIFEST_DIR is set for test binaries by cargo: proof that the
    // parent's environment still reaches the child.
    let script = "echo env-begin; env; echo env-end; exec sleep 60";
    let mut h = start(settings(&["sh", "-c", script])).await;
    h.started().await;
    let lines = printed_env(&h.log_path()).await;
    if std::env::var_os("CARGO_MANIFEST_DIR").is_some() {
        assert!(
            lines
                .iter()
                .any(|line| line.starts_with("CARGO_MANIFEST_DIR=")),
            "{lines:?}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn the_running_group_is_recorded_and_the_record_removed_when_stopped() {
    let mut h = start(settings(&["sleep", "60"])).await;
    let pid = h.started().await;
    let record = h.dir.path().join("managed").join("svc.json");
    let text = std::fs::read_to_string(&record).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["pgid"], pid);
    assert!(value["start_time"].as_u64().unwrap() > 0);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&record).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    h.actor
        .call(
            |reply| ManagedMsg::Stop(Some(reply)),
            Some(Duration::from_secs(15)),
        )
        .await
        .unwrap();
    assert!(!record.exists(), "the record outlived its process");
    h.stop().await;
}

#[tokio::test]
async fn restart_replies_with_a_new_pid_and_the_old_one_is_gone() {
    let mut h = start(settings(&["sleep", "3600"])).await;
    let old = h.started().await;
    let new = ractor::call!(h.actor, |reply| ManagedMsg::Restart {
        reason: "test".into(),
        reply: Some(reply),
    })
    .unwrap()
    .unwrap();
    assert_ne!(new, old);
    assert!(eventually(Duration::from_secs(5), || std::future::ready(pid_gone(old))).await);
    let exited = h
        .until(Duration::from_secs(5), |e| {
            matches!(e, ManagedEvent::Exited { .. })
        })
        .await;
    assert!(
        matches!(exited, ManagedEvent::Exited { pid, signal: Some(15), expected: true, .. } if pid == old),
        "{exited:?}"
    );
    assert_eq!(h.status.snapshot().pid, Some(new));
    assert_eq!(h.status.snapshot().restarts, 1);
    h.stop().await;
    assert!(eventually(Duration::from_secs(5), || std::future::ready(pid_gone(new))).await);
}

#[tokio::test]
async fn stop_kills_a_process_that_ignores_the_stop_signal() {
    let mut component = settings(&["sh", "-c", "trap '' TERM; echo ready; sleep 60 & wait"]);
    component.stop_timeout = Duration::from_millis(300);
    let mut h = start(component).await;
    let pid = h.started().await;
    let log = h.log_path();
    assert!(
        eventually(Duration::from_secs(5), || std::future::ready(
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("ready")
        ))
        .await
    );
    let began = tokio::time::Instant::now();
    // Status answers while the stop is in progress: the mailbox is not blocked.
    let stopping = {
        let actor = h.actor.clone();
        tokio::spawn(async move { ractor::call!(actor, |reply| ManagedMsg::Stop(Some(reply))) })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let snapshot = ractor::call!(h.actor, ManagedMsg::Status).unwrap();
    assert_eq!(snapshot.state, ProcessState::Running);
    stopping.await.unwrap().unwrap();
    let waited = began.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    let exited = h
        .until(Duration::from_secs(1), |e| {
            matches!(e, ManagedEvent::Exited { .. })
        })
        .await;
    assert!(
        matches!(
            exited,
            ManagedEvent::Exited {
                signal: Some(9),
                expected: true,
                ..
            }
        ),
        "{exited:?}"
    );
    assert_eq!(h.status.snapshot().state, ProcessState::Stopped);
    assert!(
        eventually(Duration::from_secs(5), || std::future::ready(group_gone(
            pid
        )))
        .await
    );
    let seams = h.seams().await;
    assert_eq!(
        seams,
        vec!["managed.started", "managed.exited", "managed.stopped"]
    );
    // No restart follows a requested stop.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !matches!(h.events.try_recv(), Ok(ManagedEvent::Started { .. })),
        "restarted after a stop"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_killed_actor_leaves_no_orphan() {
    // The sleep is a grandchild in the same group: it must die too.
    let mut h = start(settings(&["sh", "-c", "sleep 3600 & wait"])).await;
    let pid = h.started().await;
    assert!(!group_gone(pid));
    h.actor.kill();
    tokio::time::timeout(Duration::from_secs(5), h.handle)
        .await
        .unwrap()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || std::future::ready(group_gone(
            pid
        )))
        .await,
        "process group {pid} survived its actor"
    );
}

#[tokio::test]
async fn a_ladder_restart_waits_while_automation_is_held() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let held = Arc::new(AtomicBool::new(false));
    let flag = held.clone();
    let hold = AutomationHold::new(move || {
        flag.load(Ordering::SeqCst)
            .then(|| "automation frozen by incident INC-test".to_owned())
    });
    let mut component = settings(&["sh", "-c", "sleep 0.2; exit 3"]);
    component.restart = fast_ladder();
    let mut h = start_held(component, hold).await;
    h.started().await;
    // Held (as a pause or freeze does, before its row is written), then
    // the process crashes: its restart is due at once but must not start.
    held.store(true, Ordering::SeqCst);
    let hold_row = h
        .audit
        .append(warden::audit::NewRow::new(
            "control.command",
            serde_json::json!({ "command": "pause" }),
        ))
        .await
        .unwrap();
    h.until(Duration::from_secs(5), |e| {
        matches!(e, ManagedEvent::RestartScheduled { .. })
    })
    .await;
    let rows_of = |seam: &'static str| {
        let dir = h.dir.path().join("audit");
        move || {
            AuditReader::open(&dir)
                .unwrap()
                .rows_from(0, Some(seam))
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        }
    };
    let held_rows = rows_of("managed.restart_held");
    assert!(
        eventually(Duration::from_secs(5), || {
            let n = held_rows().len();
            async move { n == 1 }
        })
        .await,
        "no managed.restart_held row"
    );
    assert_eq!(h.status.snapshot().state, ProcessState::Backoff);
    let started = rows_of("escalation.action_started");
    assert!(
        started().iter().all(|r| r.seq < hold_row),
        "a restart started after the hold: {:#?}",
        started()
    );
    // Released: the restart goes ahead, recorded once however long it waited.
    held.store(false, Ordering::SeqCst);
    h.started().await;
    assert_eq!(held_rows().len(), 1);
    // The start row is queued ahead of the spawn, not awaited: wait for it
    // to be durable rather than read the log the instant the child runs.
    assert!(
        eventually(Duration::from_secs(5), || {
            let found = started()
                .iter()
                .any(|r| r.seq > hold_row && r.details["action"] == "restart");
            async move { found }
        })
        .await,
        "no restart started after the release: {:#?}",
        started()
    );
    h.stop().await;
}
