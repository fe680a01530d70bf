//! Crash safety with the real binary: `kill -9` while rows are being
//! appended, then a restart. The log must parse completely, seq must stay
//! gap-free, and every row acknowledged before the kill must be there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::process::{self, TOKEN};
use warden::audit::AuditReader;

/// Concurrent appenders, so the kill lands in the middle of group commits.
const WRITERS: usize = 16;
/// Acknowledged rows to collect before the kill.
const ACKED_BEFORE_KILL: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_burst_loses_no_acknowledged_row() {
    let dir = tempfile::tempdir().unwrap();
    let config = process::write_config(dir.path(), "");
    let client = reqwest::Client::new();

    let mut warden = process::start(&config).await;
    assert!(
        support::eventually(Duration::from_secs(30), || support::healthy(
            &client,
            &warden.base
        ))
        .await
    );

    let acked: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (client, base, acked) = (client.clone(), warden.base.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let text = format!("writer {writer} note {i}");
                let sent = client
                    .post(format!("{base}/api/audit/notes"))
                    .bearer_auth(TOKEN)
                    .json(&serde_json::json!({ "text": text }))
                    .send()
                    .await;
                let Ok(response) = sent else { break };
                let Ok(body) = response.json::<serde_json::Value>().await else {
                    break;
                };
                let Some(seq) = body["seq"].as_u64() else {
                    break;
                };
                acked.lock().unwrap().insert(seq, text);
            }
        }));
    }
    assert!(
        support::eventually(Duration::from_secs(60), || {
            let n = acked.lock().unwrap().len();
            async move { n >= ACKED_BEFORE_KILL }
        })
        .await,
        "appends were not acknowledged fast enough"
    );
    warden.child.kill().await.unwrap(); // SIGKILL, mid-burst
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    // Restart on the same state dir: recovery must pass its boot gate.
    let mut warden = process::start(&config).await;
    assert!(
        support::eventually(Duration::from_secs(30), || support::healthy(
            &client,
            &warden.base
        ))
        .await
    );
    let boot: serde_json::Value = client
        .get(format!("{}/api/boot-status", warden.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(boot["ready"], true, "{boot}");
    process::terminate(&warden.child);
    let status = tokio::time::timeout(Duration::from_secs(30), warden.child.wait())
        .await
        .expect("warden did not stop within 30s of SIGTERM")
        .unwrap();
    assert!(status.success(), "graceful stop exited with {status}");

    // Every line parses, seq is gap-free from 1, every acknowledged note is intact.
    let reader = AuditReader::open(&dir.path().join("var/audit")).unwrap();
    let rows: Vec<_> = reader
        .rows_from(1, None)
        .collect::<Result<_, _>>()
        .expect("the log parses completely");
    for (index, row) in rows.iter().enumerate() {
        assert_eq!(row.seq, index as u64 + 1, "seq gap at row {index}");
    }
    let by_seq: BTreeMap<u64, &warden::audit::AuditRow> =
        rows.iter().map(|row| (row.seq, row)).collect();
    for (seq, text) in &acked {
        let row = by_seq
            .get(seq)
            .unwrap_or_else(|| panic!("acknowledged seq {seq} is missing"));
        assert_eq!(row.seam, "operator.note");
        assert_eq!(row.details["text"], text.as_str(), "row {seq} was altered");
    }
    let torn = rows
        .iter()
        .filter(|row| row.seam == "audit.recovered")
        .count();
    eprintln!(
        "crash test: {} acknowledged before the kill, {} rows in the log, highest acked seq {:?}, torn rows recovered: {torn}",
        acked.len(),
        rows.len(),
        acked.keys().last()
    );
    let boots = rows.iter().filter(|row| row.seam == "service.boot").count();
    assert_eq!(boots, 2, "both boots are recorded");
    assert!(rows.iter().any(|row| row.seam == "service.stopping"));
}
