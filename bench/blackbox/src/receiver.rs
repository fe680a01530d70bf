//! A webhook receiver in its own process, for the black-box benches: it
//! answers every POST at once with 200 and prints one line per notice,
//! `<unix ns of arrival> <idempotency key> <kind> <probe>`, on stdout. The
//! first line is `listening <addr>`. Sockets set TCP_NODELAY: a response
//! whose headers and body leave in separate sends would otherwise wait
//! ~40 ms for the peer's delayed ACK, and the bench would measure that.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::serve::ListenerExt as _;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = axum::Router::new().fallback(axum::routing::post(record));
    axum::serve(listener, app).await
}

async fn record(headers: HeaderMap, body: axum::body::Bytes) -> &'static str {
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let notice: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let field = |name: &str| notice[name].as_str().unwrap_or("-").to_owned();
    let line = format!("{at} {key} {} {}\n", field("kind"), field("probe"));
    // One write per line: the driver reads whole lines.
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
    "{}"
}
