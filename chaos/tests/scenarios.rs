//! Runs every scenario in `chaos/scenarios/`, each bounded in time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use warden_chaos::{Scenario, run_scenario};

fn scenario(name: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    Scenario::from_file(&path).unwrap()
}

async fn run(name: &str) -> warden_chaos::Outcome {
    let scenario = scenario(name);
    tokio::time::timeout(Duration::from_secs(120), run_scenario(&scenario))
        .await
        .unwrap_or_else(|_| panic!("scenario {name} did not finish within 120s"))
        .unwrap_or_else(|error| panic!("scenario {name}: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_actors() {
    let outcome = run("kill-actors").await;
    assert!(
        outcome.injected >= 10,
        "only {} faults injected",
        outcome.injected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meltdown() {
    let outcome = run("meltdown").await;
    assert!(
        outcome
            .rows
            .iter()
            .any(|row| row.seam == "supervision.meltdown")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_pipeline() {
    let outcome = run("kill-pipeline").await;
    assert!(
        outcome.injected >= 10,
        "only {} faults injected",
        outcome.injected
    );
    assert!(
        outcome
            .rows
            .iter()
            .any(|row| row.seam == "supervision.restarted" && row.details["child"] == "wake"),
        "the wake consumer was never restarted"
    );
    assert!(outcome.world.as_ref().unwrap().fixes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies() {
    let outcome = run("dependencies").await;
    let world = outcome.world.as_ref().unwrap();
    assert!(!world.received.is_empty(), "no notice reached the receiver");
    assert!(!world.fixes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_process() {
    let outcome = run("kill-process").await;
    assert!(
        outcome
            .landed
            .contains(&warden_chaos::faults::Landed::Process),
        "the process was never killed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_story() {
    let outcome = run("kill-story").await;
    for role in ["incidents", "coordinator", "intake"] {
        assert!(
            outcome
                .rows
                .iter()
                .any(|row| row.seam == "supervision.restarted"
                    && row.details["child"]
                        .as_str()
                        .is_some_and(|c| c.starts_with(role))),
            "the {role} actor was never restarted"
        );
    }
}

#[test]
fn every_scenario_file_parses_and_has_a_test() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let source = include_str!("scenarios.rs");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let parsed = Scenario::from_file(&path).unwrap();
        assert!(
            source.contains(&format!("run(\"{}\")", parsed.name)),
            "no test runs {}",
            parsed.name
        );
    }
}
