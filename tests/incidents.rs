//! Incidents end to end, in-process: a managed demo-target whose probes fail,
//! the incident commander, the escalation coordinator and the HTTP API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::instance::{WAIT, start, wait_rows};

use std::path::Path;

use serde_json::{Value, json};
use support::process::TOKEN;

/// A managed, failing demo-target watched by two probes of one component,
/// with a fix that recovers it.
fn config(dir: &Path, port: u16) -> String {
    let state = dir.join("site.mode");
    std::fs::write(&state, "failing").unwrap();
    let bin = env!("CARGO_BIN_EXE_warden");
    let probe = |name: &str| {
        format!(
            "[[probes]]\nname = \"{name}\"\ncomponent = \"site\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{port}/health\"\ninterval = \"100ms\"\ntimeout = \"80ms\"\n\n"
        )
    };
    format!(
        "[debounce]\nfailure_threshold = 2\n\n[incidents]\nresolve_after_healthy_cycles = 3\n\n{}{}\
         [[components]]\nname = \"site\"\ncriticality = \"high\"\nrun = [\"{bin}\", \"demo-target\", \"--listen\", \"127.0.0.1:{port}\", \"--state-file\", \"{}\"]\n\
         [components.fix]\nenabled = true\naction = {{ kind = \"http\", url = \"http://127.0.0.1:{port}/control/recover\" }}\nverify_timeout = \"5s\"\n",
        probe("site"),
        probe("site-deep"),
        state.display()
    )
}

async fn api(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url).bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_critical_issue_opens_one_incident_with_evidence_first_and_it_resolves_with_a_postmortem()
{
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let warden = start(dir.path(), &config(dir.path(), port)).await;
    // Paused: issues and incidents go on, the fix waits, so the refusal below is observable.
    warden.state.pause("operator");
    let base = format!("http://{}", warden.addr);
    let client = reqwest::Client::new();

    let opened = wait_rows(dir.path(), "incident.opened", 1).await;
    // Both probes fire; the second issue joins the first incident.
    wait_rows(dir.path(), "probe.wake_requested", 2).await;
    wait_rows(dir.path(), "incident.joined", 1).await;
    let (_, list) = api(
        &client,
        reqwest::Method::GET,
        format!("{base}/api/incidents"),
        None,
    )
    .await;
    let incidents = list["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{list}");
    let id = incidents[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(incidents[0]["severity"], "SEV2");
    assert_eq!(incidents[0]["components"], json!(["site"]));
    let evidence = dir.path().join("var/incidents").join(&id).join("evidence");
    assert!(
        std::fs::read_dir(&evidence).unwrap().count() >= 3,
        "observations, audit rows and config"
    );

    // Impact has not stopped: resolving is refused and nothing changes.
    let (status, body) = api(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/incidents/{id}/resolve"),
        Some(json!({ "note": "done?" })),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "impact_ongoing", "{body}");
    let (status, _) = api(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/incidents/{id}/notes"),
        Some(json!({ "text": "looking at the deploy", "author": "sam" })),
    )
    .await;
    assert_eq!(status, 200);

    // Resume: the fix runs only now, after the evidence, and heals.
    warden.state.clear("operator");
    let fixes = wait_rows(dir.path(), "escalation.fix_attempted", 1).await;
    assert!(
        fixes[0].seq > opened[0].seq,
        "the fix ran before the incident's evidence"
    );
    assert_eq!(fixes[0].details["outcome"], "succeeded");
    let resolved = wait_rows(dir.path(), "incident.resolved", 1).await;
    assert_eq!(resolved[0].details["id"], id.as_str());
    // The packet is written right after the resolution is announced.
    let packet = dir
        .path()
        .join("var/incidents")
        .join(&id)
        .join("postmortem.md");
    assert!(
        support::eventually(WAIT, || {
            let written = packet.exists();
            async move { written }
        })
        .await
    );
    let postmortem = std::fs::read_to_string(&packet).unwrap();
    for needle in [
        "looking at the deploy",
        "fix",
        "Root cause",
        "Corrective actions",
        // The fix healed the component, and the postmortem says so.
        "(outcome: verified healthy)",
    ] {
        assert!(
            postmortem.contains(needle),
            "postmortem lacks {needle:?}:\n{postmortem}"
        );
    }
    assert!(
        !postmortem.contains("outcome: unknown"),
        "an automation step without its outcome:\n{postmortem}"
    );
    // The wake row told the truth about the envelope, and the story's
    // resolution knows the fix ran in it.
    let wake = &wait_rows(dir.path(), "probe.wake_requested", 1).await[0];
    assert_eq!(wake.details["envelope_status"], "enabled");
    assert_eq!(
        wake.details["envelope_fix"],
        format!("send POST to http://127.0.0.1:{port}")
    );
    let story = fixes[0].caller_session_id.clone();
    assert!(
        support::eventually(WAIT, || {
            let seen = support::instance::rows(dir.path(), "probe.investigation_completed")
                .iter()
                .any(|r| {
                    r.caller_session_id == story
                        && r.details["kind"] == "resolved"
                        && r.details["autofix_attempted"] == true
                });
            async move { seen }
        })
        .await,
        "no resolved event of the fixed story says autofix_attempted: {:#?}",
        support::instance::rows(dir.path(), "probe.investigation_completed")
    );
    warden.shutdown().await.unwrap();

    // A restart of the whole process loses no incident.
    let warden = start(
        dir.path(),
        &config(dir.path(), port).replace("failing", "ok"),
    )
    .await;
    let base = format!("http://{}", warden.addr);
    let (_, one) = api(
        &client,
        reqwest::Method::GET,
        format!("{base}/api/incidents/{id}"),
        None,
    )
    .await;
    assert_eq!(
        one["incident"]["status"]
            .as_str()
            .or(one["status"].as_str()),
        Some("resolved"),
        "{one}"
    );
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_open_incidents_through_the_api_and_a_killed_commander_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start(dir.path(), "").await;
    let base = format!("http://{}", warden.addr);
    let client = reqwest::Client::new();
    let denied = client
        .post(format!("{base}/api/incidents"))
        .json(&json!({ "title": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    let (status, body) = api(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/incidents"),
        Some(json!({ "title": "payments look slow", "severity": "SEV2" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();

    let commander = warden.names.of("incidents");
    ractor::registry::where_is(commander.clone())
        .unwrap()
        .kill();
    assert!(
        support::eventually(WAIT, || {
            let back = ractor::registry::where_is(commander.clone()).is_some();
            async move { back }
        })
        .await
    );
    let (_, list) = api(
        &client,
        reqwest::Method::GET,
        format!("{base}/api/incidents"),
        None,
    )
    .await;
    assert_eq!(list["incidents"][0]["id"], id.as_str(), "{list}");
    let (status, body) = api(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/incidents/{id}/resolve"),
        Some(json!({ "note": "false alarm", "force": true })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    warden.shutdown().await.unwrap();
}

/// 409 means "impact continues" to an operator (and exit 3 to `warden
/// incidents resolve`); a record Warden cannot write must not read as that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolution_warden_cannot_write_is_a_500_not_a_409() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start(dir.path(), "").await;
    let base = format!("http://{}", warden.addr);
    let client = reqwest::Client::new();
    let (status, body) = api(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/incidents"),
        Some(json!({ "title": "payments look slow", "severity": "SEV3" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    // A directory where the record goes: replacing it fails even for root.
    let record = dir
        .path()
        .join("var/incidents")
        .join(&id)
        .join("incident.json");
    std::fs::remove_file(&record).unwrap();
    std::fs::create_dir_all(record.join("blocker")).unwrap();

    let (status, body) = api(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/incidents/{id}/resolve"),
        Some(json!({ "note": "recovered" })),
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "internal", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("incident.json"),
        "{body}"
    );
    let (status, body) = api(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/incidents/INC-19700101-001/resolve"),
        Some(json!({ "note": "x" })),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_woken_while_the_commander_was_down_opens_its_incident_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let target = support::targets::Switchable::start(200).await;
    let config = format!(
        "{}[debounce]\nfailure_threshold = 2\n\n[[probes]]\nname = \"db\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"100ms\"\ntimeout = \"80ms\"\nseverity = \"critical\"\n\n\
         [[components]]\nname = \"db\"\ncriticality = \"critical\"\nprobes = [\"db\"]\n",
        support::instance::SLOW_SECOND_RESTART,
        target.url
    );
    let warden = start(dir.path(), &config).await;
    support::instance::kill_into_backoff(&warden, dir.path(), "incidents").await;
    target.set(503);
    let wakes = wait_rows(dir.path(), "probe.wake_requested", 1).await;
    assert!(
        support::instance::rows(dir.path(), "supervision.restarted").len() < 2,
        "the commander came back before the issue: the test proves nothing"
    );
    let opened = wait_rows(dir.path(), "incident.opened", 1).await;
    assert_eq!(opened[0].caller_session_id, wakes[0].caller_session_id);
    warden.shutdown().await.unwrap();
}
