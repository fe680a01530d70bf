//! A new configuration that melts the supervision tree down is replaced by
//! the last-known-good one, and Warden boots once more on it (DESIGN §3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::instance::rows;

use std::path::Path;
use std::time::Duration;

use warden::settings::ConfigSource;

const WAIT: Duration = Duration::from_secs(30);

fn config(state: &Path, probes: &[&str]) -> String {
    let mut text = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\n\n[supervision]\nmax_restarts = 1\nperiod = \"60s\"\nstable_after = \"300ms\"\n\n",
        state.display()
    );
    for probe in probes {
        text.push_str(&format!(
            "[[probes]]\nname = \"{probe}\"\nkind = \"heartbeat\"\nmax_silence = \"1h\"\n\n"
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_that_melts_the_tree_down_is_rolled_back_to_the_last_known_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("var");
    let path = dir.path().join("warden.toml");
    let good = config(&state, &["good"]);
    std::fs::write(&path, &good).unwrap();

    // A stable run makes this configuration the last-known-good one.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(warden::app::run_source(
        ConfigSource::File(path.clone()),
        async {
            let _ = stopped.await;
        },
    ));
    assert!(
        support::eventually(WAIT, || {
            let kept = !rows(dir.path(), "service.config_known_good").is_empty();
            async move { kept }
        })
        .await
    );
    stop.send(()).unwrap();
    run.await.unwrap().unwrap();

    // An operator deploys a new configuration, and the tree melts down on it.
    let bad = config(&state, &["good", "new"]);
    std::fs::write(&path, &bad).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(warden::app::run_source(
        ConfigSource::File(path.clone()),
        async {
            let _ = stopped.await;
        },
    ));
    let rolled_back = support::eventually(WAIT, || {
        let done = !rows(dir.path(), "service.config_rolled_back").is_empty();
        if !done {
            // Kill the audit writer until the restart budget (1 in 60 s) is spent.
            for name in ractor::registry::registered() {
                if name.ends_with(".audit")
                    && let Some(cell) = ractor::registry::where_is(name)
                {
                    cell.kill();
                }
            }
        }
        async move { done }
    })
    .await;
    assert!(
        rolled_back,
        "no rollback: {:#?}",
        rows(dir.path(), "service.*")
    );

    // The file holds the last-known-good text again, the rejected one is kept,
    // and Warden runs on the good configuration. The row is appended before
    // run_source rewrites the file, so wait for the rewrite.
    assert!(
        support::eventually(WAIT, || {
            let back = std::fs::read_to_string(&path).is_ok_and(|text| text == good);
            async move { back }
        })
        .await,
        "{}",
        std::fs::read_to_string(&path).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(path.with_extension("toml.rejected")).unwrap(),
        bad
    );
    assert!(
        support::eventually(WAIT, || {
            let started = rows(dir.path(), "service.started");
            let back = started.last().is_some_and(|r| {
                r.details["summary"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("1 probe(s)")
            });
            async move { back }
        })
        .await,
        "{:#?}",
        rows(dir.path(), "service.started")
    );
    let meltdowns = rows(dir.path(), "service.meltdown");
    assert_eq!(
        meltdowns.last().unwrap().details["action"],
        "rollback_config"
    );
    stop.send(()).unwrap();
    run.await.unwrap().unwrap();
}
