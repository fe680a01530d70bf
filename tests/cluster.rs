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
    assert!(status.success(), "warden exited with {status}");
    // Everything Warden wrote locally is in the stream, at the same seqs.
    let local = local_rows(&audit_dir);
    let (_, messages) = stream_state(&cluster.urls(), "WARDEN_TEST").await;
    assert_eq!(messages, local.len() as u64);
    assert_eq!(local.last().map(|r| r.seq), Some(messages));
}
