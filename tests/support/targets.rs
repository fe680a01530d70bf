//! Loopback targets for probes: an HTTP server whose status can be flipped,
//! and raw TCP servers that misbehave (hang, endless body, invalid UTF-8,
//! close mid-response). Each counts the requests it served.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An HTTP target answering `GET /health` with a settable status.
#[derive(Clone)]
pub struct Switchable {
    /// `http://127.0.0.1:<port>/health`.
    pub url: String,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
}

impl Switchable {
    /// Starts the target answering `status`.
    pub async fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let target = Self {
            url,
            status: Arc::new(AtomicU16::new(status)),
            hits: Arc::default(),
        };
        let (status, hits) = (target.status.clone(), target.hits.clone());
        let app = axum::Router::new().route(
            "/health",
            axum::routing::get(move || {
                let (status, hits) = (status.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let code =
                        axum::http::StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap();
                    (code, "{\"status\":\"ok\"}")
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        target
    }

    /// Changes the status returned from now on.
    pub fn set(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// How a raw target misbehaves.
#[derive(Clone, Copy, Debug)]
pub enum Misbehaviour {
    /// Accepts, reads the request, never answers.
    Hang,
    /// Answers 200 with a 1 GiB Content-Length and streams zeros until the client goes away.
    Huge,
    /// Answers 200 with a body that is not UTF-8.
    InvalidUtf8,
    /// Announces 5000 bytes, sends 100, closes.
    ClosesMidResponse,
}

/// Starts a raw target; returns its URL.
pub async fn misbehaving(how: Misbehaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                match how {
                    Misbehaviour::Hang => {
                        // Hold the connection open until the client gives up.
                        let _ = socket.read(&mut request).await;
                    }
                    Misbehaviour::Huge => {
                        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n";
                        if socket.write_all(head).await.is_err() {
                            return;
                        }
                        let chunk = vec![b'a'; 64 * 1024];
                        // Bounded by the 1 GiB announced; the client stops long before.
                        for _ in 0..16_384 {
                            if socket.write_all(&chunk).await.is_err() {
                                return;
                            }
                        }
                    }
                    Misbehaviour::InvalidUtf8 => {
                        let body: &[u8] = &[0xff, 0xfe, 0xfd, b'o', b'k', 0xc3, 0x28];
                        let head =
                            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                        let _ = socket.write_all(head.as_bytes()).await;
                        let _ = socket.write_all(body).await;
                    }
                    Misbehaviour::ClosesMidResponse => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n")
                            .await;
                        let _ = socket.write_all(&[b'x'; 100]).await;
                        let _ = socket.shutdown().await;
                    }
                }
            });
        }
    });
    url
}
