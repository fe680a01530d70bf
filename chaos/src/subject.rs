//! The Warden under test, either in this process (the real tree, booted by
//! `warden::app::start`) or as the real binary in a child process, behind one
//! interface: append, inject, check health, read counters, stop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};
use warden::app::{self, Warden};
use warden::audit::{AuditLog, NewRow};
use warden::chaos::ChaosFault;
use warden::settings::Settings;

/// The operator token the harness configures.
pub const TOKEN: &str = "chaos-operator-token-0123456789";
/// How long a started process may take to answer `/api/health`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one HTTP call to the process may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A Warden binary in a child process.
pub struct Process {
    binary: PathBuf,
    config: PathBuf,
    log: PathBuf,
    base: String,
    client: reqwest::Client,
    child: Option<Child>,
    boots: usize,
}

/// The Warden under test.
pub enum Subject {
    /// The tree running inside the harness.
    InProcess(Box<Warden>),
    /// The `warden` binary.
    Process(Box<Process>),
}

/// A cheap handle the load tasks append through.
#[derive(Clone)]
pub enum Appender {
    /// Straight into the audit queue.
    Audit(AuditLog),
    /// `POST /api/audit/notes` with the operator token.
    Http {
        /// The client.
        client: reqwest::Client,
        /// `http://addr` (the port is fixed across restarts).
        base: Arc<str>,
    },
}

impl Appender {
    /// Appends `payload`; `Some(seq)` once it is acknowledged.
    pub async fn append(&self, payload: &str) -> Option<u64> {
        match self {
            Appender::Audit(audit) => audit
                .append(NewRow::new("chaos.append", json!({ "payload": payload })))
                .await
                .ok(),
            Appender::Http { client, base } => {
                let response = client
                    .post(format!("{base}/api/audit/notes"))
                    .bearer_auth(TOKEN)
                    .json(&json!({ "text": payload }))
                    .send()
                    .await
                    .ok()?;
                if !response.status().is_success() {
                    return None;
                }
                response.json::<Value>().await.ok()?["seq"].as_u64()
            }
        }
    }
}

/// Where the `warden` binary is: `WARDEN_BIN`, else next to this executable
/// (`target/<profile>/warden`, also from `target/<profile>/deps/`).
pub fn warden_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("WARDEN_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut dir = exe.parent().map(Path::to_owned).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let binary = dir.join("warden");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "the warden binary is not at {} (build it first: cargo build --bin warden, with --release for a release run, or set WARDEN_BIN)",
            binary.display()
        ))
    }
}

impl Process {
    /// Writes `config` next to the state and starts the binary.
    pub async fn start(dir: &Path, config: String, base: String) -> Result<Self, String> {
        let path = dir.join("warden.toml");
        std::fs::write(&path, config).map_err(|e| format!("cannot write the config: {e}"))?;
        let mut process = Self {
            binary: warden_binary()?,
            config: path,
            log: dir.join("warden.log"),
            base,
            client: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .build()
                .map_err(|e| e.to_string())?,
            child: None,
            boots: 0,
        };
        process.spawn().await?;
        Ok(process)
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("cannot open {}: {e}", self.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "warden exited during start ({status}); see {}",
                    self.log.display()
                ));
            }
            // Started means answering and with this boot's row durable, so
            // the restart-count invariant can count boots exactly.
            if self.health().await.is_some() && self.durable_boots().await > self.boots {
                self.boots += 1;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!(
            "warden did not answer /api/health within {READY_TIMEOUT:?}"
        ))
    }

    async fn health(&self) -> Option<Value> {
        let response = self
            .client
            .get(format!("{}/api/health", self.base))
            .send()
            .await
            .ok()?;
        response.json::<Value>().await.ok()
    }

    async fn get(&self, path: &str) -> Option<Value> {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .ok()?
            .json::<Value>()
            .await
            .ok()
    }

    async fn durable_boots(&self) -> usize {
        self.get("/api/audit?seam=service.boot&limit=10000")
            .await
            .and_then(|body| body["rows"].as_array().map(Vec::len))
            .unwrap_or(0)
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }
}

impl Subject {
    /// Boots Warden in this process.
    pub async fn in_process(settings: Settings) -> Result<Self, String> {
        let warden = app::start(settings).await.map_err(|e| e.to_string())?;
        if warden.chaos.is_none() {
            return Err("chaos.enabled is not set".to_owned());
        }
        Ok(Subject::InProcess(Box::new(warden)))
    }

    /// A handle for the load tasks.
    pub fn appender(&self) -> Appender {
        match self {
            Subject::InProcess(warden) => Appender::Audit(warden.audit.clone()),
            Subject::Process(process) => Appender::Http {
                client: process.client.clone(),
                base: process.base.as_str().into(),
            },
        }
    }

    /// Injects an actor or audit fault; `Ok(Some(actor id))` when an actor was hit.
    pub async fn inject(&mut self, fault: &ChaosFault) -> Result<Option<String>, String> {
        match self {
            Subject::InProcess(warden) => {
                let chaos = warden
                    .chaos
                    .as_ref()
                    .ok_or_else(|| "chaos.enabled is not set".to_owned())?;
                let injected = chaos.inject(fault).map_err(|e| e.to_string())?;
                Ok(injected.actor_id.filter(|_| injected.landed))
            }
            Subject::Process(process) => {
                let response = process
                    .client
                    .post(format!("{}/api/chaos/faults", process.base))
                    .bearer_auth(TOKEN)
                    .json(fault)
                    .send()
                    .await
                    // The API itself may be the actor that was just killed.
                    .map_err(|e| format!("the chaos surface did not answer: {e}"));
                let Ok(response) = response else {
                    return Ok(None);
                };
                let status = response.status();
                let body: Value = response.json().await.unwrap_or_default();
                if !status.is_success() {
                    return Err(format!("the chaos surface answered {status}: {body}"));
                }
                Ok(body["actor_id"]
                    .as_str()
                    .filter(|_| body["landed"] == true)
                    .map(str::to_owned))
            }
        }
    }

    /// SIGKILLs the process and starts it again.
    pub async fn kill_and_restart(&mut self) -> Result<(), String> {
        let Subject::Process(process) = self else {
            return Err("kill_process needs mode = \"process\"".to_owned());
        };
        if let Some(mut child) = process.child.take() {
            child.start_kill().map_err(|e| e.to_string())?;
            child.wait().await.map_err(|e| e.to_string())?;
        }
        process.spawn().await
    }

    /// Whether every child of the root supervisor is running.
    pub async fn whole(&self) -> bool {
        match self {
            Subject::InProcess(warden) => {
                match warden.tree.children(Duration::from_secs(1)).await {
                    Some(children) => children.iter().all(|child| child.running),
                    None => false,
                }
            }
            Subject::Process(process) => process.health().await.is_some_and(|health| {
                health["children"]
                    .as_array()
                    .is_some_and(|c| c.iter().all(|child| child["running"] == true))
            }),
        }
    }

    /// The operational state, upper case (`RUNNING`, `PAUSED`, ...).
    pub async fn state(&self) -> String {
        match self {
            Subject::InProcess(warden) => format!("{:?}", warden.state.state()).to_uppercase(),
            Subject::Process(process) => process
                .get("/api/operational-state")
                .await
                .and_then(|v| v["state"].as_str().map(str::to_uppercase))
                .unwrap_or_else(|| "UNREACHABLE".to_owned()),
        }
    }

    /// `(in_flight, undelivered, read_up_to)` of the wake consumer.
    pub async fn wake(&self) -> Option<(u64, u64, u64)> {
        match self {
            Subject::InProcess(warden) => {
                let s = warden.wake.snapshot();
                Some((s.in_flight, s.undelivered, s.read_up_to))
            }
            Subject::Process(process) => {
                let v = process.get("/api/wake").await?;
                Some((
                    v["in_flight"].as_u64()?,
                    v["undelivered"].as_u64()?,
                    v["read_up_to"].as_u64()?,
                ))
            }
        }
    }

    /// Rows waiting in the audit queue (in-process only; the process's queue
    /// is read from its metrics).
    pub async fn audit_queued(&self) -> Option<u64> {
        match self {
            Subject::InProcess(warden) => u64::try_from(warden.audit.queued()).ok(),
            Subject::Process(process) => {
                let text = process
                    .client
                    .get(format!("{}/metrics", process.base))
                    .send()
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                text.lines()
                    .find_map(|line| line.strip_prefix("warden_audit_queue_depth "))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .map(|v| v as u64)
            }
        }
    }

    /// Resident memory of the Warden process in KiB (in-process: the
    /// harness's own, which includes Warden).
    pub fn rss_kib(&self) -> Option<u64> {
        let path = match self {
            Subject::InProcess(_) => "/proc/self/status".to_owned(),
            Subject::Process(process) => format!("/proc/{}/status", process.pid()?),
        };
        let status = std::fs::read_to_string(path).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Stops Warden gracefully (SIGTERM for the process) and waits for it.
    pub async fn shutdown(self) -> Result<(), String> {
        match self {
            Subject::InProcess(warden) => warden.shutdown().await.map_err(|e| e.to_string()),
            Subject::Process(mut process) => {
                let Some(mut child) = process.child.take() else {
                    return Ok(());
                };
                let Some(pid) = child.id() else {
                    return Ok(());
                };
                let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
                nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
                    .map_err(|e| e.to_string())?;
                match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
                    Ok(Ok(status)) if status.success() => Ok(()),
                    Ok(Ok(status)) => Err(format!("warden exited with {status} after SIGTERM")),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => {
                        let _ = child.start_kill();
                        Err("warden did not exit within 60s of SIGTERM".to_owned())
                    }
                }
            }
        }
    }
}
