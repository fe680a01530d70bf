//! The processes Warden starts, against the real binary: exactly one copy of
//! each managed process survives a `kill -9` of Warden and a restart, and no
//! child sees Warden's `WARDEN__*` variables.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use support::process::{self, TOKEN};

/// The marked processes alive now, as `(pid, process group)`. Children carry
/// `CHILD_MARK=<mark>` in their environment, so grandchildren are found too.
fn marked(mark: &str) -> Vec<(i32, i32)> {
    let needle = format!("CHILD_MARK={mark}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| String::from_utf8_lossy(&env).contains(&needle))
        })
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let fields: Vec<&str> = stat
                .get(stat.rfind(')')? + 1..)?
                .split_whitespace()
                .collect();
            // A zombie waits for its reaper; it is not running.
            (fields.first() != Some(&"Z")).then_some((pid, fields.get(2)?.parse().ok()?))
        })
        .collect()
}

fn groups(processes: &[(i32, i32)]) -> BTreeSet<i32> {
    processes.iter().map(|(_, group)| *group).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_a_restart_leave_exactly_one_copy_of_each_managed_process() {
    let dir = tempfile::tempdir().unwrap();
    let mark = format!("h6-{}-{}", std::process::id(), line!());
    // `svc` leaves a grandchild in its group that no parent-death signal
    // reaches; `solo` is a plain leader.
    let config = process::write_config(
        dir.path(),
        &format!(
            r#"
[[components]]
name = "svc"
run = ["sh", "-c", "sleep 600 & wait"]
env = {{ CHILD_MARK = "{mark}" }}
stop_timeout = "2s"

[[components]]
name = "solo"
run = ["sleep", "600"]
env = {{ CHILD_MARK = "{mark}" }}
stop_timeout = "2s"
"#
        ),
    );
    let mut warden = process::start(&config).await;
    assert!(
        support::eventually(Duration::from_secs(30), || std::future::ready(
            marked(&mark).len() == 3
        ))
        .await,
        "{:?}",
        marked(&mark)
    );
    let before = marked(&mark);
    assert_eq!(groups(&before).len(), 2, "{before:?}");
    // A child is visible before Warden has written its group's record; kill
    // Warden only once both records are on disk, as a real crash would find.
    let records = dir.path().join("var").join("managed");
    assert!(
        support::eventually(Duration::from_secs(30), || std::future::ready(
            ["svc", "solo"]
                .iter()
                .all(|name| records.join(format!("{name}.json")).is_file())
        ))
        .await,
        "the group records were never written under {}",
        records.display()
    );

    warden.child.kill().await.unwrap(); // SIGKILL
    // Parent-death signal: both group leaders die with Warden; only svc's
    // grandchild is left, for the records to find.
    assert!(
        support::eventually(Duration::from_secs(10), || std::future::ready(
            marked(&mark).iter().all(|(pid, group)| pid != group)
        ))
        .await,
        "a group leader outlived Warden: {:?}",
        marked(&mark)
    );

    let mut warden = process::start(&config).await;
    let one_each = || {
        let now = marked(&mark);
        let fresh = now.iter().all(|process| !before.contains(process));
        now.len() == 3 && groups(&now).len() == 2 && fresh
    };
    assert!(
        support::eventually(Duration::from_secs(30), || std::future::ready(one_each())).await,
        "before the kill: {before:?}; after the restart: {:?}",
        marked(&mark)
    );
    let rows = support::instance::wait_rows(dir.path(), "managed.previous_stopped", 2).await;
    assert!(
        rows.iter()
            .any(|row| row.component.as_deref() == Some("svc")
                && row.details["outcome"] == "stopped"),
        "{rows:?}"
    );

    process::terminate(&warden.child);
    tokio::time::timeout(Duration::from_secs(30), warden.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        support::eventually(Duration::from_secs(10), || std::future::ready(
            marked(&mark).is_empty()
        ))
        .await,
        "left behind after a graceful stop: {:?}",
        marked(&mark)
    );
}

/// The `KEY=` names in `text`, one variable per line.
fn names(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| line.split_once('=').map(|(key, _)| key))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_never_see_warden_variables() {
    let dir = tempfile::tempdir().unwrap();
    let config = process::write_config(
        dir.path(),
        r#"
[[probes]]
name = "env"
kind = "command"
command = ["sh", "-c", "env | grep -E '^WARDEN(__|_OPERATOR_TOKEN=)'; echo probe-done"]
interval = "200ms"
timeout = "150ms"

[[components]]
name = "envy"
run = ["sh", "-c", "env | grep -E '^WARDEN(__|_OPERATOR_TOKEN=)'; echo managed-done; exec sleep 600"]
stop_timeout = "2s"
"#,
    );
    let mut warden = process::start_with_env(
        &config,
        &[
            ("WARDEN__SERVICE__OPERATOR_TOKEN", TOKEN),
            ("WARDEN_OPERATOR_TOKEN", TOKEN),
        ],
    )
    .await;
    let client = reqwest::Client::new();

    let probe = wait_probe(&client, &warden.base, "env", |probe| {
        probe["latest"]["details"]["body_excerpt"]
            .as_str()
            .is_some_and(|body| body.contains("probe-done"))
    })
    .await;
    let body = probe["latest"]["details"]["body_excerpt"].as_str().unwrap();
    // Only Warden's own variables are withheld; others (a CI's
    // WARDEN_REQUIRE_BROWSER, say) pass through like any environment.
    assert!(!body.contains("WARDEN__"), "a probe saw: {body}");
    assert!(
        !body.contains("WARDEN_OPERATOR_TOKEN"),
        "a probe saw: {body}"
    );
    assert!(!body.contains(TOKEN));

    let log = dir
        .path()
        .join("var/logs/envy")
        .join(warden::managed::OUTPUT_FILE);
    assert!(
        support::eventually(Duration::from_secs(30), || std::future::ready(
            read(&log).contains("managed-done")
        ))
        .await,
        "{}",
        read(&log)
    );
    let output = read(&log);
    assert!(
        !output.contains("WARDEN__") && !output.contains("WARDEN_OPERATOR_TOKEN"),
        "a managed process saw: {output}"
    );
    assert!(names(&output).is_empty(), "{output}");

    process::terminate(&warden.child);
    tokio::time::timeout(Duration::from_secs(30), warden.child.wait())
        .await
        .unwrap()
        .unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_output_is_escaped_before_it_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    // ESC sequences (colour, window title, clear screen), a bell, a CR that
    // would overwrite the line, and HTML.
    let config = process::write_config(
        dir.path(),
        r#"
[debounce]
failure_threshold = 2

[[probes]]
name = "noisy"
kind = "command"
command = ["sh", "-c", '''printf '\033[31mRED\033]0;pwned\007 <script>alert(1)</script>\n'; printf 'fake\rerr\033[2J\n' >&2; exit 2''']
interval = "200ms"
timeout = "150ms"
severity = "critical"

[[notifiers]]
name = "console"
kind = "log"
"#,
    );
    let mut warden = process::start(&config).await;
    let client = reqwest::Client::new();
    let probe = wait_probe(&client, &warden.base, "noisy", |probe| {
        probe["latest"]["details"]["body_excerpt"].is_string()
    })
    .await;
    let details = &probe["latest"]["details"];
    assert_eq!(
        details["body_excerpt"],
        "\\u{1b}[31mRED\\u{1b}]0;pwned\\u{7} <script>alert(1)</script>\n"
    );
    assert_eq!(details["stderr_excerpt"], "fake\\u{d}err\\u{1b}[2J\n");
    let reasons = probe["latest"]["reasons"].to_string();
    assert!(reasons.contains("fake\\\\u{d}err\\\\u{1b}[2J"), "{reasons}");

    // The terminal: the log notifier's human line, once the issue fires.
    let firing = || {
        warden
            .stdout
            .lock()
            .unwrap()
            .iter()
            .find(|line| line.starts_with("[warden] FIRING"))
            .cloned()
    };
    assert!(
        support::eventually(Duration::from_secs(30), || std::future::ready(
            firing().is_some()
        ))
        .await,
        "no notice on stdout"
    );
    let stdout = warden.stdout.lock().unwrap().join("\n");
    assert!(!stdout.contains('\u{1b}'), "a raw ESC reached the terminal");
    assert!(!stdout.contains('\r'));

    // The dashboard's data, and a page that renders it only as text.
    let dashboard = client
        .get(format!("{}/api/dashboard", warden.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !dashboard.contains("\\u001b"),
        "raw ESC in the dashboard data"
    );
    let page = client
        .get(format!("{}/", warden.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for sink in [
        ".innerHTML",
        ".outerHTML",
        "insertAdjacentHTML",
        "document.write",
    ] {
        assert!(!page.contains(sink), "the dashboard uses {sink}");
    }

    process::terminate(&warden.child);
    tokio::time::timeout(Duration::from_secs(30), warden.child.wait())
        .await
        .unwrap()
        .unwrap();
}

/// Polls `GET /api/probes/<name>` until `done` holds for its answer.
async fn wait_probe(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = match client.get(format!("{base}/api/probes/{name}")).send().await {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        if done(&answer) {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "probe {name} never got there: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
