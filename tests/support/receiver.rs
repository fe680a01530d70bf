//! A loopback webhook receiver for notifier and investigator tests: records
//! every request (headers, JSON body, arrival time), answers from a script
//! (status codes in order, then 200), optionally slowly, and counts
//! successful deliveries per idempotency key.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request headers, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (Null if not JSON).
    pub body: Value,
    /// When it arrived.
    pub at: tokio::time::Instant,
    /// The status answered.
    pub answered: u16,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<(u16, Option<String>)>,
    received: Vec<Received>,
    delay: Duration,
    reply: Option<Value>,
    replies: VecDeque<Value>,
}

/// A receiver; clone freely.
#[derive(Clone)]
pub struct Receiver {
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    /// Starts a receiver that answers 200 `{}` to everything.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let state = inner.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move { answer(state, headers, body).await }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, inner }
    }

    /// Answers these statuses first (with an optional `Retry-After`), then 200.
    pub fn script(&self, replies: &[(u16, Option<&str>)]) {
        self.inner.lock().unwrap().script = replies
            .iter()
            .map(|(s, r)| (*s, r.map(str::to_owned)))
            .collect();
    }

    /// Waits this long before answering each request.
    pub fn delay(&self, delay: Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    /// The JSON body of 200 answers (default `{}`).
    pub fn reply(&self, body: Value) {
        self.inner.lock().unwrap().reply = Some(body);
    }

    /// The JSON bodies of the next 200 answers, in order; then [`Self::reply`]'s.
    pub fn replies(&self, bodies: Vec<Value>) {
        self.inner.lock().unwrap().replies = bodies.into();
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Requests carrying a wake notice (`Idempotency-Key: warden-<seq>`),
    /// leaving out incident updates and escalation alerts.
    pub fn received_wake(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| {
                r.headers
                    .get("idempotency-key")
                    .is_some_and(|k| is_wake_key(k))
            })
            .collect()
    }

    /// Successful deliveries of wake notices per key.
    pub fn wake_delivered_by_key(&self) -> BTreeMap<String, usize> {
        self.delivered_by_key()
            .into_iter()
            .filter(|(k, _)| is_wake_key(k))
            .collect()
    }

    /// Successful (2xx) deliveries per `Idempotency-Key`.
    pub fn delivered_by_key(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in self.received() {
            if (200..300).contains(&r.answered)
                && let Some(key) = r.headers.get("idempotency-key")
            {
                *counts.entry(key.clone()).or_insert(0) += 1;
            }
        }
        counts
    }
}

async fn answer(
    state: Arc<Mutex<Inner>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, HeaderMap, String) {
    let delay = state.lock().unwrap().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut inner = state.lock().unwrap();
    let (status, retry_after) = inner.script.pop_front().unwrap_or((200, None));
    inner.received.push(Received {
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
        at: tokio::time::Instant::now(),
        answered: status,
    });
    let mut reply_headers = HeaderMap::new();
    if let Some(after) = retry_after {
        reply_headers.insert("retry-after", after.parse().unwrap());
    }
    let text = if status < 300 {
        let next = inner.replies.pop_front();
        next.or_else(|| inner.reply.clone())
            .unwrap_or_else(|| serde_json::json!({}))
            .to_string()
    } else {
        "{\"error\":\"scripted\"}".to_owned()
    };
    (StatusCode::from_u16(status).unwrap(), reply_headers, text)
}

fn is_wake_key(key: &str) -> bool {
    key.strip_prefix("warden-")
        .is_some_and(|seq| !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()))
}
