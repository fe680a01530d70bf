//! Cluster mode against a real 3-server JetStream cluster on loopback: the
//! audit log is the stream, each node's files are a copy of it, and an
//! acknowledged row survives the death of a server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorRef};
use serde_json::json;
use support::nats;
use warden::audit::{
    AuditLog, AuditMsg, AuditReader, AuditRow, AuditWriter, AuditWriterArgs, NewRow,
};
use warden::cluster::StreamLog;
use warden::settings::{ClusterKind, ClusterSettings};

const WAIT: Duration = Duration::from_secs(60);

fn settings(cluster: &nats::Cluster, node: &str) -> ClusterSettings {
    ClusterSettings {
        kind: ClusterKind::Nats,
        urls: cluster.urls(),
        node_id: Some(node.to_owned()),
        stream: "WARDEN_TEST".to_owned(),
        replicas: 3,
        publish_timeout: Duration::from_secs(2),
        ..ClusterSettings::default()
    }
}

/// Connects once the servers have elected a JetStream meta leader (the
/// stream cannot be created before).
async fn connect(settings: &ClusterSettings) -> StreamLog {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match StreamLog::connect(settings).await {
            Ok(log) => return log,
            Err(error) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no stream within {WAIT:?}: {error}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn start_writer(dir: &Path, log: StreamLog) -> (AuditLog, ActorRef<AuditMsg>) {
    let (audit, queue) = AuditLog::new();
    let mut args = AuditWriterArgs::new(dir, queue);
    args.stream = Some(Arc::new(log));
    let (writer, _) = Actor::spawn(None, AuditWriter, args).await.unwrap();
    (audit, writer)
}

fn local_rows(dir: &Path) -> Vec<AuditRow> {
    AuditReader::open(dir)
        .unwrap()
        .rows_from(1, None)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The stream's leader and message count, as the servers report them.
async fn stream_state(urls: &[String], name: &str) -> (Option<String>, u64) {
    let client = async_nats::connect(urls.to_vec()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // Right after a server died the stream may have no leader yet.
        if let Ok(mut stream) = js.get_stream(name).await
            && let Ok(info) = stream.info().await
        {
            let leader = info.cluster.as_ref().and_then(|c| c.leader.clone());
            if leader.is_some() {
                return (leader, info.state.messages);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream {name} has no leader"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_rows_survive_a_server_kill_and_every_node_holds_the_same_log() {
    let Some(binary) = nats::binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = nats::Cluster::start(&binary, dir.path(), 3).await;
    let one = settings(&cluster, "n1");
    let (audit, writer) = start_writer(&dir.path().join("n1"), connect(&one).await).await;

    // 8 appenders, 50 rows each; the stream's leader dies after 100 acks.
    const ROWS: usize = 400;
    let acked = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for task in 0..8 {
        let (audit, acked) = (audit.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..ROWS / 8 {
                let i = task * (ROWS / 8) + n;
                let row = NewRow::new("test.row", json!({ "i": i }));
                let seq = audit.append(row).await.unwrap();
                acked.fetch_add(1, Ordering::SeqCst);
                seqs.push((i, seq));
            }
            seqs
        }));
    }
    assert!(
        support::eventually(WAIT, || {
            let n = acked.load(Ordering::SeqCst);
            async move { n >= 100 }
        })
        .await
    );
    let (leader, _) = stream_state(&cluster.urls(), "WARDEN_TEST").await;
    let victim = leader.and_then(|name| cluster.index_of(&name)).unwrap_or(0);
    cluster.kill(victim);
    let at_kill = acked.load(Ordering::SeqCst);
    eprintln!("killed server {victim} (the stream's leader) after {at_kill} of {ROWS} acks");

    let mut acknowledged = BTreeMap::new();
    for task in tasks {
        let seqs = tokio::time::timeout(WAIT, task)
            .await
            .expect("every append is acknowledged once the stream has a new leader")
            .unwrap();
        acknowledged.extend(seqs);
    }
    assert_eq!(acknowledged.len(), ROWS);
    assert!(
        at_kill < ROWS,
        "the kill came after the burst; nothing was tested"
    );

    // The local copy: every acknowledged row once, at the seq its append
    // was answered with, and no gap.
    let rows = local_rows(&dir.path().join("n1"));
    let seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=ROWS as u64).collect::<Vec<_>>());
    for row in &rows {
        let i = row.details["i"].as_u64().unwrap() as usize;
        assert_eq!(acknowledged.get(&i), Some(&row.seq), "row {i}");
    }
    // The stream holds each row once: retries after the kill were recognised.
    let (_, messages) = stream_state(&cluster.urls(), "WARDEN_TEST").await;
    assert_eq!(messages, ROWS as u64);

    // A second node with an empty state dir copies the same log at start,
    // and the first node copies what the second one appends.
    let two = settings(&cluster, "n2");
    let (audit_two, writer_two) = start_writer(&dir.path().join("n2"), connect(&two).await).await;
    assert_eq!(local_rows(&dir.path().join("n2")), rows);
    let seq = audit_two
        .append(NewRow::new("test.from_n2", json!({})))
        .await
        .unwrap();
    assert_eq!(seq, ROWS as u64 + 1);
    assert!(
        support::eventually(WAIT, || {
            let last = local_rows(&dir.path().join("n1"))
                .last()
                .map(|r| r.seam.clone());
            async move { last.as_deref() == Some("test.from_n2") }
        })
        .await,
        "node 1 did not copy node 2's row"
    );
    let seq = audit
        .append(NewRow::new("test.after", json!({})))
        .await
        .unwrap();
    assert_eq!(seq, ROWS as u64 + 2);
    // Both copies end up the same, line for line.
    assert!(
        support::eventually(WAIT, || {
            let same = local_rows(&dir.path().join("n1")) == local_rows(&dir.path().join("n2"));
            async move { same }
        })
        .await,
        "the two nodes' copies differ"
    );
    writer.stop(None);
    writer_two.stop(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_run_in_cluster_mode_writes_its_log_to_the_stream() {
    let Some(binary) = nats::binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = nats::Cluster::start(&binary, dir.path(), 3).await;
    // The stream exists (and the meta leader is elected) before Warden boots.
    let ready = settings(&cluster, "probe");
    drop(connect(&ready).await);
    let urls = cluster
        .urls()
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let config = support::process::write_config(
        dir.path(),
        &format!("[cluster]\nkind = \"nats\"\nurls = [{urls}]\nstream = \"WARDEN_TEST\"\n"),
    );
    // The node id comes from the environment: one file serves every node.
    let mut warden =
        support::process::start_with_env(&config, &[("WARDEN__CLUSTER__NODE_ID", "node-a")]).await;
    let audit_dir = dir.path().join("var/audit");
    assert!(
        support::eventually(WAIT, || {
            let boot = AuditReader::open(&audit_dir)
                .ok()
                .map(|r| r.rows_from(1, Some("service.boot")).count())
                .unwrap_or(0);
            async move { boot > 0 }
        })
        .await,
        "no boot row in the local copy"
    );
    support::process::terminate(&warden.child);
    let status = tokio::time::timeout(WAIT, warden.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "warden exited with {status}: {}",
        warden.stdout.lock().unwrap().join("\n")
    );
    // Everything Warden wrote locally is in the stream, at the same seqs.
    let local = local_rows(&audit_dir);
    let (_, messages) = stream_state(&cluster.urls(), "WARDEN_TEST").await;
    assert_eq!(messages, local.len() as u64);
    assert_eq!(local.last().map(|r| r.seq), Some(messages));
}

/// A config for a node with its state under `dir`: `extra`, then the
/// cluster section (3 s lease, 1 s publish timeout).
fn cluster_config(dir: &Path, cluster: &nats::Cluster, extra: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let urls = cluster
        .urls()
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    support::process::write_config(
        dir,
        &format!(
            "{extra}\n[cluster]\nkind = \"nats\"\nurls = [{urls}]\nstream = \"WARDEN_TEST\"\nlease_ttl = \"3s\"\npublish_timeout = \"1s\"\nrebalance_within = \"3s\"\n"
        ),
    )
}

async fn lease_holder(cluster: &nats::Cluster) -> Option<String> {
    let client = async_nats::connect(cluster.urls()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let kv = js.get_key_value("WARDEN_TEST_LEASE").await.ok()?;
    let value = kv.get("active").await.ok()??;
    Some(String::from_utf8_lossy(&value).into_owned())
}

/// Waits until `node` says it took over as the active node (its consumers
/// started).
async fn took_over(node: &support::process::Running) {
    let lines = node.stdout.clone();
    assert!(
        support::eventually(WAIT, || {
            let done = lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("Took over the cluster's state"));
            async move { done }
        })
        .await,
        "the node did not take over"
    );
}

fn has_taken_over(node: &support::process::Running) -> bool {
    node.stdout
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("Took over the cluster's state"))
}

/// Starts `warden run` as `node` in the background: it returns once the
/// node's API is up (a standby serves it too).
fn start_node(
    config: &Path,
    node: &'static str,
) -> tokio::task::JoinHandle<support::process::Running> {
    let config = config.to_owned();
    tokio::spawn(async move {
        support::process::start_with_env(&config, &[("WARDEN__CLUSTER__NODE_ID", node)]).await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_is_active_at_a_time_and_a_node_cut_off_from_its_quorum_stops() {
    let Some(binary) = nats::binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = nats::Cluster::start(&binary, dir.path(), 3).await;
    drop(connect(&settings(&cluster, "probe")).await);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (config_a, config_b) = (
        cluster_config(&a, &cluster, ""),
        cluster_config(&b, &cluster, ""),
    );

    // a is active; b runs as a standby: its API, its share of the probes
    // (none here), and no consumer.
    let mut warden_a = start_node(&config_a, "node-a").await.unwrap();
    took_over(&warden_a).await;
    let warden_b = start_node(&config_b, "node-b").await.unwrap();

    // The operator sees it: the API (both nodes, once b has said it is up)
    // and the CLI.
    let cluster_view = || async {
        reqwest::Client::new()
            .get(format!("{}/api/cluster", warden_a.base))
            .bearer_auth(support::process::TOKEN)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    assert!(
        support::eventually(WAIT, || async {
            cluster_view().await["nodes"].as_array().map(Vec::len) == Some(2)
        })
        .await
    );
    let view = cluster_view().await;
    let roles: Vec<(&str, &str)> = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"].as_str().unwrap(), n["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [("node-a", "active"), ("node-b", "standby")]);
    assert_eq!(view["kind"], "nats", "{view}");
    assert_eq!(view["active"]["holder"], "node-a", "{view}");
    assert_eq!(view["active"]["this_node"], true, "{view}");
    assert!(view["log"]["lag"].is_u64(), "{view}");
    let output = tokio::process::Command::new(support::process::warden_bin())
        .args(["cluster", "status", "--api", &warden_a.base])
        .env("WARDEN_OPERATOR_TOKEN", support::process::TOKEN)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("node: node-a (active (lease revision"),
        "{text}"
    );
    assert!(text.contains("stream: WARDEN_TEST: last seq"), "{text}");
    assert!(
        text.contains("nodes: node-a (active), node-b (standby)"),
        "{text}"
    );
    let metrics = reqwest::get(format!("{}/metrics", warden_a.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for gauge in [
        "warden_cluster_log_lag_rows{node=\"node-a\"}",
        "warden_cluster_lease_revision{node=\"node-a\"}",
    ] {
        assert!(metrics.contains(gauge), "no {gauge} in {metrics}");
    }
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!has_taken_over(&warden_b), "b took over while a was active");
        assert_eq!(lease_holder(&cluster).await.as_deref(), Some("node-a"));
    }
    let view_b: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/cluster", warden_b.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The dashboard has a cluster panel fed by the same endpoint.
    let page = reqwest::get(format!("{}/", warden_b.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"cluster-section\"") && page.contains("fetch(\"/api/cluster\""),
        "no cluster panel on the dashboard"
    );
    assert_eq!(view_b["active"]["holder"], "node-a", "{view_b}");
    assert_eq!(view_b["active"]["this_node"], false, "{view_b}");

    // A graceful stop releases the lease: b starts, with a's rows first.
    support::process::terminate(&warden_a.child);
    assert!(
        tokio::time::timeout(WAIT, warden_a.child.wait())
            .await
            .unwrap()
            .unwrap()
            .success()
    );
    let rows_of_a = local_rows(&a.join("var/audit"));
    let mut warden_b = warden_b;
    took_over(&warden_b).await;
    let copied = local_rows(&b.join("var/audit"));
    assert_eq!(
        copied[..rows_of_a.len()],
        rows_of_a[..],
        "b did not copy a's log first"
    );

    // b dies without releasing: a takes over once the lease expires (3 s).
    warden_b.child.kill().await.unwrap();
    let killed = tokio::time::Instant::now();
    let mut warden_a = tokio::time::timeout(WAIT, start_node(&config_a, "node-a"))
        .await
        .unwrap()
        .unwrap();
    took_over(&warden_a).await;
    eprintln!(
        "kill -9 of the active node -> the restarted standby took over: {:?}",
        killed.elapsed()
    );
    assert_eq!(lease_holder(&cluster).await.as_deref(), Some("node-a"));

    // A partition leaves a with a minority (2 of 3 servers frozen, alive
    // but silent): it cannot renew, pauses and stops with an error instead
    // of acting on.
    cluster.freeze(1, true);
    cluster.freeze(2, true);
    let status = tokio::time::timeout(WAIT, warden_a.child.wait())
        .await
        .expect("a node without quorum stops")
        .unwrap();
    assert!(!status.success());
    let lines = warden_a.stdout.lock().unwrap().join("\n");
    assert!(lines.contains("Lost the active-node lease"), "{lines}");
    cluster.freeze(1, false);
    cluster.freeze(2, false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_active_node_mid_burst_loses_no_notice_and_wakes_nothing_twice() {
    const PROBES: usize = 200;
    const MAX_CONCURRENCY: usize = 4;
    let Some(binary) = nats::binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = nats::Cluster::start(&binary, dir.path(), 3).await;
    drop(connect(&settings(&cluster, "probe")).await);
    let target = support::targets::Switchable::start(200).await;
    let receiver = support::receiver::Receiver::start().await;
    receiver.delay(Duration::from_millis(20));
    let extra = support::process::burst_config(&receiver.url, &target.url, PROBES, MAX_CONCURRENCY);
    let nodes: Vec<std::path::PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|n| cluster_config(&dir.path().join(n), &cluster, &extra))
        .collect();
    let mut warden_a = start_node(&nodes[0], "node-a").await.unwrap();
    took_over(&warden_a).await;
    // Two standbys, each checking a third of the probes.
    let standbys = [
        start_node(&nodes[1], "node-b").await.unwrap(),
        start_node(&nodes[2], "node-c").await.unwrap(),
    ];

    target.set(503);
    assert!(
        support::eventually(WAIT, || {
            let delivered = receiver.wake_delivered_by_key().len();
            async move { delivered >= 40 }
        })
        .await,
        "the first notices did not arrive"
    );
    warden_a.child.kill().await.unwrap(); // SIGKILL, mid-burst
    let killed = tokio::time::Instant::now();
    let before = receiver.wake_delivered_by_key().len();
    // One of the standbys takes over.
    let deadline = tokio::time::Instant::now() + WAIT;
    let next = loop {
        if let Some(i) = standbys.iter().position(has_taken_over) {
            break i;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no standby took over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let warden_b = &standbys[next];
    let copy = dir.path().join(["b", "c"][next]).join("var/audit");
    // Failover as a person sees it: the kill to the next new notice.
    assert!(
        support::eventually(WAIT, || {
            let delivered = receiver.wake_delivered_by_key().len();
            async move { delivered > before }
        })
        .await
    );
    let failover = killed.elapsed();
    let all = support::eventually(Duration::from_secs(120), || {
        let delivered = receiver.wake_delivered_by_key().len();
        async move { delivered >= PROBES }
    })
    .await;
    let delivered = receiver.wake_delivered_by_key();
    if !all {
        let rows = local_rows(&copy);
        let wakes: Vec<u64> = rows
            .iter()
            .filter(|r| r.seam == "probe.wake_requested")
            .map(|r| r.seq)
            .collect();
        let missing: Vec<&u64> = wakes
            .iter()
            .filter(|s| !delivered.contains_key(&format!("warden-{s}")))
            .collect();
        let lines = warden_b
            .stdout
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("ursor") || l.contains("restored") || l.contains("Took over"))
            .cloned()
            .collect::<Vec<_>>();
        panic!(
            "only {} of {PROBES} issues reached the receiver; {} wakes in the log, missing {missing:?}; last seq {:?}; b said {lines:#?}",
            delivered.len(),
            wakes.len(),
            rows.last().map(|r| r.seq)
        );
    }
    for standby in &standbys {
        support::process::terminate(&standby.child);
    }

    // One wake per probe in the cluster's log (the new node's copy of it), each
    // noticed under its own key; repeats only for notices in flight at the kill.
    let wakes: std::collections::BTreeSet<String> = local_rows(&copy)
        .iter()
        .filter(|row| row.seam == "probe.wake_requested")
        .map(|row| format!("warden-{}", row.seq))
        .collect();
    assert_eq!(
        wakes.len(),
        PROBES,
        "one issue per probe, none woken again by the new node"
    );
    let keys: std::collections::BTreeSet<String> = delivered.keys().cloned().collect();
    assert_eq!(keys, wakes);
    // No incident opened twice: the new node took over the old one's
    // incidents (the state files in the cluster, and those only the log
    // knows, adopted from their `incident.opened` rows).
    let opened: Vec<(String, String)> = local_rows(&copy)
        .into_iter()
        .filter(|row| row.seam == "incident.opened")
        .map(|row| {
            (
                row.details["id"].as_str().unwrap_or_default().to_owned(),
                row.caller_session_id.unwrap_or_default(),
            )
        })
        .collect();
    let ids: std::collections::BTreeSet<&String> = opened.iter().map(|(id, _)| id).collect();
    assert!(!opened.is_empty());
    assert_eq!(
        ids.len(),
        opened.len(),
        "an incident opened twice: {opened:?}"
    );
    let repeated = delivered.values().filter(|n| **n > 1).count();
    eprintln!(
        "cluster failover: {before} delivered before the kill, {} after, {repeated} repeated (same key); kill -> next new notice {failover:?} (lease TTL 3s)",
        delivered.len()
    );
    assert!(
        repeated <= MAX_CONCURRENCY,
        "{repeated} notices repeated: {delivered:?}"
    );
}

/// Every check a target served, by probe (the path), in arrival order.
type Checks = Arc<std::sync::Mutex<BTreeMap<String, Vec<tokio::time::Instant>>>>;

/// A target on loopback that answers 200 on `/p/<probe>` and records when.
async fn recording_target() -> (String, Checks) {
    let (base, checks, _) = switchable_recording_target().await;
    (base, checks)
}

/// [`recording_target`] that answers 503 while its flag is set.
async fn switchable_recording_target() -> (String, Checks, Arc<std::sync::atomic::AtomicBool>) {
    let checks: Checks = Arc::default();
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (seen, down) = (checks.clone(), failing.clone());
    let app = axum::Router::new().route(
        "/p/{probe}",
        axum::routing::get(
            move |axum::extract::Path(probe): axum::extract::Path<String>| {
                let (seen, down) = (seen.clone(), down.clone());
                async move {
                    seen.lock()
                        .unwrap()
                        .entry(probe)
                        .or_default()
                        .push(tokio::time::Instant::now());
                    if down.load(Ordering::SeqCst) {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down")
                    } else {
                        (axum::http::StatusCode::OK, "ok")
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/p", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, checks, failing)
}

/// Probes checked twice within `gap` (by two nodes) since `from`.
fn doubled(checks: &Checks, from: tokio::time::Instant, gap: Duration) -> Vec<String> {
    checks
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| {
            at.windows(2)
                .any(|w| w[0] >= from && w[1].duration_since(w[0]) < gap)
        })
        .map(|(probe, _)| probe.clone())
        .collect()
}

/// `n` HTTP probes `p<i>` against `<target>/p<i>`.
fn probe_tables(target: &str, n: usize, interval: &str, timeout: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[probes]]\nname = \"p{i}\"\nkind = \"http\"\nurl = \"{target}/p{i}\"\ninterval = \"{interval}\"\ntimeout = \"{timeout}\"\n"
            )
        })
        .collect()
}

/// The probes a node's `/api/cluster` says it checks.
fn owned_probes(view: &serde_json::Value) -> Vec<String> {
    view["probes"]["owned"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn cluster_view(base: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{base}/api/cluster"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_are_spread_over_the_live_nodes_and_a_dead_nodes_probes_move_within_the_bound() {
    const PROBES: usize = 60;
    let Some(binary) = nats::binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = nats::Cluster::start(&binary, dir.path(), 3).await;
    drop(connect(&settings(&cluster, "probe")).await);
    let (target, checks) = recording_target().await;
    let extra = probe_tables(&target, PROBES, "1s", "900ms");
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        let config = cluster_config(&dir.path().join(name), &cluster, &extra);
        let node = format!("node-{name}");
        let running = support::process::start_with_env(
            &config,
            &[("WARDEN__CLUSTER__NODE_ID", node.as_str())],
        )
        .await;
        nodes.push((node, running));
    }

    // Every node sees the same three members and owns a disjoint share.
    let split = || async {
        let mut owned: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (node, running) in &nodes {
            let view = cluster_view(&running.base).await;
            let mine = owned_probes(&view);
            if view["probes"]["by_node"].as_object().map(|m| m.len()) != Some(3) {
                return None;
            }
            owned.insert(node.clone(), mine);
        }
        Some(owned)
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    let owned = loop {
        if let Some(owned) = split()
            .await
            .filter(|owned| owned.values().map(Vec::len).sum::<usize>() == PROBES)
        {
            break owned;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the nodes did not settle on one split"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut all: Vec<&String> = owned.values().flatten().collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        PROBES,
        "a probe owned twice or by nobody: {owned:?}"
    );
    for (node, share) in &owned {
        assert!(!share.is_empty(), "{node} owns nothing: {owned:?}");
    }

    // Settled: each probe is checked by one node, about once a second.
    let from = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let twice = doubled(&checks, from, Duration::from_millis(500));
    assert!(twice.is_empty(), "checked by two nodes at once: {twice:?}");
    // The split is on /metrics too, one gauge per node.
    let metrics = reqwest::get(format!("{}/metrics", nodes[0].1.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (node, share) in &owned {
        let gauge = format!(
            "warden_cluster_probes_owned{{node=\"{node}\"}} {}",
            share.len()
        );
        assert!(metrics.contains(&gauge), "no {gauge} in {metrics}");
    }

    // kill -9 node-c: its probes are checked again by the others within
    // cluster.rebalance_within (3 s) plus one interval.
    let (_, mut running_c) = nodes.pop().unwrap();
    let orphans = owned["node-c"].clone();
    running_c.child.kill().await.unwrap();
    let killed = tokio::time::Instant::now();
    let resumed = || {
        let checks = checks.lock().unwrap();
        orphans.iter().all(|probe| {
            checks
                .get(probe)
                .and_then(|at| at.last())
                .is_some_and(|last| *last > killed + Duration::from_millis(1100))
        })
    };
    assert!(
        support::eventually(WAIT, || {
            let done = resumed();
            async move { done }
        })
        .await,
        "node-c's probes were not taken over"
    );
    let moved_after = killed.elapsed();
    eprintln!(
        "kill -9 of a node -> all its {} probes checked elsewhere: {moved_after:?}",
        orphans.len()
    );
    assert!(
        moved_after
            <= Duration::from_secs(3) + Duration::from_secs(1) + Duration::from_millis(1500),
        "took {moved_after:?}"
    );
    let after = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let twice = doubled(&checks, after, Duration::from_millis(500));
    assert!(
        twice.is_empty(),
        "checked by two nodes at once after the move: {twice:?}"
    );
    for (_, running) in &nodes {
        support::process::terminate(&running.child);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_cut_off_from_the_servers_keeps_checking_and_its_rows_reach_the_stream_after() {
    const PROBES: usize = 10;
    let Some(binary) = nats::binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = nats::Cluster::start(&binary, dir.path(), 3).await;
    drop(connect(&settings(&cluster, "probe")).await);
    let (target, checks, failing) = switchable_recording_target().await;
    let extra = format!(
        "[debounce]\nfailure_threshold = 1\n\n{}",
        probe_tables(&target, PROBES, "500ms", "400ms")
    );
    let (config_a, config_b) = (
        cluster_config(&dir.path().join("a"), &cluster, &extra),
        cluster_config(&dir.path().join("b"), &cluster, &extra),
    );
    let mut warden_a = start_node(&config_a, "node-a").await.unwrap();
    took_over(&warden_a).await;
    let warden_b = start_node(&config_b, "node-b").await.unwrap();
    let owned_by_b = || async { owned_probes(&cluster_view(&warden_b.base).await) };
    assert!(
        support::eventually(WAIT, || async { !owned_by_b().await.is_empty() }).await,
        "b took no share"
    );
    let share = owned_by_b().await;

    // Every server frozen: the active node cannot renew and stops; the
    // standby keeps checking its share, and the issues its probes now find
    // wait in memory for the stream.
    for i in 0..3 {
        cluster.freeze(i, true);
    }
    let status = tokio::time::timeout(WAIT, warden_a.child.wait())
        .await
        .expect("the active node stops without its servers")
        .unwrap();
    assert!(!status.success());
    failing.store(true, Ordering::SeqCst);
    let cut_off = tokio::time::Instant::now();
    let checked_since = |probe: &str| {
        checks
            .lock()
            .unwrap()
            .get(probe)
            .map_or(0, |at| at.iter().filter(|t| **t > cut_off).count())
    };
    assert!(
        support::eventually(WAIT, || {
            let done = share.iter().all(|p| checked_since(p) >= 3);
            async move { done }
        })
        .await,
        "b stopped checking while cut off"
    );

    // The servers are back: b's rows reach the stream, b takes over, and
    // each of its probes' issues is woken once.
    for i in 0..3 {
        cluster.freeze(i, false);
    }
    took_over(&warden_b).await;
    let copy = dir.path().join("b/var/audit");
    let woken = || {
        local_rows(&copy)
            .into_iter()
            .filter(|row| row.seam == "probe.wake_requested")
            .filter_map(|row| row.details["probe"].as_str().map(str::to_owned))
            .collect::<Vec<String>>()
    };
    assert!(
        support::eventually(WAIT, || {
            let woken = woken();
            let done = share.iter().all(|p| woken.contains(p));
            async move { done }
        })
        .await,
        "the issues b found while cut off did not reach the stream: {:?} of {share:?}",
        woken()
    );
    let woken = woken();
    for probe in &share {
        assert_eq!(
            woken.iter().filter(|p| *p == probe).count(),
            1,
            "{probe} woken twice: {woken:?}"
        );
    }
    support::process::terminate(&warden_b.child);
}
