#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;

struct Server {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), DemoError>>,
}

async fn start(state_file: Option<PathBuf>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(serve_listener(listener, state_file, async move {
        let _ = rx.await;
    }));
    Server {
        base,
        stop: Some(tx),
        handle,
    }
}

impl Server {
    async fn stop(mut self) -> Result<(), DemoError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(5), self.handle)
            .await
            .expect("server stops")
            .unwrap()
    }
}

async fn health(client: &reqwest::Client, base: &str) -> (u16, serde_json::Value) {
    let response = client.get(format!("{base}/health")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn post(client: &reqwest::Client, url: String) -> u16 {
    client.post(url).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn fail_and_recover_switch_health() {
    let server = start(None).await;
    let client = reqwest::Client::new();
    assert_eq!(
        health(&client, &server.base).await,
        (200, serde_json::json!({"status": "ok"}))
    );
    assert_eq!(
        post(&client, format!("{}/control/fail", server.base)).await,
        200
    );
    assert_eq!(
        health(&client, &server.base).await,
        (503, serde_json::json!({"status": "failing"}))
    );
    let state: serde_json::Value = client
        .get(format!("{}/control/state", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["mode"], "failing");
    assert_eq!(state["pid"], std::process::id());
    assert_eq!(
        post(&client, format!("{}/control/recover", server.base)).await,
        200
    );
    assert_eq!(health(&client, &server.base).await.0, 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn hang_never_answers_until_recovered() {
    let server = start(None).await;
    let client = reqwest::Client::new();
    assert_eq!(
        post(&client, format!("{}/control/hang", server.base)).await,
        200
    );
    let hung = client
        .get(format!("{}/health", server.base))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung.unwrap_err().is_timeout());
    // A request waiting when recovery comes is answered with the new mode.
    let waiting = tokio::spawn({
        let client = client.clone();
        let url = format!("{}/health", server.base);
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        post(&client, format!("{}/control/recover", server.base)).await,
        200
    );
    assert_eq!(waiting.await.unwrap(), 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_is_not_blocked_by_a_hanging_request() {
    let server = start(None).await;
    let client = reqwest::Client::new();
    assert_eq!(
        post(&client, format!("{}/control/hang", server.base)).await,
        200
    );
    let waiting = tokio::spawn({
        let client = client.clone();
        let url = format!("{}/health", server.base);
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.stop().await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), 503);
}

#[tokio::test]
async fn exit_answers_then_returns_the_code() {
    let server = start(None).await;
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/control/exit?code=7", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let result = tokio::time::timeout(Duration::from_secs(5), server.handle)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(result, Err(DemoError::Exit { code: 7 })),
        "{result:?}"
    );
}

#[tokio::test]
async fn state_file_is_read_at_startup_and_written_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mode");
    let server = start(Some(path.clone())).await;
    let client = reqwest::Client::new();
    assert_eq!(health(&client, &server.base).await.0, 200);
    assert_eq!(
        post(&client, format!("{}/control/fail", server.base)).await,
        200
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "failing\n");
    server.stop().await.unwrap();

    // A restarted process comes up in the mode its predecessor left.
    let server = start(Some(path.clone())).await;
    assert_eq!(health(&client, &server.base).await.0, 503);
    server.stop().await.unwrap();

    write_mode(&path, Mode::Exit).unwrap();
    let result = serve("127.0.0.1:0".parse().unwrap(), Some(path.clone()), async {}).await;
    assert!(
        matches!(
            result,
            Err(DemoError::Exit {
                code: STARTUP_EXIT_CODE
            })
        ),
        "{result:?}"
    );

    std::fs::write(&path, "bogus\n").unwrap();
    let result = serve("127.0.0.1:0".parse().unwrap(), Some(path), async {}).await;
    assert!(
        matches!(result, Err(DemoError::BadMode { .. })),
        "{result:?}"
    );
}
