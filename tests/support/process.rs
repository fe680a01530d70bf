//! Runs the real `warden` binary for tests: writes a config into a temp dir,
//! starts `warden run`, learns the API address from its JSON log, and keeps
//! draining its output so it never blocks on a full pipe.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The operator token the test configs use.
pub const TOKEN: &str = "test-operator-token-0123456789";

/// Path of the binary under test.
pub fn warden_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_warden"))
}

/// Writes a config for a state dir under `dir` with an ephemeral API port and JSON logs.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("warden.toml");
    let text = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\noperator_token = \"{TOKEN}\"\nshutdown_timeout = \"10s\"\n\n[telemetry]\nlog_format = \"json\"\n\n{extra}\n",
        dir.join("var").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The config of the crash tests' burst: `probes` HTTP probes of `target`
/// (1 s interval), each failure an issue at once, the wake consumer at
/// `max_concurrency` redelivering every 500 ms, one webhook notifier to
/// `receiver`.
pub fn burst_config(receiver: &str, target: &str, probes: usize, max_concurrency: usize) -> String {
    use std::fmt::Write as _;
    let mut extra = format!(
        "[debounce]\nfailure_threshold = 1\n\n[wake]\nmax_concurrency = {max_concurrency}\nredeliver_every = \"500ms\"\n\n[[notifiers]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{receiver}\"\ntimeout = \"5s\"\n\n"
    );
    for i in 0..probes {
        let _ = write!(
            extra,
            "[[probes]]\nname = \"p{i}\"\nkind = \"http\"\nurl = \"{target}\"\ninterval = \"1s\"\ntimeout = \"900ms\"\n"
        );
    }
    extra
}

/// A running `warden run`.
pub struct Running {
    /// The child process.
    pub child: Child,
    /// `http://<addr>` of its API.
    pub base: String,
    /// Every line it wrote on stdout so far.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Starts `warden --config <config> run` and waits until its API is listening.
pub async fn start(config: &Path) -> Running {
    start_with_env(config, &[]).await
}

/// [`start`] with extra environment variables for Warden.
pub async fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Running {
    start_full(&[], config, env).await
}

/// [`start`], run through `prefix` (a wrapper such as `prlimit ... --`).
pub async fn start_with_prefix(prefix: &[String], config: &Path) -> Running {
    start_full(prefix, config, &[]).await
}

async fn start_full(prefix: &[String], config: &Path, env: &[(&str, &str)]) -> Running {
    let mut command = match prefix.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(warden_bin());
            command
        }
        None => Command::new(warden_bin()),
    };
    let mut child = command
        .arg("--config")
        .arg(config)
        .arg("run")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<String>();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = seen.clone();
    tokio::spawn(async move {
        let mut addr_tx = Some(addr_tx);
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            keep.lock().unwrap().push(line.clone());
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                && value["message"] == "API listening."
                && let Some(addr) = value["addr"].as_str()
                && let Some(tx) = addr_tx.take()
            {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("warden stderr: {line}");
        }
    });
    let addr = tokio::time::timeout(Duration::from_secs(60), addr_rx)
        .await
        .expect("warden did not report its API address within 60s")
        .expect("warden exited before its API was listening");
    Running {
        child,
        base: format!("http://{addr}"),
        stdout: seen,
    }
}

/// Sends SIGTERM (a graceful stop) to the process.
pub fn terminate(child: &Child) {
    let pid = child.id().expect("the child is still running");
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}
