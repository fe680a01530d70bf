//! The API against hostile and careless clients: timeouts, the connection
//! cap, the open-file limit, the host allow-list and Origin check, heartbeat
//! and read tokens, TLS, the bounded audit queue with 503s while the disk
//! fails, and the Bearer scheme.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use warden::app::{self, Warden};
use warden::settings::{ConfigSource, load_with_env};

const TOKEN: &str = support::process::TOKEN;

/// Starts an in-process Warden; `service` goes under `[service]`, `rest` after it.
async fn start(dir: &Path, service: &str, rest: &str) -> Warden {
    let toml = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\noperator_token = \"{TOKEN}\"\nshutdown_timeout = \"10s\"\n{service}\n\n{rest}\n",
        dir.join("var").display()
    );
    let settings = load_with_env(
        &ConfigSource::Text {
            name: "test".into(),
            toml,
        },
        Some(HashMap::new()),
    )
    .unwrap();
    app::start(settings).await.unwrap()
}

/// Sends `request` as is on a new connection and reads the answer until the
/// server closes it: `(status, whole answer)`.
async fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server did not finish its answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

fn post_request(path: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

async fn state(base: &str) -> Value {
    reqwest::get(format!("{base}/api/operational-state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until the server closes `stream`; how long that took.
async fn closed_after(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(started + within, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_scheme_is_case_insensitive_and_inline_tokens_are_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    // A token pasted with surrounding blanks and a newline.
    let padded = format!("operator_token = \"  {TOKEN} \\n\"\n");
    let toml = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\n{padded}",
        dir.path().join("var").display()
    );
    let settings = load_with_env(
        &ConfigSource::Text {
            name: "test".into(),
            toml,
        },
        Some(HashMap::new()),
    )
    .unwrap();
    let warden = app::start(settings).await.unwrap();
    let body = r#"{"command":"pause"}"#;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (status, answer) = raw(
            warden.addr,
            &post_request(
                "/api/control",
                &format!("Host: 127.0.0.1\r\nAuthorization: {scheme} {TOKEN}\r\n"),
                body,
            ),
        )
        .await;
        assert_eq!(status, 200, "{scheme}: {answer}");
    }
    let (status, _) = raw(
        warden.addr,
        &post_request(
            "/api/control",
            &format!("Host: 127.0.0.1\r\nAuthorization: Basic {TOKEN}\r\n"),
            body,
        ),
    )
    .await;
    assert_eq!(status, 401);
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_configured_hosts_are_answered_and_cross_origin_posts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start(dir.path(), "", "").await;
    let addr = warden.addr;
    let base = format!("http://{addr}");
    let get = |host: &str| {
        format!("GET /api/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };

    // A rebinding page reaches 127.0.0.1 under its own name.
    let (status, answer) = raw(addr, &get("evil.example")).await;
    assert_eq!(status, 421, "{answer}");
    assert!(answer.contains("misdirected_request"), "{answer}");
    let (status, _) = raw(addr, &get(&format!("evil.example:{}", addr.port()))).await;
    assert_eq!(status, 421);
    let (status, _) = raw(addr, "GET /api/health HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, 400, "no Host at all");
    for host in [
        format!("127.0.0.1:{}", addr.port()),
        format!("localhost:{}", addr.port()),
        format!("LOCALHOST:{}", addr.port()),
        format!("[::1]:{}", addr.port()),
    ] {
        let (status, answer) = raw(addr, &get(&host)).await;
        assert_eq!(status, 200, "{host}: {answer}");
    }

    let pause = r#"{"command":"pause"}"#;
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    for origin in [
        "http://evil.example".to_owned(),
        format!("http://evil.example:{}", addr.port()),
        format!("http://127.0.0.1:{}", addr.port() + 1),
        "null".to_owned(),
    ] {
        let headers = format!(
            "Host: 127.0.0.1:{}\r\n{auth}Origin: {origin}\r\n",
            addr.port()
        );
        let (status, answer) = raw(addr, &post_request("/api/control", &headers, pause)).await;
        assert_eq!(status, 403, "{origin}: {answer}");
        assert!(answer.contains("cross_origin"), "{answer}");
    }
    assert_eq!(state(&base).await["state"], "RUNNING");
    // The dashboard's own origin, and a CLI client that sends no Origin.
    let same = format!(
        "Host: 127.0.0.1:{}\r\n{auth}Origin: http://127.0.0.1:{}\r\n",
        addr.port(),
        addr.port()
    );
    let (status, answer) = raw(addr, &post_request("/api/control", &same, pause)).await;
    assert_eq!(status, 200, "{answer}");
    let cli = format!("Host: 127.0.0.1:{}\r\n{auth}", addr.port());
    let (status, answer) = raw(
        addr,
        &post_request("/api/control", &cli, r#"{"command":"resume"}"#),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_replace_the_default_list() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start(dir.path(), "allowed_hosts = [\"warden.internal\"]", "").await;
    let get = |host: &str| {
        format!("GET /api/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    assert_eq!(raw(warden.addr, &get("warden.internal:9400")).await.0, 200);
    assert_eq!(raw(warden.addr, &get("127.0.0.1")).await.0, 421);
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_with_a_token_file_needs_that_token() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("beat-token");
    std::fs::write(&token_file, "heartbeat-token-0123456789\n").unwrap();
    let probes = format!(
        "[[probes]]\nname = \"nightly\"\nkind = \"heartbeat\"\nmax_silence = \"1h\"\ntoken_file = \"{}\"\n\n[[probes]]\nname = \"open\"\nkind = \"heartbeat\"\nmax_silence = \"1h\"\n",
        token_file.display()
    );
    let warden = start(dir.path(), "", &probes).await;
    let base = format!("http://{}", warden.addr);
    let client = reqwest::Client::new();
    let beat = |probe: &str, token: Option<&str>| {
        let mut request = client.post(format!("{base}/api/heartbeats/{probe}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(beat("nightly", None).await.unwrap().status(), 401);
    assert_eq!(
        beat("nightly", Some("wrong-token-wrong-token"))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(beat("nightly", Some(TOKEN)).await.unwrap().status(), 403);
    assert_eq!(
        beat("nightly", Some("heartbeat-token-0123456789"))
            .await
            .unwrap()
            .status(),
        200
    );
    // A probe without a token file stays open to local jobs.
    assert_eq!(beat("open", None).await.unwrap().status(), 200);
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_reads_need_a_token_once_read_tokens_are_configured() {
    let dir = tempfile::tempdir().unwrap();
    let read_file = dir.path().join("read-token");
    std::fs::write(&read_file, "read-only-token-0123456789\n").unwrap();
    let warden = start(
        dir.path(),
        &format!("read_token_files = [\"{}\"]", read_file.display()),
        "",
    )
    .await;
    let base = format!("http://{}", warden.addr);
    let client = reqwest::Client::new();
    let read = |path: &str, token: Option<&str>| {
        let mut request = client.get(format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    for path in [
        "/api/audit",
        "/api/incidents",
        "/api/incidents/INC-1",
        "/api/dashboard",
    ] {
        assert_eq!(read(path, None).await.unwrap().status(), 401, "{path}");
        assert_eq!(
            read(path, Some("wrong-token-wrong-token"))
                .await
                .unwrap()
                .status(),
            403,
            "{path}"
        );
    }
    for token in ["read-only-token-0123456789", TOKEN] {
        let response = read("/api/audit", Some(token)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.json::<Value>().await.unwrap()["rows"].is_array());
        assert_eq!(
            read("/api/incidents", Some(token)).await.unwrap().status(),
            200
        );
    }
    // Liveness stays open; a read token grants no changes.
    assert_eq!(read("/api/health", None).await.unwrap().status(), 200);
    let response = client
        .post(format!("{base}/api/control"))
        .bearer_auth("read-only-token-0123456789")
        .json(&json!({ "command": "pause" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_stay_open_on_loopback_without_read_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start(dir.path(), "", "").await;
    let response = reqwest::get(format!("http://{}/api/audit", warden.addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_serves_tls_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, certified.cert.pem()).unwrap();
    std::fs::write(&key_file, certified.signing_key.serialize_pem()).unwrap();
    let warden = start(
        dir.path(),
        &format!(
            "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
            cert_file.display(),
            key_file.display()
        ),
        "",
    )
    .await;
    let addr = warden.addr;
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}", addr.port());
    let response = client
        .get(format!("{url}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .post(format!("{url}/api/control"))
        .bearer_auth(TOKEN)
        .json(&json!({ "command": "pause" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // A client that does not trust the certificate gets nowhere, and plain
    // HTTP on the TLS port is not served.
    let untrusting = reqwest::Client::builder()
        .resolve("localhost", addr)
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(format!("{url}/api/health"))
            .send()
            .await
            .is_err()
    );
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/api/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_disk_fails_a_pause_answers_503_in_time_and_does_not_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start(
        dir.path(),
        "call_timeout = \"1s\"",
        "[chaos]\nenabled = true\n",
    )
    .await;
    let base = format!("http://{}", warden.addr);
    // Eight failures with backoff (50 ms doubling to 1 s) hold the log ~4.5 s.
    let fault =
        serde_json::from_value(json!({ "fault": "audit_write_errors", "count": 8 })).unwrap();
    warden.chaos.as_ref().unwrap().inject(&fault).unwrap();
    warden
        .audit
        .append_nowait(warden::audit::NewRow::new("test.poke", json!({})));
    assert!(
        support::eventually(Duration::from_secs(10), || async {
            state(&base).await["degradation_reasons"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("audit_unwritable")))
        })
        .await
    );
    let client = reqwest::Client::new();
    let started = Instant::now();
    let response = client
        .post(format!("{base}/api/control"))
        .bearer_auth(TOKEN)
        .json(&json!({ "command": "pause", "reason": "disk test" }))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(
        took < Duration::from_millis(2500),
        "the pause took {took:?}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(
        !state(&base).await["degradation_reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("operator")),
        "a pause that is not recorded must not take effect"
    );
    // A note is refused the same way.
    let started = Instant::now();
    let response = client
        .post(format!("{base}/api/audit/notes"))
        .bearer_auth(TOKEN)
        .json(&json!({ "text": "while the disk fails" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(started.elapsed() < Duration::from_millis(2500));

    // Once the disk recovers: still not paused, and no row claims it was.
    warden.audit.flush().await.unwrap();
    let state_now = state(&base).await;
    assert_eq!(state_now["state"], "RUNNING", "{state_now}");
    let rows: Value = client
        .get(format!("{base}/api/audit?seam=control.command"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows["rows"], json!([]), "withdrawn rows are never written");
    let response = client
        .post(format!("{base}/api/control"))
        .bearer_auth(TOKEN)
        .json(&json!({ "command": "pause" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_queue_is_bounded_and_counts_what_it_drops() {
    use warden::audit::{AuditError, AuditLog, AuditReader, AuditWriter, AuditWriterArgs, NewRow};
    let dir = tempfile::tempdir().unwrap();
    let (log, queue) = AuditLog::with_capacity(8);
    for i in 0..10 {
        log.append_nowait(NewRow::new("test.row", json!({ "i": i })));
    }
    assert_eq!(log.queued(), 8);
    assert_eq!(log.dropped(), 2);
    assert!(matches!(
        log.try_submit(NewRow::new("client.row", json!({}))),
        Err(AuditError::QueueFull)
    ));
    assert!(matches!(
        log.append(NewRow::new("own.row", json!({}))).await,
        Err(AuditError::QueueFull)
    ));
    let (writer, handle) =
        ractor::Actor::spawn(None, AuditWriter, AuditWriterArgs::new(dir.path(), queue))
            .await
            .unwrap();
    assert!(support::eventually(Duration::from_secs(10), || async { log.queued() == 0 }).await);
    log.flush().await.unwrap();
    let reader = AuditReader::open(dir.path()).unwrap();
    let rows: Vec<_> = reader.rows_from(1, None).map(Result::unwrap).collect();
    assert_eq!(rows[0].seam, "audit.rows_dropped");
    assert_eq!(rows[0].details["rows"], 3);
    assert_eq!(rows.len(), 9);
    assert_eq!(log.dropped(), 0);
    writer.stop(None);
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_idle_and_request_deadlines_close_slow_clients() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start(
        dir.path(),
        "header_read_timeout = \"1s\"\nidle_timeout = \"3s\"\nrequest_timeout = \"1s\"",
        "",
    )
    .await;
    let addr = warden.addr;

    // Slowloris: a header line that never ends.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        .await
        .unwrap();
    let closed = closed_after(&mut slow, Duration::from_secs(5)).await;
    assert!(
        closed.is_some_and(|t| t < Duration::from_millis(2500)),
        "slowloris closed after {closed:?}"
    );

    // A keep-alive connection may idle past the header deadline, until the idle one.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let closed = closed_after(&mut idle, Duration::from_secs(8)).await;
    assert!(
        closed.is_some_and(|t| t > Duration::from_millis(2000) && t < Duration::from_millis(5000)),
        "idle keep-alive closed after {closed:?}"
    );

    // A body that trickles in is cut by the request deadline with 408.
    let mut trickle = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/audit/notes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"text\":"
    );
    let started = Instant::now();
    trickle.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), trickle.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_millis(2500));
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_idle_connections_make_room_and_busy_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start(
        dir.path(),
        "max_connections = 4\nrequest_timeout = \"3s\"",
        "",
    )
    .await;
    let addr = warden.addr;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let health = format!("http://{addr}/api/health");

    // Four idle connections at the cap: a new client still gets in at once.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let started = Instant::now();
    assert_eq!(client.get(&health).send().await.unwrap().status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(idle);

    // Four connections busy with requests whose bodies never come: the
    // next client waits until the request deadline frees one.
    let mut busy = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /api/audit/notes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        busy.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    assert_eq!(client.get(&health).send().await.unwrap().status(), 200);
    let waited = started.elapsed();
    assert!(
        waited > Duration::from_millis(1500),
        "answered after {waited:?} although every slot was busy"
    );
    warden.shutdown().await.unwrap();
}

/// Resident set size of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The soft and hard open-file limits of `pid`.
fn nofile(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_owned(), fields[4].to_owned())
}

fn healthy_checks(metrics: &str, probe: &str) -> (u64, u64) {
    let count = |status: &str| {
        let key = format!("warden_probe_checks_total{{probe=\"{probe}\",status=\"{status}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (count("healthy"), count("unhealthy"))
}

/// 2,000 idle and 500 slowloris connections against the real binary started
/// at systemd's default soft limit of 1024 open files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slowloris_floods_leave_health_probes_and_memory_alone() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    // The test itself holds 2,500 sockets: raise its own soft limit first.
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    assert!(
        hard >= 3000,
        "this test needs an open-file hard limit of at least 3000 (have {hard})"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = support::process::write_config(
        dir.path(),
        "[[probes]]\nname = \"tick\"\nkind = \"command\"\ncommand = [\"true\"]\ninterval = \"200ms\"\ntimeout = \"150ms\"\n",
    );
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "shutdown_timeout = \"10s\"\n",
        "shutdown_timeout = \"10s\"\nheader_read_timeout = \"5s\"\n",
    );
    std::fs::write(&config, text).unwrap();
    let running = support::process::start_with_prefix(
        &[
            "prlimit".to_owned(),
            format!("--nofile=1024:{hard}"),
            "--".to_owned(),
        ],
        &config,
    )
    .await;
    let pid = running.child.id().unwrap();
    let (soft_now, hard_now) = nofile(pid);
    assert_eq!(
        soft_now, hard_now,
        "warden raises its soft open-file limit to the hard one"
    );
    let addr: SocketAddr = running.base.trim_start_matches("http://").parse().unwrap();
    let client = reqwest::Client::new();
    let metrics_url = format!("{}/metrics", running.base);
    let health_url = format!("{}/api/health", running.base);
    for _ in 0..20 {
        assert_eq!(client.get(&health_url).send().await.unwrap().status(), 200);
    }
    let rss_before = rss_kib(pid);

    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut slowloris = Vec::new();
    for _ in 0..500 {
        slowloris.push(tokio::spawn(async move {
            let Ok(mut stream) = TcpStream::connect(addr).await else {
                return;
            };
            if stream
                .write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .await
                .is_err()
            {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if stream.write_all(b"a").await.is_err() {
                    return;
                }
            }
        }));
    }

    let metrics = client
        .get(&metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (healthy_before, _) = healthy_checks(&metrics, "tick");
    let window = Instant::now();
    let mut latencies = Vec::new();
    for _ in 0..30 {
        let fresh = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let started = Instant::now();
        let response = fresh.get(&health_url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = window.elapsed();
    let metrics = client
        .get(&metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (healthy_after, unhealthy) = healthy_checks(&metrics, "tick");
    let rss_after = rss_kib(pid);

    latencies.sort();
    let median = latencies[latencies.len() / 2];
    eprintln!(
        "health latencies: median {median:?}, max {:?}; rss {rss_before} -> {rss_after} KiB; checks {} in {elapsed:?}",
        latencies[latencies.len() - 1],
        healthy_after - healthy_before
    );
    assert!(
        median < Duration::from_millis(100),
        "median health latency {median:?}"
    );
    assert!(
        latencies[latencies.len() * 9 / 10] < Duration::from_millis(100),
        "p90 health latency {:?}",
        latencies[latencies.len() * 9 / 10]
    );
    assert!(
        rss_after < rss_before + 30 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    assert_eq!(unhealthy, 0, "a probe failed during the flood");
    let expected = elapsed.as_millis() as u64 / 200;
    assert!(
        (healthy_after - healthy_before) * 10 >= expected * 7,
        "probes lost their cadence: {} checks in {elapsed:?}",
        healthy_after - healthy_before
    );
    for task in slowloris {
        task.abort();
    }
    drop(idle);
}

#[test]
fn the_new_service_keys_are_validated_by_name() {
    let toml = "[service]\nstate_dir = \"/tmp/x\"\nheader_read_timeout = \"0s\"\nmax_connections = 0\nallowed_hosts = [\"http://evil/\"]\ntls_cert_file = \"/tmp/cert.pem\"\n\n[[probes]]\nname = \"web\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\ntoken_file = \"/tmp/t\"\n";
    let error = load_with_env(
        &ConfigSource::Text {
            name: "test".into(),
            toml: toml.into(),
        },
        Some(HashMap::new()),
    )
    .unwrap_err()
    .lines()
    .join("\n");
    for key in [
        "service.header_read_timeout",
        "service.max_connections",
        "service.allowed_hosts[0]",
        "service.tls_key_file",
        "probes[0].token_file",
    ] {
        assert!(error.contains(key), "{key} missing from: {error}");
    }
}
