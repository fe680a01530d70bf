//! An in-process Warden on a temp dir, and reads of its audit log: what the
//! end-to-end tests share. State goes to `<dir>/var`, the API to an ephemeral
//! loopback port, and the operator token is [`TOKEN`](super::process::TOKEN).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use warden::app::{self, Warden};
use warden::audit::{AuditReader, AuditRow};
use warden::settings::{ConfigSource, load_with_env};

use super::process::TOKEN;

/// How long a test waits for a state before it fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// Starts Warden with `body` appended to the test's `[service]` section.
pub async fn start(dir: &Path, body: &str) -> Warden {
    let toml = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\noperator_token = \"{TOKEN}\"\n\n{body}",
        dir.join("var").display()
    );
    let settings = load_with_env(
        &ConfigSource::Text {
            name: "test".into(),
            toml,
        },
        Some(HashMap::new()),
    )
    .unwrap_or_else(|e| panic!("{:?}", e.lines()));
    app::start(settings).await.unwrap()
}

/// Every durable row of `seam` (exact, or a prefix ending in `*`).
pub fn rows(dir: &Path, seam: &str) -> Vec<AuditRow> {
    let Ok(reader) = AuditReader::open(&dir.join("var/audit")) else {
        return Vec::new();
    };
    reader
        .rows_from(1, Some(seam))
        .filter_map(Result::ok)
        .collect()
}

/// Waits until at least `n` rows of `seam` are durable, and returns them all.
pub async fn wait_rows(dir: &Path, seam: &str, n: usize) -> Vec<AuditRow> {
    let found = super::eventually(WAIT, || {
        let count = rows(dir, seam).len();
        async move { count >= n }
    })
    .await;
    let all = rows(dir, seam);
    assert!(
        found,
        "expected {n} {seam} row(s) within {WAIT:?}, got {}: {all:#?}",
        all.len()
    );
    all
}

/// Supervision settings under which the second restart of a child within a
/// minute waits 3 s (the first is immediate).
pub const SLOW_SECOND_RESTART: &str = "[supervision]\nmax_restarts = 10\nperiod = \"60s\"\nstable_after = \"60s\"\nbackoff_min = \"3s\"\nbackoff_max = \"3s\"\nbackoff_jitter = 0.0\n\n";

/// Kills the actor with `role` twice, so that (under [`SLOW_SECOND_RESTART`])
/// it is down for 3 s from the return of this call: a window in which it
/// misses whatever is published.
pub async fn kill_into_backoff(warden: &Warden, dir: &Path, role: &str) {
    let name = warden.names.of(role);
    let first = ractor::registry::where_is(name.clone()).unwrap();
    first.kill();
    let back = super::eventually(WAIT, || {
        let back = ractor::registry::where_is(name.clone())
            .is_some_and(|cell| cell.get_id() != first.get_id());
        async move { back }
    })
    .await;
    assert!(back, "{role} was not restarted after the first kill");
    ractor::registry::where_is(name.clone()).unwrap().kill();
    let scheduled = wait_rows(dir, "supervision.restart_scheduled", 2).await;
    assert!(
        scheduled[1].details["delay_ms"].as_u64().unwrap() >= 1000,
        "{:#?}",
        scheduled[1]
    );
}
