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
