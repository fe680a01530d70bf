//! The HTTP API of an in-process Warden on `127.0.0.1:0`: health, boot
//! status, operational state, the audit routes, auth, and self-healing of the
//! actors behind them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use warden::app::{self, Warden};
use warden::settings::{ConfigSource, load_with_env};

const TOKEN: &str = support::process::TOKEN;

async fn start(dir: &std::path::Path) -> Warden {
    let toml = format!(
        "[service]\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\noperator_token = \"{TOKEN}\"\n",
        dir.join("var").display()
    );
    let settings = load_with_env(
        &ConfigSource::Text {
            name: "test".into(),
            toml,
        },
        Some(HashMap::new()),
    )
    .unwrap();
    app::start(settings).await.unwrap()
}

async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn rows(client: &reqwest::Client, base: &str, seam: &str) -> Vec<Value> {
    let (_, body) = get(client, format!("{base}/api/audit?seam={seam}&limit=1000")).await;
    body["rows"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_routes_auth_and_notes() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start(dir.path()).await;
    let base = format!("http://{}", warden.addr);
    let client = reqwest::Client::new();

    let (status, health) = get(&client, format!("{base}/api/health")).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok");
    let ids: Vec<&str> = health["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "audit",
            "debouncer",
            "wake",
            "incidents",
            "probes",
            "escalation",
            "api"
        ]
    );

    let (_, boot) = get(&client, format!("{base}/api/boot-status")).await;
    assert_eq!(boot["ready"], true);
    let gates: Vec<&str> = boot["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        gates,
        [
            "config_valid",
            "state_dir_writable",
            "audit_recovered",
            "cursors_consistent",
            "dr_epoch"
        ]
    );

    let (_, state) = get(&client, format!("{base}/api/operational-state")).await;
    assert_eq!(state["state"], "RUNNING");
    assert_eq!(state["degradation_reasons"], json!([]));

    let note = json!({ "text": "deploying v2", "author": "ana" });
    let url = format!("{base}/api/audit/notes");
    let response = client.post(&url).json(&note).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let response = client
        .post(&url)
        .bearer_auth("wrong-token-wrong-token")
        .json(&note)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({ "text": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = client
        .post(&url)
        .bearer_auth(TOKEN)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");

    let response = client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&note)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seq = response.json::<Value>().await.unwrap()["seq"]
        .as_u64()
        .unwrap();
    let notes = rows(&client, &base, "operator.note").await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["seq"], seq);
    assert_eq!(notes[0]["details"]["text"], "deploying v2");
    assert!(!rows(&client, &base, "supervision.*").await.is_empty());

    let (status, body) = get(&client, format!("{base}/api/nope")).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");

    warden.shutdown().await.unwrap();
    // After a graceful stop the log holds the stop sequence, and every child's stop.
    let reader = warden::audit::AuditReader::open(&dir.path().join("var/audit")).unwrap();
    let seams: Vec<String> = reader
        .rows_from(1, None)
        .map(|row| row.unwrap().seam)
        .collect();
    assert!(seams.contains(&"service.stopping".to_owned()), "{seams:?}");
    // Seven children of the root (with no component, the escalation
    // supervisor has no coordinator and no intake).
    assert_eq!(
        seams.iter().filter(|s| *s == "supervision.stopped").count(),
        7,
        "{seams:?}"
    );
    assert!(!serde_json::to_string(&seams).unwrap().contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_actors_are_restarted_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start(dir.path()).await;
    let base = format!("http://{}", warden.addr);
    let client = reqwest::Client::new();

    // Kill the API server: it comes back on the same port.
    let api = ractor::ActorRef::<warden::api::ApiServerMsg>::where_is(warden.names.api()).unwrap();
    let old_id = api.get_id();
    api.kill();
    let name = warden.names.api();
    let replaced = || {
        let name = name.clone();
        async move { ractor::registry::where_is(name).is_some_and(|cell| cell.get_id() != old_id) }
    };
    assert!(
        support::eventually(Duration::from_secs(10), replaced).await,
        "the API server was not restarted"
    );
    assert!(
        support::eventually(Duration::from_secs(10), || support::healthy(&client, &base)).await
    );

    // Kill the audit writer: an append made meanwhile is still acknowledged.
    let writer = ractor::registry::where_is(warden.names.audit()).unwrap();
    writer.kill();
    let seq = warden
        .audit
        .append(warden::audit::NewRow::new("test.after_kill", json!({})))
        .await
        .unwrap();
    assert!(seq > 0);

    assert!(
        support::eventually(Duration::from_secs(10), || {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let restarted = rows(&client, &base, "supervision.restarted").await;
                let children: Vec<String> = restarted
                    .iter()
                    .map(|r| r["details"]["child"].as_str().unwrap_or("").to_owned())
                    .collect();
                children.contains(&"api".to_owned()) && children.contains(&"audit".to_owned())
            }
        })
        .await
    );
    let (_, state) = get(&client, format!("{base}/api/operational-state")).await;
    assert_eq!(state["state"], "RUNNING");
    warden.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutating_route_refuses_bad_bodies_with_the_json_error_shape_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let warden = start(dir.path()).await;
    let base = format!("http://{}", warden.addr);
    let client = reqwest::Client::new();
    let routes = [
        "/api/audit/notes",
        "/api/control",
        "/api/issues/probe:x:y:1/ack",
        "/api/incidents",
        "/api/incidents/INC-1/notes",
        "/api/incidents/INC-1/resolve",
        "/api/incidents/INC-1/severity",
    ];
    let huge = format!("{{\"text\": \"{}\"}}", "x".repeat(100 * 1024));
    for route in routes {
        let url = format!("{base}{route}");
        let send = |body: String, token: Option<&str>| {
            let mut request = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            }
        };
        for (body, token, status, code) in [
            ("{}".to_owned(), None, 401, "unauthorized"),
            (huge.clone(), Some(TOKEN), 413, "payload_too_large"),
            ("{\"text\": ".to_owned(), Some(TOKEN), 400, "bad_request"),
            ("[1, 2]".to_owned(), Some(TOKEN), 400, "bad_request"),
        ] {
            let (got, answer) = send(body, token).await;
            assert_eq!(got, status, "{route}: {answer}");
            assert_eq!(answer["error"]["code"], code, "{route}: {answer}");
            assert!(answer["error"]["message"].is_string(), "{route}: {answer}");
        }
    }
    // Nothing was recorded or changed by any refused request.
    for seam in [
        "operator.note",
        "control.command",
        "issue.acknowledged",
        "incident.*",
    ] {
        assert!(rows(&client, &base, seam).await.is_empty(), "{seam}");
    }
    assert!(warden.incidents.is_empty());
    assert_eq!(format!("{:?}", warden.state.state()), "Running");
    warden.shutdown().await.unwrap();
}
