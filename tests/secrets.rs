//! Secrets stay secret: eighteen distinct secrets, planted inline in the
//! TOML, in files and in `WARDEN__*` environment variables, drive the real
//! `warden` binary through a failing probe, an issue, an incident with
//! evidence, notices (webhook, Slack, PagerDuty), a fix, an escalation to an
//! authenticated tier and an investigator call, against loopback endpoints
//! that echo what they are sent. Afterwards none of the secrets appears in
//! the state dir, stdout, stderr, any GET answer of the API, the dashboard,
//! `/metrics`, the exported spans or `check-config`'s output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use warden::audit::AuditReader;

const WAIT: Duration = Duration::from_secs(60);

/// One request an endpoint received.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    query: String,
    headers: BTreeMap<String, String>,
}

/// Every endpoint Warden calls, on one loopback server. Each answer echoes
/// the headers and query it was sent, as a careless or hostile server would.
async fn endpoints() -> (String, Arc<Mutex<Vec<Hit>>>) {
    let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
    let record = hits.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let record = record.clone();
        async move {
            let hit = Hit {
                path: uri.path().to_owned(),
                query: uri.query().unwrap_or_default().to_owned(),
                headers: headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            v.to_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
            };
            let echo = format!("echo {:?} {}", hit.headers, hit.query);
            let earlier = {
                let mut hits = record.lock().unwrap();
                let earlier = hits.iter().filter(|h| h.path == hit.path).count();
                hits.push(hit.clone());
                earlier
            };
            let path = hit.path.as_str();
            match (method, path) {
                (Method::GET, "/probe") => (StatusCode::SERVICE_UNAVAILABLE, echo),
                // The webhook notifier's first attempt fails with an echo, the retry lands.
                (_, "/hook") if earlier == 0 => (StatusCode::INTERNAL_SERVER_ERROR, echo),
                (_, "/hook") | (_, "/pd") => (StatusCode::ACCEPTED, "{}".to_owned()),
                (_, "/fix") => (StatusCode::OK, echo),
                (_, "/tier") => (
                    StatusCode::OK,
                    serde_json::json!({ "status": "rejected", "notes": echo }).to_string(),
                ),
                (_, "/investigate") => (StatusCode::BAD_REQUEST, echo),
                (_, p) if p.starts_with("/services/") => (StatusCode::OK, "ok".to_owned()),
                _ => (StatusCode::NOT_FOUND, echo),
            }
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, hits)
}

/// The planted secrets, each distinct and unlikely to occur by chance.
struct Secrets {
    op_token_env: &'static str,
    op_token_inline: &'static str,
    probe_inline: &'static str,
    probe_file: &'static str,
    hook_query: &'static str,
    hook_header: &'static str,
    hmac_file: &'static str,
    slack_path: &'static str,
    pd_routing: &'static str,
    tier_pass: &'static str,
    tier_header_file: &'static str,
    tier_bearer_file: &'static str,
    env_inline: &'static str,
    env_file: &'static str,
    fix_header: &'static str,
    inv_key_env: &'static str,
    inv_query_env: &'static str,
    tier_query: &'static str,
}

const S: Secrets = Secrets {
    op_token_env: "zq-optoken-env-6e7f8a9b0c",
    op_token_inline: "zq-optoken-inline-7f3a9c2e",
    probe_inline: "zq-probe-hdr-inline-1b2c",
    probe_file: "zq-probe-hdr-file-4e5f",
    hook_query: "zq-hook-query-5d6e",
    hook_header: "zq-hook-hdr-8f9a",
    hmac_file: "zq-hmac-file-8c9d",
    slack_path: "zq-slack-path-6a7b",
    pd_routing: "zq-pd-routing-2c3d",
    tier_pass: "zq-tier-pass-3c4d",
    tier_header_file: "zq-tier-hdr-file-0e1f",
    tier_bearer_file: "zq-tier-bearer-2a3b",
    env_inline: "zq-env-inline-6e7f",
    env_file: "zq-env-file-4c5d",
    fix_header: "zq-fix-hdr-0a1b",
    inv_key_env: "zq-inv-key-env-0c1d",
    inv_query_env: "zq-inv-query-env-2e3f",
    tier_query: "zq-tier-query-9e8d",
};

fn all_secrets() -> Vec<&'static str> {
    vec![
        S.op_token_env,
        S.op_token_inline,
        S.probe_inline,
        S.probe_file,
        S.hook_query,
        S.hook_header,
        S.hmac_file,
        S.slack_path,
        S.pd_routing,
        S.tier_pass,
        S.tier_header_file,
        S.tier_bearer_file,
        S.env_inline,
        S.env_file,
        S.fix_header,
        S.inv_key_env,
        S.inv_query_env,
        S.tier_query,
    ]
}

fn secret_file(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join("secrets").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("{content}\n")).unwrap();
    path.display().to_string()
}

fn config(dir: &Path, base: &str, otlp: &str) -> PathBuf {
    let text = format!(
        r#"[service]
state_dir = "{state}"
api_listen = "127.0.0.1:0"
operator_tokens = ["{op_inline}"]
shutdown_timeout = "10s"

[telemetry]
log_format = "json"
otlp_endpoint = "{otlp}"

[supervision]
stable_after = "300ms"

[debounce]
failure_threshold = 2

[[probes]]
name = "api"
kind = "http"
url = "{base}/probe"
interval = "100ms"
timeout = "80ms"
headers = {{ X-Probe-Inline = "{probe_inline}" }}
headers_files = {{ X-Probe-File = "{probe_file}" }}

[[notifiers]]
name = "hook"
kind = "webhook"
url = "{base}/hook?key={hook_query}"
headers = {{ X-Hook-Key = "{hook_header}" }}
secret_file = "{hmac_file}"
backoff_min = "50ms"

[[notifiers]]
name = "chat"
kind = "slack"
url_file = "{slack_file}"

[[notifiers]]
name = "pager"
kind = "pagerduty"
url = "{base}/pd"
routing_key = "{pd_routing}"

[investigator]
kind = "webhook"

[[components]]
name = "api"
criticality = "high"
probes = ["api"]
run = ["sleep", "600"]
env = {{ ZQ_ENV_INLINE = "{env_inline}" }}
env_files = {{ ZQ_ENV_FILE = "{env_file}" }}
final_tier_threshold = 1
[components.fix]
enabled = true
verify_timeout = "300ms"
action = {{ kind = "http", url = "{base}/fix", headers = {{ X-Fix-Key = "{fix_header}" }} }}
[[components.tiers]]
name = "agent"
kind = "webhook"
enabled = true
url = "{tier_url}"
headers_files = {{ X-Tier-Key = "{tier_header_file}" }}
bearer_token_file = "{tier_bearer_file}"
"#,
        state = dir.join("var").display(),
        op_inline = S.op_token_inline,
        probe_inline = S.probe_inline,
        probe_file = secret_file(dir, "probe", S.probe_file),
        hook_query = S.hook_query,
        hook_header = S.hook_header,
        hmac_file = secret_file(dir, "hmac", S.hmac_file),
        slack_file = secret_file(
            dir,
            "slack",
            &format!("{base}/services/T0/B0/{}", S.slack_path)
        ),
        pd_routing = S.pd_routing,
        env_inline = S.env_inline,
        env_file = secret_file(dir, "env", S.env_file),
        fix_header = S.fix_header,
        tier_url = base.replace("http://", &format!("http://agent:{}@", S.tier_pass))
            + &format!("/tier?sig={}", S.tier_query),
        tier_header_file = secret_file(dir, "tier-key", S.tier_header_file),
        tier_bearer_file = secret_file(dir, "tier-bearer", S.tier_bearer_file),
    );
    let path = dir.join("warden.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn environment(base: &str) -> Vec<(String, String)> {
    vec![
        (
            "WARDEN__SERVICE__OPERATOR_TOKEN".into(),
            S.op_token_env.into(),
        ),
        ("WARDEN__INVESTIGATOR__API_KEY".into(), S.inv_key_env.into()),
        (
            "WARDEN__INVESTIGATOR__URL".into(),
            format!("{base}/investigate?token={}", S.inv_query_env),
        ),
    ]
}

fn command(config: &Path, base: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(support::process::warden_bin());
    command
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .envs(environment(base))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

fn rows(dir: &Path, seam: &str) -> usize {
    AuditReader::open(&dir.join("var/audit"))
        .map(|reader| {
            reader
                .rows_from(1, Some(seam))
                .filter_map(Result::ok)
                .count()
        })
        .unwrap_or(0)
}

/// Every regular file under `root`, as (path, lossy text).
fn files(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                out.push((path, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    out
}

fn has_evidence_config(dir: &Path) -> bool {
    files(&dir.join("var"))
        .iter()
        .any(|(path, _)| path.to_string_lossy().contains("effective-config"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_from_any_source_reaches_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let (base, hits) = endpoints().await;
    let mut collector = FakeCollectorServer::start().await.unwrap();
    let config = config(dir.path(), &base, &collector.endpoint());
    let spans: Arc<Mutex<Vec<ExportedSpan>>> = Arc::default();
    let sink = spans.clone();
    let drain_spans = tokio::spawn(async move {
        loop {
            let batch = collector
                .exported_spans(1, Duration::from_millis(200))
                .await;
            sink.lock().unwrap().extend(batch);
        }
    });

    // check-config, with the same sources, prints no secret either.
    let checked = command(&config, &base)
        .arg("check-config")
        .output()
        .await
        .unwrap();
    let check_output = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(checked.status.success(), "{check_output}");

    let mut child = command(&config, &base).arg("run").spawn().unwrap();
    let stdout = Arc::new(Mutex::new(String::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<String>();
    let out = stdout.clone();
    let mut out_lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let drain_out = tokio::spawn(async move {
        let mut addr_tx = Some(addr_tx);
        while let Ok(Some(line)) = out_lines.next_line().await {
            if let Ok(value) = serde_json::from_str::<Value>(&line)
                && value["message"] == "API listening."
                && let Some(addr) = value["addr"].as_str()
                && let Some(tx) = addr_tx.take()
            {
                let _ = tx.send(addr.to_owned());
            }
            let mut out = out.lock().unwrap();
            out.push_str(&line);
            out.push('\n');
        }
    });
    let err = stderr.clone();
    let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let drain_err = tokio::spawn(async move {
        while let Ok(Some(line)) = err_lines.next_line().await {
            let mut err = err.lock().unwrap();
            err.push_str(&line);
            err.push('\n');
        }
    });
    let addr = tokio::time::timeout(WAIT, addr_rx)
        .await
        .expect("no API address")
        .expect("warden exited early");
    let api = format!("http://{addr}");

    // The whole story: issue, incident with evidence, notices, fix, tier, investigation.
    let seen = |path: &str| {
        hits.lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path || h.path.starts_with(&format!("{path}/")))
            .count()
    };
    let story = support::eventually(WAIT, || {
        let done = rows(dir.path(), "incident.opened") >= 1
            && rows(dir.path(), "escalation.tier_called") >= 1
            && rows(dir.path(), "service.config_known_good") >= 1
            && rows(dir.path(), "probe.investigation_completed") >= 1
            && has_evidence_config(dir.path())
            && seen("/hook") >= 2
            && seen("/services") >= 1
            && seen("/pd") >= 1
            && seen("/fix") >= 1
            && seen("/tier") >= 1
            && seen("/investigate") >= 1;
        async move { done }
    })
    .await;
    let hits_now = hits.lock().unwrap().clone();
    assert!(
        story,
        "the story did not complete; endpoints hit: {:?}; rows: {:#?}",
        hits_now
            .iter()
            .map(|h| h.path.clone())
            .filter(|p| p != "/probe")
            .collect::<Vec<_>>(),
        AuditReader::open(&dir.path().join("var/audit"))
            .unwrap()
            .rows_from(1, None)
            .filter_map(Result::ok)
            .filter(|r| !r.seam.starts_with("probe.observ"))
            .map(|r| format!("{} {}", r.seam, r.details))
            .collect::<Vec<_>>()
    );

    // Each secret was used where it belongs: the headers and URLs arrived.
    let first = |path: &str| {
        hits_now
            .iter()
            .find(|h| h.path == path)
            .cloned()
            .unwrap_or_else(|| panic!("no request to {path}"))
    };
    let probe = first("/probe");
    assert_eq!(probe.headers["x-probe-inline"], S.probe_inline);
    assert_eq!(probe.headers["x-probe-file"], S.probe_file);
    let hook = first("/hook");
    assert_eq!(hook.headers["x-hook-key"], S.hook_header);
    assert_eq!(hook.query, format!("key={}", S.hook_query));
    let tier = first("/tier");
    assert_eq!(
        tier.headers["authorization"],
        format!("Bearer {}", S.tier_bearer_file)
    );
    assert_eq!(tier.headers["x-tier-key"], S.tier_header_file);
    assert_eq!(tier.query, format!("sig={}", S.tier_query));
    assert_eq!(first("/fix").headers["x-fix-key"], S.fix_header);
    let investigate = first("/investigate");
    assert_eq!(
        investigate.headers["authorization"],
        format!("Bearer {}", S.inv_key_env)
    );
    assert_eq!(investigate.query, format!("token={}", S.inv_query_env));
    assert!(hits_now.iter().any(|h| h.path.ends_with(S.slack_path)));

    // Every GET answer of the API, read with the operator token.
    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{api}{path}");
        async move {
            let response = client
                .get(&url)
                .bearer_auth(S.op_token_env)
                .send()
                .await
                .unwrap();
            format!(
                "GET {url} -> {}\n{}\n",
                response.status(),
                response.text().await.unwrap()
            )
        }
    };
    let mut answers = String::new();
    for path in [
        "/",
        "/api/dashboard",
        "/api/health",
        "/api/boot-status",
        "/api/operational-state",
        "/api/cluster",
        "/api/probes",
        "/api/probes/api",
        "/api/issues",
        "/api/wake",
        "/metrics",
        "/api/incidents",
    ] {
        answers.push_str(&get(path.to_owned()).await);
    }
    let mut since = 1_u64;
    loop {
        let page = get(format!("/api/audit?since={since}&limit=1000")).await;
        let body: Value = serde_json::from_str(page.split_once('\n').unwrap().1.trim()).unwrap();
        let count = body["rows"].as_array().map_or(0, Vec::len);
        answers.push_str(&page);
        match body["next_since"].as_u64() {
            Some(next) if count > 0 && next > since => since = next,
            _ => break,
        }
    }
    let incidents: Value = serde_json::from_str(
        get("/api/incidents".to_owned())
            .await
            .split_once('\n')
            .unwrap()
            .1
            .trim(),
    )
    .unwrap();
    for incident in incidents["incidents"].as_array().unwrap() {
        let id = incident["id"].as_str().unwrap();
        answers.push_str(&get(format!("/api/incidents/{id}")).await);
    }

    // Stop, let every output drain, and collect the exported spans.
    support::process::terminate(&child);
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "warden exited with {status}");
    drain_out.await.unwrap();
    drain_err.await.unwrap();
    assert!(
        support::eventually(WAIT, || {
            let any = spans
                .lock()
                .unwrap()
                .iter()
                .any(|s| s.name == "escalation.cycle");
            async move { any }
        })
        .await,
        "no spans exported"
    );
    drain_spans.abort();
    let exported = format!("{:?}", spans.lock().unwrap());

    let mut corpora: Vec<(String, String)> = vec![
        ("stdout".into(), stdout.lock().unwrap().clone()),
        ("stderr".into(), stderr.lock().unwrap().clone()),
        ("API answers".into(), answers),
        ("exported spans".into(), exported),
        ("check-config".into(), check_output),
    ];
    let state_files = files(&dir.path().join("var"));
    assert!(
        state_files
            .iter()
            .any(|(p, _)| p.ends_with("snapshots/_warden/config.toml")),
        "the raw config snapshot was not written: {:?}",
        state_files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    corpora.extend(
        state_files
            .into_iter()
            .map(|(path, text)| (path.display().to_string(), text)),
    );
    let mut leaks = Vec::new();
    for secret in all_secrets() {
        for (name, text) in &corpora {
            if let Some(at) = text.find(secret) {
                let start = text[..at]
                    .char_indices()
                    .rev()
                    .nth(80)
                    .map_or(0, |(i, _)| i);
                let end = (at + secret.len() + 80).min(text.len());
                let end = (end..=text.len())
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(text.len());
                leaks.push(format!("{secret} in {name}: …{}…", &text[start..end]));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leak(s):\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}
