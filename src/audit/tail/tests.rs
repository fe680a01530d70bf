use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::super::test_support::{append_bytes, eventually, line, row, start};
use super::super::{NewRow, file_name};
use super::*;

async fn run(dir: &Path, opts: TailOptions) -> String {
    let mut out = Vec::new();
    tail_command(dir, opts, &mut out, std::future::pending())
        .await
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn log_of(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for seq in 1..=n {
        let seam = if seq % 2 == 0 {
            "supervision.restarted"
        } else {
            "probe.wake_requested"
        };
        append_bytes(&dir.path().join(file_name(1)), &line(seq, seam));
    }
    dir
}

#[tokio::test]
async fn human_format_prints_present_fields() {
    let dir = tempfile::tempdir().unwrap();
    let mut with_session = row(1, "probe.wake_requested");
    with_session.caller_session_id = Some("probe:web:down:1".to_owned());
    let mut bare = row(2, "supervision.restarted");
    bare.component = None;
    let mut bytes = Vec::new();
    with_session.encode_into(&mut bytes);
    bare.encode_into(&mut bytes);
    append_bytes(&dir.path().join(file_name(1)), &bytes);
    let out = run(dir.path(), TailOptions::default()).await;
    assert_eq!(
        out,
        "#1 1970-01-01T00:00:01.000Z probe.wake_requested test probe:web:down:1 {\"n\":1}\n\
         #2 1970-01-01T00:00:02.000Z supervision.restarted {\"n\":2}\n"
    );
}

#[tokio::test]
async fn json_format_is_the_raw_row() {
    let dir = log_of(3);
    let out = run(
        dir.path(),
        TailOptions {
            json: true,
            ..TailOptions::default()
        },
    )
    .await;
    let file = std::fs::read_to_string(dir.path().join(file_name(1))).unwrap();
    assert_eq!(out, file);
}

#[tokio::test]
async fn default_shows_the_last_rows() {
    let dir = log_of(25);
    let out = run(dir.path(), TailOptions::default()).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 20);
    assert!(lines[0].starts_with("#6 "));
    assert!(lines[19].starts_with("#25 "));
    let out = run(
        dir.path(),
        TailOptions {
            last: 2,
            seam: Some("supervision.*".into()),
            ..TailOptions::default()
        },
    )
    .await;
    assert_eq!(
        out.lines()
            .map(|l| l.split(' ').next().unwrap())
            .collect::<Vec<_>>(),
        ["#22", "#24"]
    );
}

#[tokio::test]
async fn since_and_seam_filter() {
    let dir = log_of(10);
    let opts = TailOptions {
        since: Some(7),
        ..TailOptions::default()
    };
    let out = run(dir.path(), opts).await;
    assert_eq!(
        out.lines()
            .map(|l| l.split(' ').next().unwrap())
            .collect::<Vec<_>>(),
        ["#7", "#8", "#9", "#10"]
    );
    let opts = TailOptions {
        since: Some(3),
        seam: Some("probe.wake_requested".into()),
        ..TailOptions::default()
    };
    let out = run(dir.path(), opts).await;
    assert_eq!(
        out.lines()
            .map(|l| l.split(' ').next().unwrap())
            .collect::<Vec<_>>(),
        ["#3", "#5", "#7", "#9"]
    );
}

/// A `Write` the test can read while the command still runs.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn follow_prints_new_rows_until_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let w = start(dir.path()).await;
    w.log
        .append(NewRow::new("a.old", serde_json::json!({})))
        .await
        .unwrap();
    let out = Shared::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = {
        let (dir, mut out) = (dir.path().to_owned(), out.clone());
        tokio::spawn(async move {
            let opts = TailOptions {
                follow: true,
                ..TailOptions::default()
            };
            tail_command(&dir, opts, &mut out, async {
                let _ = stopped.await;
            })
            .await
        })
    };
    let text = || String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    eventually(|| text().lines().count() == 1, Duration::from_secs(5)).await;
    w.log
        .append(NewRow::new("a.new", serde_json::json!({"k": 1})))
        .await
        .unwrap();
    eventually(|| text().lines().count() == 2, Duration::from_secs(5)).await;
    assert!(text().lines().nth(1).unwrap().starts_with("#2 "));
    assert!(text().ends_with(" a.new {\"k\":1}\n"), "{}", text());
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    w.stop().await;
}
