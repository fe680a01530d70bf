#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::messages::Health;
use crate::settings::{ProbeKind, ProbeSettings};

use super::TcpCheck;

fn probe(address: &str) -> ProbeSettings {
    ProbeSettings {
        name: "tcp".into(),
        kind: Some(ProbeKind::Tcp),
        address: Some(address.into()),
        ..ProbeSettings::default()
    }
}

#[tokio::test]
async fn a_listening_port_is_up() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let outcome = TcpCheck::build(&probe(&address)).unwrap().run().await;
    assert_eq!(outcome.verdict, Health::Healthy);
    assert_eq!(outcome.facts.connected, Some(true));
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let outcome = TcpCheck::build(&probe(&address)).unwrap().run().await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert_eq!(outcome.facts.connected, Some(false));
    assert!(
        outcome.reasons[0].contains("connection refused"),
        "{:?}",
        outcome.reasons
    );
    assert_eq!(
        outcome.facts.error.as_deref(),
        Some(outcome.reasons[0].as_str())
    );
}

#[tokio::test]
async fn an_unresolvable_host_is_a_dns_error() {
    let outcome = TcpCheck::build(&probe("no-such-host.invalid:80"))
        .unwrap()
        .run()
        .await;
    assert_eq!(outcome.verdict, Health::Unhealthy);
    assert!(
        outcome.reasons[0].starts_with("dns error"),
        "{:?}",
        outcome.reasons
    );
}
